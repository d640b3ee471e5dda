"""Presentation: text lines, trees, tables, JSON. Only this layer formats."""
