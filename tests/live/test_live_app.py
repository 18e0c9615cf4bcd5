"""Rollouts as users see them, and issue 9 items 6, 7, 12 and 13 on the swarm: a rolling update
of the backend, frontend and websocket (2 replicas each) answered without a failed request
through Traefik (issue 11, property 8) and through the frontend itself, which follows backend
task replacements (and frappe_docker's default template does not); realtime authentication
works on both routes (and a broken path fails as Frappe fails); bad releases never leave the
Frappe services on two images, with every request through Traefik answered by the running
release; killed tasks are replaced. Runs after test_live_traefik.py (conftest orders them); the
destructive tests come last."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.live.deployment import FRONTEND_URL, PROBE_NETWORK, DevDeployment
from tests.live.helpers import (
    LOOP_COUNT,
    LOOP_INTERVAL,
    LOOP_TIMEOUT,
    app_images,
    ensure_app_version,
    mariadb,
    migrations,
    notes,
    stopped_exit_codes,
    wait_old_containers_gone,
)
from tests.live.images.build import (
    APP_REPOSITORY,
    BROKEN_BACKEND_VERSION,
    BROKEN_HTTP500_VERSION,
    BROKEN_WORKER_VERSION,
)
from tests.live.ingress import Client, Loop
from tests.live.rendering import SITE
from tests.live.swarm import (
    TEST_LABEL,
    docker,
    running_tasks,
    service_state,
    the_task,
    wait_converged,
    wait_for,
    wait_replaced,
)

pytestmark = pytest.mark.live

DEFAULT_FRONTEND = "brandclub-live-default-frontend"
DEFAULT_FRONTEND_URL = f"http://{DEFAULT_FRONTEND}:8080"
WEBSOCKET_URL = "http://brandclub-dev_websocket:9000"
# Polling sessions through the frontend: each a coin toss per request without stickiness.
POLLING_SESSIONS = 4
# How long the loops go on after a rollout converged: past the old tasks' stop.
LOOPS_AFTER_ROLLOUT = 3


@pytest.fixture(scope="module")
def default_frontend(dev: DevDeployment) -> Iterator[str]:
    """A second frontend exactly like the program's (image, command, environment, networks,
    dnsrr) but with the Frappe image's own template: no config mounted over it."""
    spec = dev._rendered.compose(dev.app_stack)["services"]["frontend"]
    flags = ["--name", DEFAULT_FRONTEND, "--label", f"{TEST_LABEL}=1", "--endpoint-mode", "dnsrr"]
    # The environment's network (where "backend" and "websocket" resolve) and the probe's; not
    # the realtime network, whose site-name alias is the program's addition.
    internal = next(n for n in spec["networks"] if n.endswith("-network"))
    flags += ["--network", internal, "--network", PROBE_NETWORK]
    environment = spec["environment"]
    if isinstance(environment, dict):
        environment = [f"{key}={value}" for key, value in environment.items()]
    for pair in environment:
        flags += ["--env", pair]
    # The image's own frontend command: its entrypoint renders the image's template (no drain
    # wrapper, whose script is a config this twin does not mount, and no websocket task list,
    # which only the program's template includes).
    command = ["nginx-entrypoint.sh"]
    docker("service", "create", "--detach", *flags, spec["image"], *command)
    wait_converged([DEFAULT_FRONTEND], 120)
    yield DEFAULT_FRONTEND
    docker("service", "rm", DEFAULT_FRONTEND, check=False)


def restart(service: str) -> None:
    """A fresh task (nginx resolves its upstreams again), as restarting a frontend does."""
    docker("service", "update", "--force", "--detach", service)
    wait_for(
        f"{service} to restart",
        lambda: service_state(service).converged,
        120,
        diagnose=lambda: service_state(service).describe(),
    )


def get_status(dev: DevDeployment, url: str) -> int | str:
    """The status of /api/method/ping at ``url``, or "timeout": nginx holding a dead task's
    address either gets "no route to host" (502) or waits for a connection until the probe's
    10 s timeout."""
    spec = {"method": "GET", "url": url + "/api/method/ping", "headers": {}}
    result = dev.probe("http", json.dumps(spec))
    if result.returncode != 0 and "TimeoutError" in result.stderr:
        return "timeout"
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["status"]


# The site stayed down: nginx answers 502 or nothing at all within the timeout.
SITE_DOWN = (502, "timeout")


def same_image_everywhere(dev: DevDeployment, tag: str) -> None:
    images = app_images(dev)
    assert set(images.values()) == {f"{APP_REPOSITORY}:{tag}"}, images


# --- rollouts through Traefik (issue 11, property 8) and item 6 --------------------------------


def traefik_loops(client: Client) -> dict[str, Loop]:
    """Bounded request loops from the host's network through Traefik (HTTPS, the site's Host):
    one to the app (frontend -> backend), one to the realtime server (an Engine.IO handshake
    on /socket.io, Traefik -> websocket). No sticky cookie: Traefik balances every request."""
    return {
        name: Loop(
            name,
            lambda: client.connection(SITE, timeout=LOOP_TIMEOUT),
            path,
            LOOP_COUNT,
            LOOP_INTERVAL,
        ).start()
        for name, path in (
            ("traefikFrontend", "/api/method/version"),
            ("traefikWebsocket", "/socket.io/?EIO=4&transport=polling"),
        )
    }


def test_rollout_through_traefik_loses_no_request_and_the_frontend_follows_the_backend(
    dev: DevDeployment, client: Client, default_frontend: str, live_report: dict[str, Any]
) -> None:
    """v1 -> v2 in the program's order (the backend's two tasks, then the frontend's, the
    websocket's and the workers'), start-first, under bounded request loops through Traefik
    and straight at the program's frontend: no request fails and every one is answered by v1 or
    v2 (or by Frappe's 503 while the migrate job holds the site in maintenance, counted apart),
    although every task of every service Traefik or nginx routes to is replaced under dnsrr. The
    same nginx with the image's default template, loaded at the same time, keeps the replaced
    tasks' addresses: it fails requests and still answers 502 after everything converged. The
    site's data and the data services are untouched."""
    ensure_app_version(dev, "v1")
    title = f"written under v1 at {time.time():.0f}"
    dev.post("/api/resource/Note", {"title": title})
    database_before = the_task(mariadb(dev))
    data_versions = {name: service_state(name).version for name in dev.services(dev.data_stack)}
    restart(default_frontend)
    assert get_status(dev, DEFAULT_FRONTEND_URL) == 200
    through_traefik = traefik_loops(client)
    ours = dev.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT)
    theirs = dev.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT, DEFAULT_FRONTEND_URL)
    time.sleep(2)  # requests are flowing before the rollout starts
    rollout = dev.rollout("v2")
    # The loops go on until the last v1 task has stopped (Docker signals a replaced task a
    # moment after its service converged, and the program's drain keeps it serving before
    # that), and a little past it.
    old_gone = wait_old_containers_gone(dev, "v1")
    time.sleep(LOOPS_AFTER_ROLLOUT)
    summaries = {name: loop.finish() for name, loop in through_traefik.items()}
    summary, default_summary = ours.finish(), theirs.finish()
    after = get_status(dev, DEFAULT_FRONTEND_URL)
    live_report["rolloutThroughTraefik"] = {
        "rollout": rollout.report(),
        "oldTasksStoppedSecondsAfter": old_gone,
        **summaries,
        "programFrontend": summary,
        "defaultTemplate": default_summary,
        "defaultTemplateStatusAfter": after,
    }
    print(f"v1 -> v2 in {rollout.seconds}s: {summaries}; frontend: {summary}")
    assert rollout.ok, rollout.report()
    # A new image re-runs exactly the jobs whose inputs take the image (create-site ignores it),
    # then the services go in the program's order: the backend alone, then the rest.
    assert list(rollout.job_seconds) == [
        "jobs-configurator",
        "jobs-boot-check",
        "jobs-migrate",
    ]
    backend = dev.service(dev.app_stack, "backend")
    assert rollout.layers[0].changed == [backend], rollout.report()
    assert set(rollout.layers[1].changed) == set(app_images(dev)) - {backend}, rollout.report()
    same_image_everywhere(dev, "v2")
    # The old scheduler took Swarm's SIGTERM (143: passed on by Docker's init) instead of being
    # killed when its grace period ran out (137), which every stop-first update waited for.
    scheduler_exits = stopped_exit_codes(dev.service(dev.app_stack, "scheduler"), "v1")
    assert scheduler_exits and 137 not in scheduler_exits, scheduler_exits
    for name, loop_summary in {**summaries, "programFrontend": summary}.items():
        assert loop_summary["failed"] == 0, (name, loop_summary["errors"])
        assert set(loop_summary["versions"]) == {"v1", "v2"}, (name, loop_summary)
        assert loop_summary["sent"] < LOOP_COUNT, f"{name}: the loop ran out before the end"
    assert default_summary["failed"] > 0, default_summary
    assert after in SITE_DOWN, "frappe_docker's template should keep the replaced backend's address"
    # The site's data, and the data services, untouched by an app rollout.
    assert title in notes(dev)
    database_after = the_task(mariadb(dev))
    assert (database_after.container_id, database_after.started_at) == (
        database_before.container_id,
        database_before.started_at,
    ), "the MariaDB task was restarted by an app rollout"
    assert {name: service_state(name).version for name in data_versions} == data_versions


# --- item 7: realtime ---------------------------------------------------------------------------


def direct_route_headers(dev: DevDeployment) -> dict[str, str]:
    """What Traefik's router to the websocket sets (the program's middleware labels), plus the
    Host a browser on the site sends."""
    labels = dev._rendered.compose(dev.app_stack)["services"]["websocket"]["deploy"]["labels"]
    marker = ".headers.customRequestHeaders."
    headers = {key.split(marker, 1)[1]: value for key, value in labels.items() if marker in key}
    assert set(headers) == {"Origin", "X-Frappe-Site-Name"}, labels
    return {"Host": SITE, **headers}


def test_logged_in_session_joins_the_site_through_the_frontend(
    dev: DevDeployment, live_report: dict[str, Any]
) -> None:
    spec = dev.realtime_spec(FRONTEND_URL, {"Host": SITE})
    joined = dev.realtime(spec)
    live_report.setdefault("realtime", {})["frontend-websocket"] = joined
    assert joined["connected"], joined
    # Published to the room "user:Administrator": only a socket Frappe authenticated as the
    # logged-in user is in it.
    assert joined["event"] == spec["publish"]["message"], joined


def test_polling_sessions_through_the_frontend_stay_on_one_websocket_task(
    dev: DevDeployment, live_report: dict[str, Any]
) -> None:
    """Issue 26: with two websocket tasks, every request of a socket.io polling session through
    nginx reaches the task that answered its handshake (the sticky upstream); a request that
    reached the other task would get 400 "Session ID unknown" and the session would fail.
    Several sessions, one after the other, each its own login."""
    websocket = dev.service(dev.app_stack, "websocket")
    assert len(running_tasks(websocket)) >= 2, "one websocket task would prove nothing"
    summaries, failed = dev.polling_through_frontend(POLLING_SESSIONS)
    live_report.setdefault("realtime", {})["frontend-polling"] = summaries
    assert not failed, failed


def test_logged_in_session_joins_the_site_directly(
    dev: DevDeployment, live_report: dict[str, Any]
) -> None:
    spec = dev.realtime_spec(WEBSOCKET_URL, direct_route_headers(dev))
    joined = dev.realtime(spec)
    live_report.setdefault("realtime", {})["direct"] = joined
    assert joined["connected"], joined
    assert joined["event"] == spec["publish"]["message"], joined


def test_broken_realtime_paths_fail_as_frappe_fails(
    dev: DevDeployment, default_frontend: str
) -> None:
    """Without the program's route the realtime server's session check goes to the public
    domain, which does not resolve inside the swarm (frappe_docker issue #1481); another
    namespace or another Host is refused before that."""
    restart(default_frontend)
    # Inside this swarm the site's name resolves on the realtime network only, to the program's
    # frontend on 8080; in a swarm without that network it does not resolve at all:
    # "Unauthorized: Error: getaddrinfo ENOTFOUND <site>" (the stand-in's unit tests show it).
    refused = re.compile(r"^Unauthorized: Error: connect ECONNREFUSED [0-9.]+:(80|443)$")
    # A refusal arrives within a second; the client would otherwise wait its whole timeout.
    quick = {"publish": None, "timeout": 5}
    # The image's default template: Origin http://<site> (port 80, served by nothing).
    through_default = dev.realtime(dev.realtime_spec(DEFAULT_FRONTEND_URL, {"Host": SITE}, **quick))
    assert not through_default["connected"], through_default
    assert refused.match(through_default["error"] or ""), through_default
    # The direct route without Traefik's middleware: the browser's own Origin (https, 443).
    browser = {"Host": SITE, "Origin": f"https://{SITE}"}
    direct = dev.realtime(dev.realtime_spec(WEBSOCKET_URL, browser, **quick))
    assert not direct["connected"] and refused.match(direct["error"] or ""), direct
    other = dev.realtime(
        {**dev.realtime_spec(FRONTEND_URL, {"Host": SITE}, **quick), "namespace": "/x.com"}
    )
    assert (other["connected"], other["error"]) == (False, "Invalid namespace")
    www = dev.realtime(dev.realtime_spec(FRONTEND_URL, {"Host": f"www.{SITE}"}, **quick))
    assert (www["connected"], www["error"]) == (False, "Invalid origin")


# --- items 12 and 13: a bad release never splits the Frappe services ----------------------------


def running_release_answers(summaries: dict[str, dict[str, Any]], tag: str) -> None:
    for name, summary in summaries.items():
        assert summary["failed"] == 0, (name, summary["errors"])
        assert set(summary["versions"]) == {tag}, (name, summary)
        assert summary["sent"] < LOOP_COUNT, f"{name}: the loop ran out before the end"


def refused_release(
    dev: DevDeployment, client: Client, tag: str, live_report: dict[str, Any], key: str
) -> None:
    """Roll out a release that cannot start, in the program's order, under request loops
    through Traefik: the boot-check job fails before migrate (issue 19 item 5), so the database
    is never migrated by code that never served, no service moves, and every request is
    answered by the running release (never held in maintenance by a migrate)."""
    ensure_app_version(dev, "v2")
    versions = {name: service_state(name).version for name in dev.services(dev.app_stack)}
    migrated = migrations(dev)
    loops = traefik_loops(client)
    time.sleep(2)
    rollout = dev.rollout(tag)
    summaries = {name: loop.finish() for name, loop in loops.items()}
    live_report[key] = {"rollout": rollout.report(), **summaries}
    assert migrations(dev) == migrated, "the broken release migrated the database"
    assert rollout.failed_job == "jobs-boot-check", rollout.report()
    assert all(summary["maintenance"] == 0 for summary in summaries.values()), summaries
    assert rollout.layers == [], "a service moved although the boot check failed"
    assert {name: service_state(name).version for name in versions} == versions
    same_image_everywhere(dev, "v2")
    running_release_answers(summaries, "v2")


def test_release_answering_500_is_refused_before_any_service_moves(
    dev: DevDeployment, client: Client, live_report: dict[str, Any]
) -> None:
    refused_release(dev, client, BROKEN_HTTP500_VERSION, live_report, "http500Release")
    log = dev.rollouts[-1].failed_job_log
    assert "the new image's apps do not import" in log
    assert "cannot import name 'get_company_currency'" in log


def test_worker_that_never_registers_is_refused_before_any_service_moves(
    dev: DevDeployment, client: Client, live_report: dict[str, Any]
) -> None:
    refused_release(dev, client, BROKEN_WORKER_VERSION, live_report, "unregisteredWorkerRelease")
    assert "worker: no worker of" in dev.rollouts[-1].failed_job_log


def test_a_backend_that_never_listens_is_rolled_back_after_migrate_and_nothing_else_moves(
    dev: DevDeployment, client: Client, live_report: dict[str, Any]
) -> None:
    """The check after migrate is the backend's own start-first update (issue 24 item 5: no job
    boots the new backend any more). A release whose apps import and whose worker and realtime
    server run, but whose backend never listens, passes the boot check and is migrated; then
    the backend goes first, its new tasks' health check (after the start period) fails, they
    never join the service's DNS, Swarm rolls them back, and pulumi up stops there, so no other
    service ever takes the release. Through Traefik and straight at the frontend every request
    is answered by the running release (or by Frappe's 503 while migrate holds the site,
    counted apart). A completed rollback is a failed rollout, never a converged one."""
    ensure_app_version(dev, "v2")
    loops = traefik_loops(client)
    direct = dev.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT)
    time.sleep(2)
    rollout = dev.rollout(BROKEN_BACKEND_VERSION)
    summaries = {name: loop.finish() for name, loop in loops.items()}
    summaries["programFrontend"] = direct.finish()
    live_report["failedRollout"] = {"rollout": rollout.report(), **summaries}
    assert rollout.failed_job is None, rollout.failed_job_log
    assert list(rollout.job_seconds) == ["jobs-configurator", "jobs-boot-check", "jobs-migrate"]
    backend = dev.service(dev.app_stack, "backend")
    assert not rollout.ok and rollout.rolled_back == [backend], rollout.report()
    assert len(rollout.layers) == 1, "services after the backend moved"
    assert service_state(backend).update_state == "rollback_completed"
    dev.converge_app()
    same_image_everywhere(dev, "v2")
    running_release_answers(summaries, "v2")


# --- destructive: killed tasks ------------------------------------------------------------------


def notes_once_answering(dev: DevDeployment, timeout: float = 60) -> list[str]:
    """The notes, as soon as the site answers again after a restart."""

    def attempt() -> list[str] | None:
        try:
            return notes(dev)
        except AssertionError:
            return None

    return wait_for("the site to answer again", attempt, timeout)


def test_one_killed_backend_of_two_costs_no_request(
    dev: DevDeployment, live_report: dict[str, Any]
) -> None:
    """Issue 24 item 4: docker kill on one of two backends under a request loop through the
    frontend. A dead task's address stays in nginx's DNS cache for up to 5 s; a connection to it
    gets no answer at all, and nginx now gives up after proxy_connect_timeout (500 ms, where it
    waited 5 s and the client gave up first: one lost request per loop) and passes the request,
    which never reached a server, to the other backend."""
    backend = dev.service(dev.app_stack, "backend")
    dev.converge_app()
    victim, *others = running_tasks(backend)
    assert others, "one backend would prove nothing"
    loop = dev.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT)
    try:
        time.sleep(3)  # requests flowing to both backends
        started = time.monotonic()
        docker("kill", victim.container_id)

        def replaced_and_healthy() -> bool:
            state = service_state(backend)
            return state.converged and victim.container_id not in {
                t.container_id for t in state.tasks
            }

        wait_for(f"{backend} to replace its killed container", replaced_and_healthy, 180)
        replaced = round(time.monotonic() - started, 1)
        time.sleep(LOOPS_AFTER_ROLLOUT)
    finally:
        summary = loop.finish()
    live_report["oneKilledBackend"] = {
        "replacedSeconds": replaced,
        "requests": summary["sent"],
        "failed": summary["failed"],
        "errors": summary["errors"][:5],
    }
    assert summary["sent"] >= 50, summary
    assert summary["failed"] == 0, summary


def test_killed_backend_is_replaced_and_the_frontend_follows(
    dev: DevDeployment, default_frontend: str, live_report: dict[str, Any]
) -> None:
    """After docker kill of every backend task, Swarm starts new ones (new addresses under
    dnsrr); the program's frontend answers again within seconds of one becoming healthy, the
    default template's keeps answering 502 (the site "stayed down after it converged")."""
    backend = dev.service(dev.app_stack, "backend")
    dev.converge_app()
    restart(default_frontend)
    before = notes(dev)
    assert before, "precondition: the earlier tests wrote rows"
    killed = {task.container_id for task in running_tasks(backend)}
    started = time.monotonic()
    docker("kill", *killed)

    def replaced() -> bool:
        state = service_state(backend)
        return state.converged and not killed & {t.container_id for t in state.tasks}

    wait_for(f"{backend} to replace its killed containers", replaced, 180)
    replaced_seconds = round(time.monotonic() - started, 1)
    dev.converge_app()
    assert notes_once_answering(dev, timeout=15) == before
    answering = round(time.monotonic() - started, 1)
    default_status = get_status(dev, DEFAULT_FRONTEND_URL)
    live_report["killedBackend"] = {
        "replacedSeconds": replaced_seconds,
        "programFrontendAnsweringSeconds": answering,
        "defaultTemplateStatus": default_status,
    }
    assert default_status in SITE_DOWN


def test_killed_mariadb_is_replaced(dev: DevDeployment, live_report: dict[str, Any]) -> None:
    title = f"written before killing MariaDB at {time.time():.0f}"
    dev.post("/api/resource/Note", {"title": title})
    before = notes(dev)
    killed = the_task(mariadb(dev))
    started = time.monotonic()
    docker("kill", killed.container_id)
    replacement = wait_replaced(mariadb(dev), killed, 180)
    live_report["killedMariadbReplacedSeconds"] = round(time.monotonic() - started, 1)
    assert replacement.started_at != killed.started_at
    after = notes_once_answering(dev)
    assert title in after
    assert after == before
