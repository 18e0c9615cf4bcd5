"""Each configuration knob that is not a stack-file figure reaches the inputs it should."""

from __future__ import annotations

from harness import Rendering, render


def test_site_name_overrides_the_first_domain() -> None:
    rendering = render("prod", {"brandclub:frappe": {"siteName": "www.brandclub.com"}})
    env = rendering.service("brandclub-prod", "frontend").container["env"]
    assert env["FRAPPE_SITE_NAME_HEADER"] == "www.brandclub.com"
    # Every other domain redirects to the site's: that is the site's address.
    assert rendering.exports["siteUrl"] == "https://www.brandclub.com"


def test_frontend_proxy_settings() -> None:
    rendering = render(
        "dev",
        {
            "brandclub:frappe": {
                "clientMaxBodySize": "200m",
                "proxyReadTimeout": 600,
                "realIpFrom": "172.16.0.0/12",
            }
        },
    )
    env = rendering.service("brandclub-dev", "frontend").container["env"]
    assert env["CLIENT_MAX_BODY_SIZE"] == "200m"
    assert env["PROXY_READ_TIMEOUT"] == "600"
    assert env["UPSTREAM_REAL_IP_ADDRESS"] == "172.16.0.0/12"


def test_app_placement_reaches_app_services_only() -> None:
    rendering = render(
        "prod",
        {
            "brandclub:placement": {
                "app": ["node.labels.tier == app"],
                "data": ["node.hostname == db1"],
            }
        },
    )
    for name, service in rendering.services.items():
        constraints = service.inputs["taskSpec"].get("placement", {}).get("constraints")
        if name == "traefik_traefik":
            assert constraints == ["node.role == manager"]
        elif name.startswith("brandclub-db-prod_") or name in (
            "brandclub-prod_backup",
            "brandclub-prod_restore-drill",
        ):
            # The backups' node; Pulumi.prod.yaml's data node label comes on top.
            assert constraints == ["node.hostname == db1", "node.labels.brandclub.data == true"]
        else:
            assert constraints == ["node.labels.tier == app"], name


def test_backup_schedule_and_location() -> None:
    rendering = render(
        "prod",
        {"brandclub:backup": {"time": "03:30", "retentionDays": 14, "hostPath": "/srv/backups"}},
    )
    backup = rendering.service("brandclub-prod", "backup")
    assert backup.container["env"]["BACKUP_TIME"] == "03:30"
    assert backup.container["env"]["BACKUP_RETENTION_DAYS"] == "14"
    assert {"target": "/backups", "source": "/srv/backups", "type": "bind"}.items() <= next(
        m for m in backup.container["mounts"] if m["target"] == "/backups"
    ).items()


def test_traefik_constraint_label_and_log_level() -> None:
    rendering = render(
        "prod", {"brandclub:ingress": {"constraintLabel": "edge", "logLevel": "DEBUG"}}
    )
    args = rendering.service("traefik", "traefik").container["args"]
    assert "--providers.swarm.constraints=Label(`traefik.constraint-label`,`edge`)" in args
    assert "--log.level=DEBUG" in args
    assert rendering.service("brandclub-prod", "frontend").labels["traefik.constraint-label"] == (
        "edge"
    )


def test_rollout_settings_reach_app_services_not_data_services() -> None:
    rendering = render(
        "staging",
        {"brandclub:rollout": {"parallelism": 2, "delay": "20s", "convergeTimeout": "15m"}},
    )
    backend = rendering.service("brandclub-staging", "backend").inputs
    assert backend["updateConfig"]["parallelism"] == 2
    assert backend["updateConfig"]["delay"] == "20s"
    assert backend["convergeConfig"]["timeout"] == "15m"
    mariadb = rendering.service("brandclub-db-staging", "mariadb").inputs
    assert mariadb["updateConfig"]["parallelism"] == 1
    assert mariadb["updateConfig"]["delay"] == "0s"


def test_services_carry_their_swarm_stack_namespace(rendered: dict[str, Rendering]) -> None:
    for stack, rendering in rendered.items():
        for name, service in rendering.services.items():
            namespace = name.split("_", 1)[0]
            assert service.labels["com.docker.stack.namespace"] == namespace
            assert service.labels.get("brandclub.environment", stack) == stack


def test_workers_get_time_to_finish_their_job(rendered: dict[str, Rendering]) -> None:
    # Each worker's longest job timeout plus a minute (tests/test_app_layer.py has the table).
    for worker, grace in (("queue-default", "6m"), ("queue-short", "6m"), ("queue-long", "26m")):
        service = rendered["prod"].service("brandclub-prod", worker)
        assert service.container["stopGracePeriod"] == grace
    mariadb = rendered["prod"].service("brandclub-db-prod", "mariadb")
    assert mariadb.container["stopGracePeriod"] == "2m"
