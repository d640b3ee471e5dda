"""Sans-I/O analysers: feed(record) -> events."""
