"""TraefikIngress: the Traefik service in the owning stack, network look-ups elsewhere."""

from __future__ import annotations

import pytest

from harness import Rendering, render

INGRESS = "brandclub:swarm:TraefikIngress"


def test_prod_runs_the_one_traefik(rendered: dict[str, Rendering]) -> None:
    traefik = rendered["prod"].service("traefik", "traefik")
    # Its arguments, in full: traefik/test_traefik_static.py.
    assert traefik.container["image"].startswith("traefik:v3")
    ports = {
        (p["targetPort"], p["publishedPort"], p["publishMode"])
        for p in traefik.inputs["endpointSpec"]["ports"]
    }
    assert ports == {(80, 80, "host"), (443, 443, "host")}
    # Host-mode ports cannot be bound twice on a node: the update must stop the old task first.
    assert traefik.inputs["updateConfig"]["order"] == "stop-first"
    assert traefik.inputs["taskSpec"]["placement"]["constraints"] == ["node.role == manager"]
    [socket] = [m for m in traefik.container["mounts"] if m["target"] == "/var/run/docker.sock"]
    assert socket["readOnly"] is True


def test_owning_stack_creates_the_swarm_wide_networks(rendered: dict[str, Rendering]) -> None:
    networks = {
        n.inputs["name"]: n.inputs
        for n in rendered["prod"].children_of(INGRESS)
        if n.type == "docker:index/network:Network"
    }
    assert set(networks) == {"traefik-public", "shared-services"}
    for inputs in networks.values():
        assert inputs["driver"] == "overlay" and inputs["attachable"] is True
    certificates = rendered["prod"].named("ingress-certificates-volume")
    assert certificates.options["retainOnDelete"] is True


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_other_stacks_look_the_networks_up_by_name(
    rendered: dict[str, Rendering], stack: str
) -> None:
    rendering = rendered[stack]
    assert "traefik_traefik" not in rendering.services
    assert not [r for r in rendering.children_of(INGRESS)]
    looked_up = {args["name"] for token, args in rendering.invokes if "getNetwork" in token}
    assert looked_up == {"traefik-public", "shared-services"}
    frontend = rendering.service(f"brandclub-{stack}", "frontend")
    assert "traefik-public-id" in frontend.network_ids


def test_ownership_is_a_config_choice() -> None:
    dev_owns = render(
        "dev", {"brandclub:ingress": {"manage": True, "acmeEmail": "dev@brandclub.com"}}
    )
    assert "traefik_traefik" in dev_owns.services
    prod_borrows = render("prod", {"brandclub:ingress": {"manage": False}})
    assert "traefik_traefik" not in prod_borrows.services


def test_traefik_reads_a_request_as_long_as_nginx_waits_for_the_backend(
    rendered: dict[str, Rendering],
) -> None:
    """Traefik v3 ends a request after 60 s of reading (respondingTimeouts.readTimeout); a slow
    upload within clientMaxBodySize must get frappe.proxyReadTimeout, as behind nginx."""
    args = rendered["prod"].service("traefik", "traefik").container["args"]
    assert "--entrypoints.websecure.transport.respondingTimeouts.readTimeout=120s" in args
    slower = render("prod", {"brandclub:frappe": {"proxyReadTimeout": 600}})
    args = slower.service("traefik", "traefik").container["args"]
    assert "--entrypoints.websecure.transport.respondingTimeouts.readTimeout=600s" in args
