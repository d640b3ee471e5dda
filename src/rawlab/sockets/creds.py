"""Dropping root after the privileged part is done (tcpdump's -Z USER).

An open AF_PACKET ring keeps working after the process gives up its privileges:
the capability is checked when the socket is made, not when it is read.
"""

from __future__ import annotations

import os
import pwd

from rawlab.errors import Exit, RawlabError


def drop_to(user: str) -> tuple[int, int]:
    """Become `user` (its uid, gid and supplementary groups) for good; (uid, gid)."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise RawlabError(f"-Z {user}: no such user; fix: name an existing user "
                          "(`getent passwd`)", Exit.USAGE) from None
    try:
        os.initgroups(pw.pw_name, pw.pw_gid)
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    except PermissionError:
        raise RawlabError(f"-Z {user}: only root can change to another user; fix: run as "
                          "root, or drop -Z", Exit.PRIVILEGE) from None
    return pw.pw_uid, pw.pw_gid
