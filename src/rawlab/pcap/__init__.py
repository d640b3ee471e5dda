"""pcap and pcapng readers and writers."""
