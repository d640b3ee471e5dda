"""pcap and pcapng readers and writers.

- :mod:`rawlab.pcap.reader`: ``open_file(path) -> CaptureReader`` (iterate → Record),
  ``read_records(path)``.
- :mod:`rawlab.pcap.writer`: ``PcapngWriter``, ``PcapWriter``.
- :mod:`rawlab.records`: ``Record``, ``CaptureInfo``, ``Interface``, ``Direction``.

Importing this package imports nothing heavy and has no side effects.
"""
