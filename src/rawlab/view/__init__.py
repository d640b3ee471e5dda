"""`rawlab view`: the interactive explorer (Textual), a layer above present/ and pipeline.

frames.py (a file through its frame index, a live capture), dfilter.py (the display
filter language), fields.py (the fields it reads, and the per-packet field source),
select.py (filters applied in the background), rows.py (rows decoded on demand),
netlink.py (the monitor's events as rows), connections.py (the TCP table, ladder and
follow), app.py and widgets.py (the Textual application).
"""
