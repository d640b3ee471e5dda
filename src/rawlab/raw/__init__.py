"""SOCK_RAW tools (`rawlab raw ...`): AF_INET / AF_INET6 raw sockets, packets built by hand.

    packets.py   IPv4 header, TCP segment, ICMP/ICMPv6 echo: built from the decoders'
                 construct schemas, checksums computed here (RFC 1071 + pseudo-headers)
    sock.py      raw sockets opened inside a namespace; receive with the ancillary data
                 that lets an IPv6 header be rebuilt (IPv6 raw sockets never deliver it)
    listen.py    what a raw socket of one protocol receives
    ping.py      ICMP / ICMPv6 echo over a raw socket, RTTs and ping's summary
    syn.py       one hand-built SYN: open / closed / filtered, and the kernel's RST
    usertcp.py   a sans-I/O TCP client: SYN … data … FIN, driven by segments
    handshake.py that client over a raw socket, the kernel's RST held back by nft.py
    nft.py       the temporary nftables table that drops those RSTs, always removed

Nothing here runs at import time.
"""
