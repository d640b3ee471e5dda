"""Decoders: one module per protocol (construct schema + lenient views)."""
