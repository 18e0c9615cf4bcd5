"""Stand-in for RQ's ``Worker``, as the stand-in Frappe's ``bench worker`` runs it
(frappe/utils/background_jobs.py start_worker: ``Worker(queues, connection=...)``, then
``work()``), over the stand-in Redis beside it: the unit tier has neither RQ nor Redis. The live
image runs the real RQ (Debian's python3-rq); this follows its rq/worker.py (rq 1.13):

- the worker is named ``uuid4().hex`` when given no name, as Frappe 15 gives it none
  (``BaseWorker.__init__``);
- ``register_birth`` writes the hash ``rq:worker:<name>`` (birth, last_heartbeat, queues joined
  by commas, pid, hostname = socket.gethostname(), version, python_version) and adds the key to
  ``rq:workers`` and ``rq:workers:<queue>`` (rq/worker_registration.py ``register``);
- SIGTERM or SIGINT asks for a warm shutdown (``request_stop``): an idle worker stops at once; a
  busy one records ``shutdown_requested_date`` and stops when its job is done; a second signal is
  a cold shutdown (``request_force_stop``);
- on the way out ``register_death`` removes the key from those sets and sets ``death``.

It runs no jobs: nothing in the unit tier enqueues any. $STANDIN_WORKER_JOB_SECONDS makes the
worker busy, from its start, with a job that runs that long (one it found waiting in its
queue), so a test sees what a rollout's SIGTERM meets when a worker is mid-job.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import sys
import time
from typing import Any
from uuid import uuid4

__all__ = ["Worker"]
VERSION = "1.13.0"


def _now() -> str:
    # rq.utils.utcformat
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StopRequested(Exception):  # noqa: N818 (RQ's name)
    """rq.worker.StopRequested: raised by the signal handler to leave an idle worker's loop."""


class Worker:
    redis_worker_namespace_prefix = "rq:worker:"
    redis_workers_keys = "rq:workers"

    def __init__(
        self, queues: list[Any] | str, name: str | None = None, connection: Any = None, **_: Any
    ) -> None:
        queues = [queues] if isinstance(queues, str) else queues
        # A queue is given by name (as Frappe does) or as a Queue with a ``name``.
        self.queues = [queue if isinstance(queue, str) else queue.name for queue in queues]
        self.name = name or uuid4().hex
        self.key = self.redis_worker_namespace_prefix + self.name
        self.connection = connection
        self.busy = False
        self.stop_requested = False

    def queue_names(self) -> list[str]:
        return list(self.queues)

    def log(self, message: str) -> None:
        # RQ logs to stderr through logging, as "HH:MM:SS message".
        print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)

    def register_birth(self) -> None:
        now = _now()
        with self.connection.pipeline() as pipe:
            pipe.delete(self.key)
            pipe.hset(
                self.key,
                mapping={
                    "birth": now,
                    "last_heartbeat": now,
                    "queues": ",".join(self.queue_names()),
                    "pid": os.getpid(),
                    "hostname": socket.gethostname(),
                    "version": VERSION,
                    "python_version": sys.version,
                },
            )
            pipe.sadd(self.redis_workers_keys, self.key)
            for queue in self.queue_names():
                pipe.sadd(f"rq:workers:{queue}", self.key)
            pipe.expire(self.key, 420 + 60)
            pipe.execute()

    def register_death(self) -> None:
        with self.connection.pipeline() as pipe:
            pipe.srem(self.redis_workers_keys, self.key)
            for queue in self.queue_names():
                pipe.srem(f"rq:workers:{queue}", self.key)
            pipe.hset(self.key, "death", _now())
            pipe.expire(self.key, 60)
            pipe.execute()

    def request_force_stop(self, signum: int, frame: object) -> None:
        self.log("Cold shut down")
        raise SystemExit()

    def request_stop(self, signum: int, frame: object) -> None:
        signal.signal(signal.SIGINT, self.request_force_stop)
        signal.signal(signal.SIGTERM, self.request_force_stop)
        self.log("Warm shut down requested")
        if not self.busy:
            raise StopRequested()
        self.stop_requested = True
        self.connection.hset(self.key, "shutdown_requested_date", _now())
        self.log(
            "Stopping after current horse is finished. Press Ctrl+C again for a cold shutdown."
        )

    def work(self, burst: bool = False, **_: Any) -> bool:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        try:
            self.register_birth()
            self.log(f"Worker {self.key}: started with PID {os.getpid()}, version {VERSION}")
            self.log(f"*** Listening on {','.join(self.queue_names())}...")
            job_seconds = float(os.environ.get("STANDIN_WORKER_JOB_SECONDS") or 0)
            if job_seconds:
                self.busy = True
                # A signal's handler returns while busy, and sleep resumes (PEP 475): the job
                # runs its full length, as RQ's work horse would.
                time.sleep(job_seconds)
                self.busy = False
            while not (burst or self.stop_requested):
                signal.pause()  # waiting on the queue until a signal's handler raises
        except StopRequested:
            pass
        finally:
            self.register_death()
        return True
