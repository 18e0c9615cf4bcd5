#!/usr/bin/python3
"""The Redis image's entrypoint, for the live-swarm test tier, on Debian's redis-server.

Like the official image: ``redis-server`` (or bare flags) runs as the ``redis`` user in
``/data``, and protected mode is off unless the arguments say otherwise, because the official
image is built with it off and the swarm's overlay, not Redis, is what keeps clients out.
"""

from __future__ import annotations

import os
import pwd
import sys

DATA = "/data"


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        argv = ["redis-server", *argv]
    if argv[0] == "redis-server":
        if "--protected-mode" not in argv:
            argv = [*argv, "--protected-mode", "no"]
        if os.getuid() == 0:
            account = pwd.getpwnam("redis")
            os.chown(DATA, account.pw_uid, account.pw_gid)
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
    os.chdir(DATA)
    os.execvp(argv[0], argv)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
