"""Traefik's static configuration (components/traefik/static.py): arguments and environment,
the ACME CA, the access log and the metrics entrypoint (issue 11)."""

from __future__ import annotations

import base64
import re

from harness import PRIVATE_CA, Rendering, render

PEBBLE = "https://10.0.0.1:14000/dir"
CONFIG = "docker:index/serviceConfig:ServiceConfig"


def _traefik(rendering: Rendering):
    return rendering.service("traefik", "traefik")


def _args(rendering: Rendering) -> list[str]:
    return _traefik(rendering).container["args"]


def test_the_static_configuration_as_prod_renders_it(rendered: dict[str, Rendering]) -> None:
    """Every argument Traefik starts with, from one builder (components/traefik/static.py)."""
    assert _args(rendered["prod"]) == [
        "--providers.swarm=true",
        "--providers.swarm.endpoint=unix:///var/run/docker.sock",
        "--providers.swarm.exposedByDefault=false",
        "--providers.swarm.network=traefik-public",
        "--providers.swarm.constraints=Label(`traefik.constraint-label`,`traefik-public`)",
        "--providers.swarm.refreshSeconds=5s",
        "--entrypoints.web.address=:80",
        "--entrypoints.web.http.redirections.entrypoint.to=websecure",
        "--entrypoints.web.http.redirections.entrypoint.scheme=https",
        "--entrypoints.web.http.redirections.entrypoint.permanent=true",
        "--entrypoints.websecure.address=:443",
        "--entrypoints.websecure.asDefault=true",
        "--entrypoints.websecure.transport.respondingTimeouts.readTimeout=120s",
        "--entrypoints.traefik.address=:8080",
        "--certificatesresolvers.letsencrypt.acme.caServer="
        "https://acme-v02.api.letsencrypt.org/directory",
        "--certificatesresolvers.letsencrypt.acme.email=ops@brandclub.com",
        "--certificatesresolvers.letsencrypt.acme.storage=/certificates/acme.json",
        "--certificatesresolvers.letsencrypt.acme.tlsChallenge=true",
        "--ping=true",
        "--ping.entryPoint=traefik",
        "--accesslog=true",
        "--accesslog.format=json",
        "--accesslog.fields.defaultMode=keep",
        "--accesslog.fields.headers.defaultMode=drop",
        "--accesslog.fields.headers.names.User-Agent=keep",
        "--entrypoints.metrics.address=:8082",
        "--metrics.prometheus=true",
        "--metrics.prometheus.entryPoint=metrics",
        "--metrics.prometheus.addEntryPointsLabels=true",
        "--metrics.prometheus.addServicesLabels=true",
        "--log.level=INFO",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
    ]
    # Let's Encrypt needs no extra roots: no environment, no CA config.
    assert not _traefik(rendered["prod"]).container.get("env")
    assert not [c for c in rendered["prod"].of_type(CONFIG) if "acme" in c.inputs["name"]]


def test_the_acme_directory_is_a_setting() -> None:
    staging = "https://acme-staging-v02.api.letsencrypt.org/directory"
    args = _args(render("prod", {"brandclub:ingress": {"acmeCaServer": staging}}))
    assert f"--certificatesresolvers.letsencrypt.acme.caServer={staging}" in args
    assert [a for a in args if ".acme.caServer=" in a] == [
        f"--certificatesresolvers.letsencrypt.acme.caServer={staging}"
    ]


def test_a_private_ca_is_trusted_through_a_docker_config_and_lego() -> None:
    rendering = render(
        "prod", {"brandclub:ingress": {"acmeCaServer": PEBBLE, "acmeCaCertificate": PRIVATE_CA}}
    )
    traefik = _traefik(rendering)
    assert f"--certificatesresolvers.letsencrypt.acme.caServer={PEBBLE}" in _args(rendering)
    [config] = [c for c in rendering.of_type(CONFIG) if "acme" in c.inputs["name"]]
    name = config.inputs["name"]
    assert re.fullmatch(r"traefik-acme-ca-certificates-[0-9a-f]{10}", name)
    assert base64.b64decode(config.inputs["data"]).decode() == PRIVATE_CA
    assert {i["label"]: i["value"] for i in config.inputs["labels"]} == {
        "brandclub.layer": "ingress"
    }
    # A new certificate is a new config beside the old one, which must then be deletable.
    assert not config.options["protect"]
    [mounted] = traefik.container["configs"]
    assert (mounted["configName"], mounted["configId"]) == (name, f"{name}-id")
    assert traefik.container["env"] == {"LEGO_CA_CERTIFICATES": mounted["fileName"]}
    assert mounted["fileName"] == "/etc/traefik/acme-ca-certificates.pem"


def test_another_ca_certificate_is_another_config() -> None:
    def config_name(pem: str) -> str:
        rendering = render(
            "prod", {"brandclub:ingress": {"acmeCaServer": PEBBLE, "acmeCaCertificate": pem}}
        )
        [config] = [c for c in rendering.of_type(CONFIG) if "acme" in c.inputs["name"]]
        return config.inputs["name"]

    first = PRIVATE_CA.split("-----END CERTIFICATE-----\n")[0] + "-----END CERTIFICATE-----\n"
    assert config_name(PRIVATE_CA) != config_name(first)
    # The same certificates written with CRLF line ends are the same config.
    assert config_name(PRIVATE_CA.replace("\n", "\r\n")) == config_name(PRIVATE_CA)


def test_access_log_never_keeps_credentials_headers(rendered: dict[str, Rendering]) -> None:
    args = _args(rendered["prod"])
    assert "--accesslog.fields.headers.defaultMode=drop" in args
    kept = [a for a in args if a.startswith("--accesslog.fields.headers.names.")]
    assert kept == ["--accesslog.fields.headers.names.User-Agent=keep"]
    more = render(
        "prod", {"brandclub:ingress": {"accessLog": {"headers": ["User-Agent", "Referer"]}}}
    )
    assert "--accesslog.fields.headers.names.Referer=keep" in _args(more)


def test_access_log_format_and_switches() -> None:
    common = _args(render("prod", {"brandclub:ingress": {"accessLog": {"format": "common"}}}))
    assert "--accesslog.format=common" in common
    quiet = _args(
        render(
            "prod",
            {"brandclub:ingress": {"accessLog": {"enabled": False}, "metrics": {"enabled": False}}},
        )
    )
    assert not [a for a in quiet if a.startswith(("--accesslog", "--metrics"))]
    assert not [a for a in quiet if a.startswith("--entrypoints.metrics.")]


def test_metrics_have_their_own_entrypoint_that_is_never_published(
    rendered: dict[str, Rendering],
) -> None:
    args = _args(rendered["prod"])
    assert "--entrypoints.metrics.address=:8082" in args
    assert "--metrics.prometheus.entryPoint=metrics" in args
    ported = render("prod", {"brandclub:ingress": {"metrics": {"port": 9100}}})
    assert "--entrypoints.metrics.address=:9100" in _args(ported)
    for rendering in (rendered["prod"], ported):
        ports = _traefik(rendering).inputs["endpointSpec"]["ports"]
        assert {p["publishedPort"] for p in ports} == {80, 443}
