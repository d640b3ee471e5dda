"""Decoders: one module per protocol (construct schema + lenient ``__slots__`` views).

Entry points:

- :class:`rawlab.decode.dispatch.Decoder` — ``decode(data, linktype, hint) -> Packet``
  (all layers, lazy checksums) and ``path(data, linktype) -> tuple[str, ...]`` (fast
  names-only walk for statistics).
- :mod:`rawlab.decode.descent` — which header follows which, once: the table of link
  types, EtherTypes (VLAN TPIDs included) and IP protocols (``build_table()``), the walk
  over views, and the same walk on bytes (``walk``) that ``path`` and the TCP
  analyser use for the common shapes.
- :mod:`rawlab.decode.checksum` — ``inet_checksum``, ``verify_*``, ``ChecksumStatus``,
  ``Verdict``, ``CsumHint`` (the kernel's tp_status checksum bits).
- :mod:`rawlab.decode.options` — the option-list walk IPv4 and TCP share.
- Views, one per module: ``ethernet.Ethernet``, ``sll.Sll``/``Sll2``, ``ipv4.Ipv4``,
  ``ipv6.Ipv6``, ``arp.Arp``, ``tcp.Tcp``, ``udp.Udp``, ``icmp.Icmp``,
  ``icmpv6.Icmpv6``, ``netlink.Netlink`` (its messages the wire module's ``NlMsg``,
  decoded by ``rtnl``; ``NlAttr``, ``attr_tree``, ``parse_attrs`` for the TLV tree),
  ``vsockmon.Vsockmon`` (``VirtioVsockHdr``); ``view.Raw`` for undecoded bytes.
- :mod:`rawlab.records` — ``LinkType`` and ``SUPPORTED_LINKTYPES``.

The contract every view keeps is in :mod:`rawlab.decode.view`. Importing any of
these modules only defines classes and constants.
"""
