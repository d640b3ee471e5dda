"""The connection table: each live connection once, under a canonical key, with a
direction bit (design principle 9, gopacket's ``flows.go``).

    key, bit = canonical(src, sport, dst, dport)   # the same key both ways; bit 1 if swapped
    table.find(src, sport, dst, dport)              # (Conn, dir) or None; marks it used
    table.add(conn, key_dir)                        # the Conn, and any connection evicted
    table.expire(ts, idle_ns, linger_ns, out)       # forget idle and closed connections

The key puts the endpoint with the lower (port, address) first. ``dir`` is 0 for
what the client sent, 1 for the server; a connection stores which direction its
key's first endpoint sends (``key_dir``), so ``dir = key_dir ^ bit``. The table
keeps the connections in least-recently-used order for expiry and for the
``max_connections`` bound.
"""

from __future__ import annotations

from collections import OrderedDict

from rawlab.analysis.tcp.events import Connection, ConnectionClosed, Event
from rawlab.analysis.tcp.sequence import Flow
from rawlab.analysis.tcp.zeek import refresh

Key = tuple[bytes, int, bytes, int]


def canonical(src: bytes, sport: int, dst: bytes, dport: int) -> tuple[Key, int]:
    """The connection's key (lower (port, address) endpoint first) and 1 if this
    direction is the key swapped."""
    if sport < dport or (sport == dport and src <= dst):
        return (src, sport, dst, dport), 0
    return (dst, dport, src, sport), 1


class Conn:
    """One tracked connection: the :class:`Connection` it reports, both directions'
    :class:`~rawlab.analysis.tcp.sequence.Flow`, and the handshake bookkeeping."""

    __slots__ = (
        "closed_at",
        "conn",
        "first_rtt",
        "flows",
        "hs_done",
        "hs_frames",
        "key",
        "key_dir",
        "mru_syn",
        "synack_seq",
    )

    def __init__(self, conn: Connection, key: Key, key_dir: int) -> None:
        self.conn = conn
        self.key = key
        self.key_dir = key_dir
        self.flows = (Flow(), Flow())
        self.mru_syn = 0  # ts of the most recent pure SYN (0 = none, as Wireshark's nstime)
        self.first_rtt = 0
        self.hs_frames: list[int] = [0, 0]  # SYN, SYN-ACK frames
        self.hs_done = False
        self.synack_seq: list[int | None] = [None, None]  # per dir: raw seq of its SYN-ACK
        self.closed_at: int | None = None

    def close(self, ts: int, reason: str) -> ConnectionClosed:
        """Mark it closed now, for ``reason``; the event that says so."""
        self.closed_at = ts
        self.conn.closed = reason
        refresh(self)
        return ConnectionClosed(self.conn)


class ConnTable:
    """Live connections by canonical key, least recently used first."""

    __slots__ = ("_by_key", "_lru", "max_connections")

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        # key -> ((conn, dir of the key's direction), (conn, dir of the other)): the
        # answers of find(), made once per connection
        self._by_key: dict[Key, tuple[tuple[Conn, int], tuple[Conn, int]]] = {}
        self._lru: OrderedDict[int, Conn] = OrderedDict()  # stream -> conn

    def __len__(self) -> int:
        return len(self._lru)

    def conns(self) -> list[Conn]:
        """The connections, least recently used first."""
        return list(self._lru.values())

    def find(self, src: bytes, sport: int, dst: bytes, dport: int) -> tuple[Conn, int] | None:
        """The connection of this 4-tuple and the segment's direction; marks it used."""
        if sport < dport or (sport == dport and src <= dst):  # canonical(), inline: per packet
            got = self._by_key.get((src, sport, dst, dport))
            if got is None:
                return None
            found = got[0]
        else:
            got = self._by_key.get((dst, dport, src, sport))
            if got is None:
                return None
            found = got[1]
        self._lru.move_to_end(found[0].conn.stream)
        return found

    def add(self, c: Conn) -> ConnectionClosed | None:
        """Track ``c``; when that exceeds ``max_connections``, the least recently used
        connection is dropped (the event that closes it, if it was open)."""
        self._by_key[c.key] = ((c, c.key_dir), (c, c.key_dir ^ 1))
        self._lru[c.conn.stream] = c
        if len(self._lru) > self.max_connections:
            _, old = next(iter(self._lru.items()))
            self.drop(old)
            if old.closed_at is None:
                return old.close(old.conn.last_ts_ns, "evicted")
        return None

    def drop(self, c: Conn) -> None:
        got = self._by_key.get(c.key)
        if got is not None and got[0][0] is c:
            del self._by_key[c.key]
        self._lru.pop(c.conn.stream, None)

    def clear(self) -> None:
        self._by_key.clear()
        self._lru.clear()

    def expire(self, ts: int, idle_ns: int | None, linger_ns: int,
               out: list[Event]) -> None:
        """Forget connections closed more than ``linger_ns`` ago and, closing them, those
        idle more than ``idle_ns`` (None: never)."""
        lru = self._lru
        while lru:
            c = next(iter(lru.values()))
            quiet = ts - c.conn.last_ts_ns
            if c.closed_at is not None and quiet > linger_ns:
                self.drop(c)
            elif idle_ns is not None and quiet > idle_ns:
                self.drop(c)
                if c.closed_at is None:
                    out.append(c.close(ts, "idle"))
            else:
                break
