"""backup.drill: the restore drill's settings and the rules that tie it to the backup service
and to services.restore-drill, every problem reported at once."""

from __future__ import annotations

from typing import Any

import pytest

from components.config.drill import DrillSettings
from components.config.loader import ConfigError
from components.config.sections import BackupSettings
from harness import DELETE, problem_at, render, render_error

DRILL_RESOURCES = {
    "replicas": 1,
    "limits": {"cpus": 1.0, "memory": "1G"},
    "reservations": {"cpus": 0.05, "memory": "256M"},
}


def test_the_drill_is_off_by_default_with_its_documented_defaults() -> None:
    drill = BackupSettings().drill
    assert drill == DrillSettings()
    assert (drill.enabled, drill.interval_days, drill.time) == (False, 7, "04:00")
    assert (drill.doctypes, drill.metrics_port) == (["User", "ToDo"], 9150)
    assert BackupSettings().drill_state_path == "/opt/brand-club/backups/.restore-drill"


def test_prod_enables_it_and_the_other_stacks_leave_it_off() -> None:
    from harness import stack_file_config

    for stack in ("dev", "staging", "local"):
        backup = stack_file_config(stack).get("brandclub:backup", {})
        assert not backup.get("drill", {}).get("enabled", False), stack
    assert stack_file_config("prod")["brandclub:backup"]["drill"]["enabled"] is True


def test_enabled_without_a_backup_service_is_refused_with_every_other_problem() -> None:
    error, registered = render_error(
        "staging",
        {
            "brandclub:backup": {"drill": {"enabled": True}},
            "brandclub:services": {"restore-drill": DRILL_RESOURCES},
            "brandclub:redisCache": {"appendonly": True},
        },
    )
    assert isinstance(error, ConfigError) and registered == []
    keys = {problem.key for problem in error.problems}
    assert keys == {"brandclub:backup.drill.enabled", "brandclub:redisCache.appendonly"}
    problem = problem_at(error, "brandclub:backup.drill.enabled")
    assert "services.backup" in problem.expected


def test_enabled_needs_its_resources_and_resources_need_it() -> None:
    error, _ = render_error("prod", {"brandclub:services": {"restore-drill": DELETE}})
    problem = problem_at(error, "brandclub:services.restore-drill")
    assert "where backup.drill.enabled is true" in problem.expected
    error, _ = render_error("prod", {"brandclub:backup": {"drill": {"enabled": False}}})
    problem = problem_at(error, "brandclub:services.restore-drill")
    assert "unset unless backup.drill.enabled is true" in problem.expected


@pytest.mark.parametrize(
    ("drill", "key", "expected"),
    [
        ({"intervalDays": 32}, "intervalDays", "less than or equal to 31"),
        ({"intervalDays": 0}, "intervalDays", "greater than or equal to 1"),
        ({"time": "4:00"}, "time", "a 24-hour UTC time"),
        ({"time": "24:00"}, "time", "a 24-hour UTC time"),
        ({"metricsPort": 80}, "metricsPort", "greater than or equal to 1024"),
        ({"metricsPort": 70000}, "metricsPort", "less than or equal to 65535"),
        ({"metricsPort": 8000}, "metricsPort", "another port than 8000"),
        ({"doctypes": []}, "doctypes", "at least 1"),
        ({"doctypes": [""]}, "doctypes[0]", "a doctype name"),
        ({"doctypes": ["User", "To`Do"]}, "doctypes[1]", "a doctype name"),
        ({"doctypes": ["User,ToDo"]}, "doctypes[0]", "a doctype name"),
        ({"doctypes": ["User", "User"]}, "doctypes", "each doctype once"),
        ({"enable": True}, "enable", "did you mean 'enabled'"),
    ],
    ids=repr,
)
def test_bad_drill_settings_name_their_key(drill: dict[str, Any], key: str, expected: str) -> None:
    error, _ = render_error("prod", {"brandclub:backup": {"drill": drill}})
    assert isinstance(error, ConfigError)
    keys = [problem.key for problem in error.problems]
    full = f"brandclub:backup.drill.{key}"
    assert full in keys, keys
    problem = problem_at(error, full)
    assert expected.lower() in f"{problem.expected} {problem.found}".lower(), problem


def test_good_drill_settings_are_accepted() -> None:
    render(
        "prod",
        {
            "brandclub:backup": {
                "drill": {
                    "intervalDays": 31,
                    "time": "23:59",
                    "doctypes": ["Sales Invoice", "Item", "Custom_Field-2"],
                    "metricsPort": 65535,
                }
            }
        },
    )
