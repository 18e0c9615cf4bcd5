"""Stand-in for redis-py, the client the stand-in Frappe (tests/live/images/bench/apps/frappe),
the stand-in RQ beside it and the health checks talk to Redis with: on the unit tier's bench path
(tests/fake_commands.py make_bench) it takes the real client's place, so a worker registers and a
health check finds it without a Redis server.

The server is a JSON file, $STANDIN_REDIS: a set is a list of members, a hash an object of
strings, e.g. ``{"rq:workers": ["rq:worker:<name>"], "rq:worker:<name>": {"hostname": ...}}``
(the layout of RQ's registry). Each connection made is appended to $STANDIN_REDIS_LOG (its URL
and options, one JSON line) when set; $STANDIN_REDIS_DOWN names the URL of a Redis that refuses
connections. Keys never expire: the shortest TTL RQ sets (a dead worker's hash, 60 s) outlives
any test. Runs in the stand-ins' processes, so it uses the standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["Redis"]


@contextlib.contextmanager
def _server(write: bool) -> Iterator[dict[str, Any]]:
    """The server's keys, locked against the other stand-in processes; written back (beside and
    renamed, so a reader never sees half a file) after the block when ``write``."""
    path = Path(os.environ["STANDIN_REDIS"])
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
        data = json.loads(path.read_text()) if path.exists() else {}
        yield data
        if write:
            partial = path.with_name(f".{path.name}.partial")
            partial.write_text(json.dumps(data, indent=1))
            partial.replace(path)


def _text(value: Any) -> str:
    # As Redis stores every value: bytes, numbers and strings alike become strings.
    return value.decode() if isinstance(value, bytes) else str(value)


class Redis:
    def __init__(self, url: str = "redis://localhost:6379", decode_responses: bool = False) -> None:
        self.url, self.decode_responses = url, decode_responses

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Redis:
        log = os.environ.get("STANDIN_REDIS_LOG")
        if log:
            with open(log, "a") as connections:
                connections.write(json.dumps({"url": url, **options}) + "\n")
        return cls(url, decode_responses=bool(options.get("decode_responses")))

    def _reply(self, value: str | None) -> str | bytes | None:
        # redis-py answers bytes unless the client was made with decode_responses=True.
        if value is None or self.decode_responses:
            return value
        return value.encode()

    def _check_up(self) -> None:
        if os.environ.get("STANDIN_REDIS_DOWN") == self.url:
            # redis.exceptions.ConnectionError is a ConnectionError subclass in redis-py too.
            raise ConnectionError("Connection refused")

    def ping(self) -> bool:
        self._check_up()
        return True

    def smembers(self, key: str) -> set[str | bytes | None]:
        self._check_up()
        with _server(write=False) as data:
            return {self._reply(member) for member in data.get(key, [])}

    def hmget(self, key: str, fields: list[str]) -> list[str | bytes | None]:
        self._check_up()
        with _server(write=False) as data:
            found = data.get(key) or {}
            return [self._reply(found.get(field)) for field in fields]

    def exists(self, key: str) -> int:
        self._check_up()
        with _server(write=False) as data:
            return int(key in data)

    def hexists(self, key: str, field: str) -> bool:
        self._check_up()
        with _server(write=False) as data:
            return field in (data.get(key) or {})

    def pipeline(self, transaction: bool = True) -> Pipeline:
        return Pipeline(self)

    # The writes go through a pipeline of one, so every change is made under one lock.
    def hset(self, key: str, field: str | None = None, value: Any = None, mapping=None) -> None:
        with self.pipeline() as pipe:
            pipe.hset(key, field, value, mapping)
            pipe.execute()

    def sadd(self, key: str, *members: str) -> None:
        with self.pipeline() as pipe:
            pipe.sadd(key, *members)
            pipe.execute()

    def srem(self, key: str, *members: str) -> None:
        with self.pipeline() as pipe:
            pipe.srem(key, *members)
            pipe.execute()

    def delete(self, *keys: str) -> None:
        with self.pipeline() as pipe:
            pipe.delete(*keys)
            pipe.execute()


class Pipeline:
    """redis-py's pipeline: commands queued, then run together by ``execute``."""

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.commands: list[tuple[str, tuple[Any, ...]]] = []

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.commands.clear()

    def hset(self, key: str, field: str | None = None, value: Any = None, mapping=None) -> None:
        items = dict(mapping or {})
        if field is not None:
            items[field] = value
        self.commands.append(("hset", (key, {k: _text(v) for k, v in items.items()})))

    def sadd(self, key: str, *members: str) -> None:
        self.commands.append(("sadd", (key, [_text(m) for m in members])))

    def srem(self, key: str, *members: str) -> None:
        self.commands.append(("srem", (key, [_text(m) for m in members])))

    def delete(self, *keys: str) -> None:
        self.commands.append(("delete", keys))

    def expire(self, key: str, seconds: int) -> None:
        """Kept for the calls' sake: keys never expire here (see the module's note)."""

    def execute(self) -> list[Any]:
        self.client._check_up()
        with _server(write=True) as data:
            for name, args in self.commands:
                if name == "hset":
                    key, items = args
                    data.setdefault(key, {}).update(items)
                elif name == "sadd":
                    key, members = args
                    data[key] = sorted({*data.get(key, []), *members})
                elif name == "srem":
                    key, members = args
                    data[key] = [m for m in data.get(key, []) if m not in members]
                else:
                    for key in args:
                        data.pop(key, None)
        done = [True] * len(self.commands)
        self.commands.clear()
        return done
