"""A second site beside the stack's own, on the real swarm (issue 19 items 3 and 4): a half-made
one must not take the healthy site down during a migrate, and a finished one must not become
the bench's default site.

Each test makes its second site with the program's create-site job under another SITE_NAME and
removes it again (database, user, folder, marker), so the deployment keeps its one site for the
modules after this one (tests/live/conftest.py orders them).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.live.deployment import DevDeployment
from tests.live.helpers import (
    app_images,
    assert_completed,
    assert_failed,
    backend_container,
    job_env,
    job_env_with,
    site_config,
    sites_file,
    sql,
)
from tests.live.images.build import APP_REPOSITORY
from tests.live.rendering import SITE, SITES_PATH, Rendered
from tests.live.swarm import exec_in

pytestmark = pytest.mark.live

HALF_MADE = "half.brandclub-live.test"
SECOND = "second.brandclub-live.test"


def _running_release(dev: DevDeployment) -> Rendered:
    """The rendering of the release the app runs now (after the app converged): the jobs run
    with its image, so these tests neither roll the app anywhere nor migrate with another
    release than the one serving."""
    dev.converge_app()
    (image,) = set(app_images(dev).values())
    assert image.startswith(f"{APP_REPOSITORY}:"), image
    return dev.rendering(image.removeprefix(f"{APP_REPOSITORY}:"))


def _common_config(dev: DevDeployment) -> dict[str, Any]:
    return json.loads(sites_file(dev, "common_site_config.json"))


def _marker(dev: DevDeployment, site: str) -> dict[str, Any]:
    return json.loads(sites_file(dev, f".brandclub/sites/{site}.json"))


def _sites(dev: DevDeployment) -> list[str]:
    """The bench's sites as Frappe's ``--site all`` finds them: folders with a site_config.json."""
    listing = exec_in(
        backend_container(dev),
        "bash",
        "-c",
        'cd "$0" && for config in */site_config.json; do echo "${config%/*}"; done',
        SITES_PATH,
    )
    assert listing.returncode == 0, listing.stderr
    return sorted(line for line in listing.stdout.splitlines() if line != "*")


def _remove_site(dev: DevDeployment, site: str) -> None:
    """Drops the site's database and user as root and deletes everything the jobs keep of it:
    its folder, its marker, a held record, and folders create-site moved aside."""
    container = backend_container(dev)
    config = exec_in(container, "cat", f"{SITES_PATH}/{site}/site_config.json")
    if config.returncode == 0:
        settings = json.loads(config.stdout)
        database = settings["db_name"]
        user = settings.get("db_user") or database
        # Frappe's names (_<16 hex>): safe to quote into SQL.
        assert re.fullmatch(r"_[0-9a-f]+", database) and re.fullmatch(r"_[0-9a-f]+", user)
        sql(
            dev,
            f"DROP DATABASE IF EXISTS `{database}`; DROP USER IF EXISTS '{user}'@'%';"
            f" DROP USER IF EXISTS '{user}'@'localhost'",
        )
    removed = exec_in(
        container,
        "bash",
        "-c",
        'cd "$0" && rm -rf -- "$1" ".brandclub/sites/$1.json" ".brandclub/held/$1.json"'
        ' ".brandclub/half-made/$1"-*',
        SITES_PATH,
        site,
    )
    assert removed.returncode == 0, removed.stderr


def test_migrate_skips_a_half_made_site_and_the_healthy_one_keeps_serving(
    dev: DevDeployment,
) -> None:
    """Issue 19 item 3. create-site with a wrong root password fails, and so does its clean-up
    (same password): the site stays half-made, its site_config.json written, no database user,
    marker "creating". Frappe's `bench --site all migrate` stops at it (it cannot log in), which
    kept the healthy site in maintenance answering 503. migrate now skips it loudly, leaves it
    unheld, migrates the healthy site and gives its modes back. The next create-site with the
    right password cleans the half-made site up and makes it again."""
    rendering = _running_release(dev)
    assert _sites(dev) == [SITE], "precondition: the deployment has its one site"
    create, migrate = rendering.job("create-site"), rendering.job("migrate")
    # A readable, non-empty secret that is not root's password.
    wrong_root = job_env(create)["ADMIN_PASSWORD_FILE"]
    modes_before = site_config(dev).get("pause_scheduler", 0)
    try:
        failed = dev.run_job(
            create,
            JOB_ENV=job_env_with(create, SITE_NAME=HALF_MADE, DB_ROOT_PASSWORD_FILE=wrong_root),
        )
        assert_failed(create.job_name, failed)
        assert f"bench new-site {HALF_MADE} failed, and so did its clean-up" in failed.stderr
        marker = _marker(dev, HALF_MADE)
        assert marker["state"] == "creating", marker
        # In Frappe's `--site all`: its site_config.json is there, its database user is not.
        half_config = json.loads(sites_file(dev, f"{HALF_MADE}/site_config.json"))
        assert _sites(dev) == sorted([SITE, HALF_MADE])
        user = half_config.get("db_user") or half_config["db_name"]
        assert sql(dev, f"SELECT Host FROM mysql.user WHERE User = '{user}'") == []

        run = dev.run_job(migrate)
        assert_completed(migrate, run)
        assert (
            f"WARNING: skipping site {HALF_MADE}: it is half-made (create-site started it at"
            f" {marker['startedAt']} and did not finish" in run.stdout
        )
        assert f"running bench --site {SITE} migrate" in run.stdout
        assert f"site {SITE}: maintenance_mode 0, pause_scheduler {modes_before} (restored)" in (
            run.stdout
        )
        assert f"site {HALF_MADE}: maintenance_mode 1" not in run.stdout, "the half-made was held"
        config = site_config(dev)
        assert (config["maintenance_mode"], config["pause_scheduler"]) == (0, modes_before)
        assert json.loads(sites_file(dev, f"{HALF_MADE}/site_config.json")) == half_config
        ping = dev.http("GET", "/api/method/ping")
        assert ping["status"] == 200, ping

        again = dev.run_job(create, JOB_ENV=job_env_with(create, SITE_NAME=HALF_MADE))
        assert_completed(create, again)
        assert f"dropping database {half_config['db_name']} and user {user}" in again.stdout
        assert f"site {HALF_MADE} created" in again.stdout
        assert _marker(dev, HALF_MADE)["state"] == "created"
        assert _common_config(dev)["default_site"] == SITE
    finally:
        _remove_site(dev, HALF_MADE)
    assert _sites(dev) == [SITE]


def test_a_second_site_leaves_the_default_site_at_the_primary_one(dev: DevDeployment) -> None:
    """Issue 19 item 4: create-site passed `--set-default` for every site, so a second site
    became the bench's default_site. Only the stack's primary site (PRIMARY_SITE) takes it."""
    assert _sites(dev) == [SITE], "precondition: the deployment has its one site"
    assert _common_config(dev)["default_site"] == SITE
    create = _running_release(dev).job("create-site")
    assert job_env(create)["PRIMARY_SITE"] == SITE
    try:
        run = dev.run_job(create, JOB_ENV=job_env_with(create, SITE_NAME=SECOND))
        assert_completed(create, run)
        assert f"site {SECOND} created" in run.stdout
        assert _marker(dev, SECOND)["state"] == "created"
        assert _sites(dev) == sorted([SITE, SECOND])
        assert _common_config(dev)["default_site"] == SITE
    finally:
        _remove_site(dev, SECOND)
    assert _sites(dev) == [SITE]
    assert _common_config(dev)["default_site"] == SITE
