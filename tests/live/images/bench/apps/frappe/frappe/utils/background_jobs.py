"""Background jobs through RQ, as Frappe v15's frappe/utils/background_jobs.py sets them up:
queues named ``<bench id>:<queue>``, and workers run by RQ's own ``Worker`` (Debian's
python3-rq) created without a name, as Frappe's ``start_worker`` creates them
(``Worker(queues, connection=redis_connection)``). RQ then names the worker ``uuid4().hex``
(rq/worker.py, ``BaseWorker.__init__``), so a worker registers in the queue Redis exactly as the
real image's do: ``rq:workers`` holds ``rq:worker:<uuid hex>``, a hash whose ``hostname`` is
the container's host name and whose ``queues`` lists the queue names (``register_birth``).
Frappe still defines ``get_worker_name`` (the older ``<uuid>.<hostname>.<pid>.<queue>``
names), but nothing calls it any more. The unit tier has neither RQ nor Redis: there the
stand-ins of tests/stand_ins (``rq``, ``redis``) take their place on the bench's path."""

from __future__ import annotations

import os
import signal
import socket
import time
from typing import Any, NoReturn
from uuid import uuid4

import frappe
from frappe.utils import get_bench_id

DEFAULT_TIMEOUT = 300


def get_queues_timeout() -> dict[str, int]:
    """Frappe v15's get_queues_timeout: the built-in queues, then every queue of the ``workers``
    map in common_site_config.json with its ``timeout`` (300 when it names none)."""
    workers = frappe.common_config().get("workers") or {}
    return {
        "short": DEFAULT_TIMEOUT,
        "default": DEFAULT_TIMEOUT,
        "long": 1500,
        **{queue: config.get("timeout", DEFAULT_TIMEOUT) for queue, config in workers.items()},
    }


def generate_qname(qtype: str | list[str]) -> str:
    if isinstance(qtype, list):
        qtype = ",".join(qtype)
    return f"{get_bench_id()}:{qtype}"


def get_worker_name(queue: str | None) -> str | None:
    """``<uuid>.<hostname>.<pid>.<queue>`` when the worker is limited to queues (defined by
    Frappe v15, no longer used by its ``start_worker``)."""
    if not queue:
        return None
    return f"{uuid4().hex}.{socket.gethostname()}.{os.getpid()}.{queue}"


def get_queue_list(queues: list[str] | None, build_queue_name: bool = False) -> list[str]:
    known = get_queues_timeout()
    chosen = queues or list(known)
    unknown = [queue for queue in chosen if queue not in known]
    if unknown:
        # Frappe's validate_queue, as it words it.
        raise frappe.CommandError(f"Queue should be one of {', '.join(known)}")
    return [generate_qname(queue) for queue in chosen] if build_queue_name else chosen


def enqueue(site: str, method: str, queue: str = "default", **kwargs: Any):
    """An RQ job that runs ``execute_job`` in a worker, as frappe.enqueue makes it."""
    from rq import Queue

    rq_queue = Queue(generate_qname(queue), connection=frappe.redis_client("redis_queue"))
    return rq_queue.enqueue_call(
        "frappe.utils.background_jobs.execute_job",
        timeout=get_queues_timeout()[queue],
        kwargs={
            "site": site,
            "method": method,
            "event": None,
            "job_name": method,
            "kwargs": kwargs,
            "user": "Administrator",
            "is_async": True,
        },
    )


def execute_job(site, method, event, job_name, kwargs, user=None, is_async=True, retry=0):
    """Run in the worker's work horse: the method, for the site."""
    module, _, name = method.rpartition(".")
    function = getattr(__import__(module, fromlist=[name]), name)
    return function(site, **kwargs)


def start_worker(queue: str | None = None, burst: bool = False) -> int:
    queues = [q.strip() for q in queue.split(",")] if queue else None
    names = get_queue_list(queues, build_queue_name=True)
    if frappe.BROKEN == "worker":
        # A release whose workers start but cannot work: the process lives, nothing registers.
        frappe.log(f"broken build: worker for {','.join(names)} never registers")
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
        return 0
    from rq import Worker

    connection = frappe.redis_client("redis_queue", timeout=None)
    # No name, as Frappe's start_worker: RQ names the worker with a bare uuid.
    worker = Worker(names, connection=connection)
    worker.work(logging_level="INFO", burst=burst, date_format="%Y-%m-%d %H:%M:%S")
    return 0


def start_scheduler() -> NoReturn:
    """``bench schedule``: a heartbeat in the queue Redis every few seconds.

    Like Frappe v15's ``start_scheduler`` (frappe/utils/scheduler.py: ``while True:
    time.sleep(tick); enqueue_events_for_all_sites()``) it installs no signal handler, so SIGTERM
    ends it at once, unless it is its container's PID 1 (bench's CLI ``os.execv``s the Frappe
    command, and the image's entrypoint ``exec``s bench): the kernel delivers no signal to a PID 1
    without a handler for it, and Docker then waits out the stop grace period and kills it
    (exit 137). The program runs the scheduler under Docker's init for that reason."""
    connection = frappe.redis_client("redis_queue")
    while True:
        connection.set("brandclub:scheduler:heartbeat", f"{frappe.VERSION} {time.time():.0f}")
        time.sleep(5)
