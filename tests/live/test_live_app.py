"""Issue 9 items 6, 7, 12 and 13 on the swarm: the frontend follows backend task replacements
(and frappe_docker's default template does not), realtime authentication works on both routes
(and a broken path fails as Frappe fails), bad releases never leave the Frappe services on two
images, and a killed task is replaced. Runs after test_live_swarm.py (conftest orders them);
the destructive tests come last."""

from __future__ import annotations

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
    notes,
)
from tests.live.images.build import (
    APP_REPOSITORY,
    BROKEN_HTTP500_VERSION,
    BROKEN_VERSION,
    BROKEN_WORKER_VERSION,
)
from tests.live.rendering import SITE
from tests.live.swarm import (
    TEST_LABEL,
    docker,
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
NAMESPACE = f"/{SITE}"


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
    docker("service", "create", "--detach", *flags, spec["image"], *spec["command"])
    wait_converged([DEFAULT_FRONTEND], 120)
    yield DEFAULT_FRONTEND
    docker("service", "rm", DEFAULT_FRONTEND, check=False)


def restart(service: str) -> None:
    """A fresh task (nginx resolves its upstreams again), as restarting a frontend does."""
    docker("service", "update", "--force", "--detach", service)
    wait_for(f"{service} to restart", lambda: service_state(service).converged, 120)


def get_status(dev: DevDeployment, url: str) -> int:
    return dev.http("GET", "/api/method/ping", url=url)["status"]


def same_image_everywhere(dev: DevDeployment, tag: str) -> None:
    images = app_images(dev)
    assert set(images.values()) == {f"{APP_REPOSITORY}:{tag}"}, images


# --- item 6: the frontend follows task replacements --------------------------------------------


def test_zero_downtime_rollout_and_the_frontend_follows_the_backend(
    dev: DevDeployment, default_frontend: str, live_report: dict[str, Any]
) -> None:
    """v2 -> v3 in the program's order under a bounded request loop: every request through the
    program's frontend is answered (by v2 or v3, or by Frappe's 503 while the migrate job holds
    the site in maintenance), although the backend's task is replaced under dnsrr. The same
    nginx with the image's default template, loaded at the same time, keeps the replaced
    task's address: it fails requests and still answers 502 after everything converged."""
    ensure_app_version(dev, "v2")
    restart(default_frontend)
    assert get_status(dev, DEFAULT_FRONTEND_URL) == 200
    ours = dev.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT)
    theirs = dev.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT, DEFAULT_FRONTEND_URL)
    time.sleep(2)  # requests are flowing before the rollout starts
    rollout = dev.rollout("v3")
    time.sleep(3)
    summary, default_summary = ours.finish(), theirs.finish()
    after = get_status(dev, DEFAULT_FRONTEND_URL)
    live_report["zeroDowntimeRollout"] = {
        "rollout": rollout.report(),
        "programTemplate": summary,
        "defaultTemplate": default_summary,
        "defaultTemplateStatusAfter": after,
    }
    print(f"v2 -> v3 in {rollout.seconds}s: {summary}; default template: {default_summary}")
    assert rollout.ok, rollout.report()
    assert summary["versions"].get("v2", 0) > 0 and summary["versions"].get("v3", 0) > 0
    assert summary["sent"] < LOOP_COUNT, "the loop ran out before the rollout converged"
    assert default_summary["failed"] > 0, default_summary
    assert after == 502, "frappe_docker's template should keep the replaced backend's address"
    if summary["failed"]:
        # Measured: the program's template follows the new task, but for up to its resolver's
        # valid=5s after Swarm stops the old backend task nginx may still hold only the old
        # address (the new task is listed moments before the old one stops): a few 502/504.
        # Closing that window needs the old backend to keep serving past the cache (a
        # pre-stop delay), which the program does not have yet. Reported, not hidden.
        pytest.xfail(
            f"issue 9 item 6 not closed: {summary['failed']} of {summary['sent']} requests "
            f"failed while the old backend task stopped: {summary['errors']}"
        )


# --- item 7: realtime ---------------------------------------------------------------------------


def realtime_spec(dev: DevDeployment, url: str, headers: dict[str, str], **extra: Any) -> dict:
    """Log in through the program's frontend as a browser on the site would (Host is the
    site, as Traefik passes it), join the site's namespace at ``url`` with ``headers``, and have
    the site publish an event to the Administrator's room."""
    site = {"Host": SITE}
    return {
        "url": url,
        "namespace": NAMESPACE,
        "headers": headers,
        "login": {
            "url": f"{FRONTEND_URL}/api/method/login",
            "usr": "Administrator",
            "pwd": dev.admin_password,
            "headers": site,
        },
        "publish": {
            "url": f"{FRONTEND_URL}/api/method/brandclub.publish_realtime",
            "event": "brandclub_probe",
            "message": {"sent": time.time()},
            "headers": site,
        },
        "timeout": 15,
        **extra,
    }


def direct_route_headers(dev: DevDeployment) -> dict[str, str]:
    """What Traefik's router to the websocket sets (the program's middleware labels), plus the
    Host a browser on the site sends."""
    labels = dev._rendered.compose(dev.app_stack)["services"]["websocket"]["deploy"]["labels"]
    marker = ".headers.customRequestHeaders."
    headers = {key.split(marker, 1)[1]: value for key, value in labels.items() if marker in key}
    assert set(headers) == {"Origin", "X-Frappe-Site-Name"}, labels
    return {"Host": SITE, **headers}


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_logged_in_session_joins_the_site_through_the_frontend(
    dev: DevDeployment, transport: str, live_report: dict[str, Any]
) -> None:
    spec = realtime_spec(dev, FRONTEND_URL, {"Host": SITE}, transports=[transport])
    joined = dev.realtime(spec)
    live_report.setdefault("realtime", {})[f"frontend-{transport}"] = joined
    assert joined["connected"], joined
    # Published to the room "user:Administrator": only a socket Frappe authenticated as the
    # logged-in user is in it.
    assert joined["event"] == spec["publish"]["message"], joined


def test_logged_in_session_joins_the_site_directly(
    dev: DevDeployment, live_report: dict[str, Any]
) -> None:
    spec = realtime_spec(dev, WEBSOCKET_URL, direct_route_headers(dev))
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
    # The image's default template: Origin http://<site> (port 80, served by nothing).
    through_default = dev.realtime(
        realtime_spec(dev, DEFAULT_FRONTEND_URL, {"Host": SITE}, publish=None)
    )
    assert not through_default["connected"], through_default
    assert refused.match(through_default["error"] or ""), through_default
    # The direct route without Traefik's middleware: the browser's own Origin (https, 443).
    browser = {"Host": SITE, "Origin": f"https://{SITE}"}
    direct = dev.realtime(realtime_spec(dev, WEBSOCKET_URL, browser, publish=None))
    assert not direct["connected"] and refused.match(direct["error"] or ""), direct
    other = dev.realtime(
        {**realtime_spec(dev, FRONTEND_URL, {"Host": SITE}, publish=None), "namespace": "/x.com"}
    )
    assert (other["connected"], other["error"]) == (False, "Invalid namespace")
    www = dev.realtime(realtime_spec(dev, FRONTEND_URL, {"Host": f"www.{SITE}"}, publish=None))
    assert (www["connected"], www["error"]) == (False, "Invalid origin")


# --- items 12 and 13: a bad release never splits the Frappe services ----------------------------


def refused_release(dev: DevDeployment, tag: str, live_report: dict[str, Any], key: str) -> None:
    """Roll out a bad release in the program's order under a request loop: the preflight job
    fails, no service moves, every request is answered by the running release (or by Frappe's
    503 while the migrate job, which runs before the preflight, holds the site)."""
    ensure_app_version(dev, "v3")
    versions = {name: service_state(name).version for name in dev.services(dev.app_stack)}
    loop = dev.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT)
    time.sleep(2)
    rollout = dev.rollout(tag)
    summary = loop.finish()
    live_report[key] = {"rollout": rollout.report(), "requests": summary}
    assert rollout.failed_job == "jobs-preflight", rollout.report()
    assert rollout.layers == [], "a service moved although the preflight failed"
    assert {name: service_state(name).version for name in versions} == versions
    same_image_everywhere(dev, "v3")
    assert summary["failed"] == 0, summary["errors"]
    assert set(summary["versions"]) == {"v3"}, summary
    assert summary["sent"] < LOOP_COUNT, "the loop ran out before the rollout ended"


def test_release_answering_500_is_refused_before_any_service_moves(
    dev: DevDeployment, live_report: dict[str, Any]
) -> None:
    refused_release(dev, BROKEN_HTTP500_VERSION, live_report, "http500Release")
    assert "/api/method/ping answered 500" in dev.rollouts[-1].failed_job_log


def test_worker_that_never_registers_is_refused_before_any_service_moves(
    dev: DevDeployment, live_report: dict[str, Any]
) -> None:
    refused_release(dev, BROKEN_WORKER_VERSION, live_report, "unregisteredWorkerRelease")
    assert "worker: no worker of" in dev.rollouts[-1].failed_job_log


def test_swarm_rolls_back_a_backend_that_never_listens_and_nothing_else_moves(
    dev: DevDeployment, live_report: dict[str, Any]
) -> None:
    """Swarm's own safety net, without the preflight: the backend goes first, its health check
    (after the program's 60 s start period) fails, Swarm rolls it back, and pulumi up stops
    there, so no other service ever takes the release. A completed rollback is a failed
    rollout, never a converged one."""
    ensure_app_version(dev, "v3")
    loop = dev.start_request_loop(LOOP_COUNT, LOOP_INTERVAL, LOOP_TIMEOUT)
    time.sleep(2)
    rollout = dev.rollout(BROKEN_VERSION, run_jobs=False)
    summary = loop.finish()
    live_report["failedRollout"] = {"rollout": rollout.report(), "requests": summary}
    backend = dev.service(dev.app_stack, "backend")
    assert not rollout.ok and rollout.rolled_back == [backend], rollout.report()
    assert len(rollout.layers) == 1, "services after the backend moved"
    assert service_state(backend).update_state == "rollback_completed"
    dev.converge_app()
    same_image_everywhere(dev, "v3")
    assert summary["failed"] == 0 and summary["maintenance"] == 0, summary
    assert set(summary["versions"]) == {"v3"}, summary
    assert summary["sent"] < LOOP_COUNT, "the loop ran out before the rollback ended"


# --- destructive: killed tasks ------------------------------------------------------------------


def notes_once_answering(dev: DevDeployment, timeout: float = 60) -> list[str]:
    """The notes, as soon as the site answers again after a restart."""

    def attempt() -> list[str] | None:
        try:
            return notes(dev)
        except AssertionError:
            return None

    return wait_for("the site to answer again", attempt, timeout)


def test_killed_backend_is_replaced_and_the_frontend_follows(
    dev: DevDeployment, default_frontend: str, live_report: dict[str, Any]
) -> None:
    """After docker kill of the backend, Swarm starts a new task (a new address under dnsrr);
    the program's frontend answers again within seconds of it becoming healthy, the default
    template's keeps answering 502 (the site "stayed down after it converged")."""
    backend = dev.service(dev.app_stack, "backend")
    dev.converge_app()
    restart(default_frontend)
    before = notes(dev)
    assert before, "precondition: the earlier tests wrote rows"
    killed = the_task(backend)
    started = time.monotonic()
    docker("kill", killed.container_id)
    wait_replaced(backend, killed, 180)
    replaced = round(time.monotonic() - started, 1)
    dev.converge_app()
    assert notes_once_answering(dev, timeout=15) == before
    answering = round(time.monotonic() - started, 1)
    default_status = get_status(dev, DEFAULT_FRONTEND_URL)
    live_report["killedBackend"] = {
        "replacedSeconds": replaced,
        "programFrontendAnsweringSeconds": answering,
        "defaultTemplateStatus": default_status,
    }
    assert default_status == 502


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
