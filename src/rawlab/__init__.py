"""rawlab: Linux raw-packet and multi-family socket capture.

Importing this package has no side effects: it opens no socket, reads no
route and touches no interface. Everything happens when a command runs.
"""

__version__ = "0.1.0"
