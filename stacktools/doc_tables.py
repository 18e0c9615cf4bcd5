"""The docs' tables of services and of values per environment, generated from the catalogue and
the stack files: ``python -m stacktools.doc_tables`` rewrites them, ``--check`` only compares.

A generated region of a page is the text between ``<!-- generated:NAME -->`` and
``<!-- /generated:NAME -->``; NAME is one of ``GENERATORS``. Nothing outside the markers is
touched, so the prose around a table stays hand-written while every value in it follows
``components/platform/catalogue.py`` and ``Pulumi.<stack>.yaml``
(tests/docs/test_doc_tables.py fails when a page differs from what this prints).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from components.platform import catalogue
from stacktools import pulumi_yaml

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "brandclub:"
COMMAND = "python -m stacktools.doc_tables"
REGION = re.compile(
    r"(<!-- generated:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)", re.S
)
NOT_SET = "—"

# What each service is, for the services table; a worker row says it itself (its queues).
DESCRIPTIONS = {
    "mariadb": "MariaDB",
    "redis-cache": "Redis, cache",
    "redis-queue": "Redis, queues and realtime events",
    "backend": "Frappe under gunicorn, :8000",
    "frontend": "nginx, :8080, routed by Traefik",
    "websocket": "Frappe's realtime server (node, socket.io), :9000",
    "scheduler": "Frappe's scheduler",
    "backup": "the daily backup loop",
    "restore-drill": "the restore drill, its metrics on :9150",
    "mailpit": "catches every mail the environment sends",
    "traefik": "Traefik, the swarm's ingress",
}

# The values table: a label and the keys (dotted, below brandclub: unless namespaced) whose
# values one cell shows, joined by " / ". Keys set in a stack file and named by no row get a row
# of their own after these, so a new key never goes missing from the table.
VALUE_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("`imageTag`", ("imageTag",)),
    ("`images.app`", ("images.app",)),
    ("`domains`", ("domains",)),
    ("`mariadb.version`", ("mariadb.version",)),
    (
        "`mariadb.bufferPoolSize` / `limits.memory`",
        ("mariadb.bufferPoolSize", "mariadb.limits.memory"),
    ),
    ("`mariadb.slowQueryLog` / `longQueryTime`", ("mariadb.slowQueryLog", "mariadb.longQueryTime")),
    (
        "`redisCache.maxmemory` / `limits.memory` / `appendonly`",
        ("redisCache.maxmemory", "redisCache.limits.memory", "redisCache.appendonly"),
    ),
    (
        "`redisQueue.maxmemory` / `limits.memory` / `appendonly`",
        ("redisQueue.maxmemory", "redisQueue.limits.memory", "redisQueue.appendonly"),
    ),
    (
        "`healthcheck` interval / timeout / retries / startPeriod",
        (
            "healthcheck.interval",
            "healthcheck.timeout",
            "healthcheck.retries",
            "healthcheck.startPeriod",
        ),
    ),
    (
        "`ingress.manage` / `acmeEmail` / `certificates`",
        ("ingress.manage", "ingress.acmeEmail", "ingress.certificates"),
    ),
    ("`ingress.websocketDirect`", ("ingress.websocketDirect",)),
    ("`ingress.noindex`", ("ingress.noindex",)),
    ("`ingress.hsts`", ("ingress.hsts",)),
    ("`ingress.logLevel`", ("ingress.logLevel",)),
    (
        "`ingress.acmeCaServer` / `acmeCaCertificate`",
        ("ingress.acmeCaServer", "ingress.acmeCaCertificate"),
    ),
    ("`ingress.accessLog` / `metrics`", ("ingress.accessLog", "ingress.metrics")),
    ("`backup`", ("backup",)),
    (
        "`dataProtection.protect` / `retainVolumes`",
        ("dataProtection.protect", "dataProtection.retainVolumes"),
    ),
    ("`placement`", ("placement",)),
    ("`docker:host`", ("docker:host",)),
)


def stack_config(environment: str, repo: Path = REPO) -> dict[str, Any]:
    """The ``config:`` block of ``Pulumi.<environment>.yaml`` as the Pulumi CLI reads it."""
    return pulumi_yaml.load((repo / f"Pulumi.{environment}.yaml").read_text())["config"]


def _lookup(config: dict[str, Any], key: str) -> Any:
    top, _, rest = key.partition(".")
    value = config.get(top if ":" in top else NAMESPACE + top)
    for part in rest.split(".") if rest else ():
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # Text the stack file must quote to keep it text (a MariaDB series, a clock time).
    if isinstance(value, str) and pulumi_yaml.resolve_plain(value) != value:
        return f'"{text}"'
    return text


def _resources(value: dict[str, Any]) -> str:
    return f"{_scalar(value['cpus'])} CPU, {_scalar(value['memory'])}"


def cell(value: Any) -> str:
    """A stack file value as a table cell: ``—`` where it is not set (the default applies)."""
    if value is None:
        return NOT_SET
    if isinstance(value, dict):
        if set(value) == {"cpus", "memory"}:
            return _resources(value)
        return ", ".join(f"{key}: {cell(inner)}" for key, inner in value.items())
    if isinstance(value, list):
        return ", ".join(_scalar(item) for item in value)
    return _scalar(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _covered(key: str) -> set[str]:
    top = key.partition(".")[0]
    return {top if ":" in top else NAMESPACE + top}


def values_table(repo: Path = REPO) -> str:
    """Every value the stack files set, one column per environment."""
    configs = {env: stack_config(env, repo) for env in catalogue.ENVIRONMENTS}
    header = ("Setting", *catalogue.ENVIRONMENTS)
    rows: list[list[str]] = []
    for label, keys in VALUE_ROWS:
        rows.append(
            [label] + [" / ".join(cell(_lookup(c, k)) for k in keys) for c in configs.values()]
        )
    for row in catalogue.APP_SERVICES:
        key = f"services.{row.name}"
        label = f"`{key}` replicas / limits / reservations"
        parts = (f"{key}.replicas", f"{key}.limits", f"{key}.reservations")
        rows.append(
            [label]
            + [
                NOT_SET
                if _lookup(c, key) is None
                else " / ".join(cell(_lookup(c, p)) for p in parts)
                for c in configs.values()
            ]
        )
    covered = {name for _, keys in VALUE_ROWS for key in keys for name in _covered(key)}
    covered |= {NAMESPACE + "services", NAMESPACE + "environment"}
    rest = sorted({key for c in configs.values() for key in c} - covered)
    for key in rest:
        values = [c.get(key) for c in configs.values()]
        # A secret is ciphertext in the file: docs/secrets.md documents those keys.
        if any(isinstance(v, dict) and "secure" in v for v in values):
            continue
        rows.append([f"`{key.removeprefix(NAMESPACE)}`"] + [cell(v) for v in values])
    return _table(header, rows)


def _service_cell(row: catalogue.Service, config: dict[str, Any]) -> str:
    if row.name == "mariadb":
        mariadb = config[NAMESPACE + "mariadb"]
        slow = ", slow query log" if mariadb.get("slowQueryLog") else ""
        pool, limit = cell(mariadb["bufferPoolSize"]), cell(mariadb["limits"]["memory"])
        return f"1, {pool} buffer pool, {limit} limit{slow}"
    if row.name in ("redis-cache", "redis-queue"):
        redis = config[NAMESPACE + ("redisCache" if row.name == "redis-cache" else "redisQueue")]
        aof = ", AOF" if redis.get("appendonly") else ""
        return f"1, {cell(redis['maxmemory'])}{aof}"
    if row.layer == "ingress":
        return "1" if _lookup(config, "ingress.manage") else NOT_SET
    settings = _lookup(config, f"services.{row.name}")
    return NOT_SET if settings is None else cell(settings.get("replicas"))


def services_table(repo: Path = REPO) -> str:
    """Every service of the catalogue and how many tasks each environment runs."""
    configs = {env: stack_config(env, repo) for env in catalogue.ENVIRONMENTS}
    header = ("service", "what it is", *catalogue.ENVIRONMENTS)
    rows = []
    for row in catalogue.services():
        if row.queues:
            what = f"Frappe worker: queues {', '.join(row.queues)}"
        elif row.name in DESCRIPTIONS:
            what = DESCRIPTIONS[row.name]
        else:
            raise KeyError(f"no description of service {row.name!r} in DESCRIPTIONS")
        if row.singleton:
            what += "; a singleton"
        where = {"data": " (data stack)", "ingress": " (traefik stack)"}.get(row.layer, "")
        rows.append(
            [f"`{row.name}`{where}", what] + [_service_cell(row, c) for c in configs.values()]
        )
    return _table(header, rows)


def environments_table(repo: Path = REPO) -> str:
    """Each environment's branch (the pipeline's), site and other domains, and how many tasks
    each of its services but the singletons runs."""
    from components.config.model import BRANCH_FOR_ENVIRONMENT

    header = ("environment", "branch", "site", "redirected to it", "replicas (singletons: 1)")
    rows = []
    for environment in catalogue.ENVIRONMENTS:
        config = stack_config(environment, repo)
        site, *others = _lookup(config, "domains")
        replicas = {
            (_lookup(config, f"services.{row.name}") or {}).get("replicas")
            for row in catalogue.APP_SERVICES
            if not row.singleton and _lookup(config, f"services.{row.name}") is not None
        }
        rows.append(
            [
                environment,
                f"`{BRANCH_FOR_ENVIRONMENT[environment]}`"
                if environment in BRANCH_FOR_ENVIRONMENT
                else NOT_SET,
                f"`{site}`",
                ", ".join(f"`{domain}`" for domain in others) or NOT_SET,
                " or ".join(str(count) for count in sorted(replicas)),
            ]
        )
    return _table(header, rows)


def _catalogue_table(repo: Path) -> str:
    return catalogue.markdown()


# Region name -> what it shows, read from the stack files of ``repo``.
GENERATORS: dict[str, Callable[[Path], str]] = {
    "catalogue": _catalogue_table,
    "values-per-environment": values_table,
    "services-per-environment": services_table,
    "environments": environments_table,
}


def pages(repo: Path = REPO) -> list[Path]:
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def regions(text: str) -> list[str]:
    """The names of the generated regions of a page, in order."""
    return [match["name"] for match in REGION.finditer(text)]


def regenerate(text: str, repo: Path = REPO) -> str:
    """``text`` with every generated region rewritten from ``repo``'s catalogue and stack files;
    an unknown region name is an error (a misspelt marker would otherwise never be filled)."""

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in GENERATORS:
            raise KeyError(f"no generator for the region {name!r} (known: {', '.join(GENERATORS)})")
        return match[1] + GENERATORS[name](repo) + match[4]

    return REGION.sub(replace, text)


def stale(repo: Path = REPO) -> list[Path]:
    """The pages whose generated regions differ from what the generators print now."""
    return [page for page in pages(repo) if regenerate(page.read_text(), repo) != page.read_text()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale pages")
    arguments = parser.parse_args(argv)
    outdated = stale()
    for page in outdated:
        if arguments.check:
            print(f"{page.relative_to(REPO)}: generated tables are stale; run {COMMAND}")
        else:
            page.write_text(regenerate(page.read_text(), REPO))
            print(f"{page.relative_to(REPO)}: rewritten")
    return 1 if arguments.check and outdated else 0


if __name__ == "__main__":
    sys.exit(main())
