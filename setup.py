"""The compiled modules, plain C on the buffer protocol (src/rawlab/_buffers.h):
rawlab._kernels (src/rawlab/_kernels.c), the sequential loops of the columnar fast path,
rawlab._tcp_summary (src/rawlab/_tcp_summary.c), the TCP connection table a segment
at a time, and rawlab._tcp_sequence (src/rawlab/_tcp_sequence.c), Wireshark's sequence
analysis of a segment for the exact analyser, and rawlab._syn_watch
(src/rawlab/_syn_watch.c), the SYN watch's thread that asks without the interpreter
lock (sharing src/rawlab/_diag.h with rawlab._kernels). Everything else is in
pyproject.toml."""

from setuptools import Extension, setup

_FLAGS = ["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"]

setup(ext_modules=[
    Extension(f"rawlab.{name}", [f"src/rawlab/{name}.c"], depends=["src/rawlab/_buffers.h", "src/rawlab/_diag.h"],
              extra_compile_args=_FLAGS)
    for name in ("_kernels", "_tcp_summary", "_tcp_sequence", "_syn_watch")])
