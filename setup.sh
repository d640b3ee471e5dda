#!/usr/bin/env bash
# Set up rawlab on Debian 12 (bookworm) as root: Debian packages, then a
# virtualenv in .venv with rawlab installed (editable) into it.
#
#   ./setup.sh          what `rawlab` itself needs (demo, capture, netlink)
#   ./setup.sh --test   also what the test tiers need (tshark, qemu + Debian's
#                       kernel for the vm tier, virtme-ng, pytest, ruff ...)
#
# Idempotent: packages already present are not fetched again, and an existing
# .venv is reused. Set PYTHON to choose the interpreter (default: /usr/bin/python3,
# else python3 on PATH; >= 3.11).
set -euo pipefail
cd "$(dirname "$0")"

want_test=0
for arg in "$@"; do
    case "$arg" in
        --test) want_test=1 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

# Runtime: iproute2 (ip netns, veth), nftables, ethtool (offloads off), libpcap
# (filter compiler used through scapy), util-linux (unshare, setpriv), libcap2-bin;
# gcc, libc6-dev and python3-dev build rawlab._kernels (src/rawlab/_kernels.c, the columnar
# path's sequential loops) when pip installs rawlab.
debs=(iproute2 nftables ethtool libpcap0.8 util-linux libcap2-bin procps kmod python3-venv
      ca-certificates gcc libc6-dev python3-dev)
if [ "$want_test" = 1 ]; then
    # Cross-checks and peers: tshark, tcpdump, tcptrace, socat, trafgen (netsniff-ng), conntrack;
    # curl (a client whose process --processes must name).
    # vm tier: qemu + Debian's kernel (has nlmon, vsockmon, vsock_loopback ...),
    # busybox-static for the small initramfs of nested guests; vagrant +
    # vagrant-libvirt to validate the Vagrantfile. Java 17: Spark local mode (the dev extra's
    # pyspark) runs the README's SQL over a Parquet dataset (tests/unit/test_spark.py);
    # tmux runs `rawlab view` in a real terminal (tests), termshark is the viewer it is
    # benchmarked against (bench/view); dnsmasq-base (real DNS and DHCP servers for the
    # application-layer tests).
    debs+=(tshark tcpdump tcptrace socat netsniff-ng iputils-ping curl conntrack qemu-system-x86 linux-image-amd64
           busybox-static cpio zstd vagrant vagrant-libvirt openjdk-17-jre-headless tmux termshark
           dnsmasq-base)
fi

missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup.sh: need root to install Debian packages: ${missing[*]} (run it as root)" >&2
        exit 3
    fi
    echo "setup.sh: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # tshark asks whether non-root users may capture; answer no (rawlab documents
    # its own privilege model in privileges.md).
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Prefer Debian's interpreter: every user can execute it (tests run rawlab as
# `nobody` too), unlike one under a private home such as /root/.pyenv.
if [ -z "${PYTHON:-}" ] && [ -x /usr/bin/python3 ]; then py=/usr/bin/python3; else py="${PYTHON:-python3}"; fi
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup.sh: $py is older than 3.11; set PYTHON=/path/to/python3.11+" >&2
    exit 4
fi
if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
fi
extras=""
[ "$want_test" = 1 ] && extras="[dev]"
.venv/bin/python -m pip install -qq --disable-pip-version-check -e ".${extras}"
# An editable install leaves src/ uncompiled, and with PYTHONDONTWRITEBYTECODE set
# nothing ever writes the .pyc files: every start would compile ~15 ms of source.
.venv/bin/python -m compileall -q src >/dev/null
echo "setup.sh: ready: $(.venv/bin/rawlab --version)"
