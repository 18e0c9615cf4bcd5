"""Issue 3.3 and 3.4: every password travels as a Pulumi secret into a Docker secret file, and a
rotation replaces the Docker secret under a new name."""

from __future__ import annotations

import pytest

from harness import (
    OFFSITE_IDENTITY,
    OFFSITE_RECIPIENT,
    TEST_SECRETS,
    Rendering,
    find_plain_secret,
    is_secret,
    render,
    render_error,
)

ALL_SECRETS = {
    "brandclub:dbRootPassword": "root-Zq8-new",
    "brandclub:dbRootPasswordPrevious": "root-Zq8-old",
    "brandclub:adminPassword": "admin-Zq8-first",
    "brandclub:registryPassword": "ghp-Zq8-registry",
    "brandclub:backupOffsiteSecret": "s3-Zq8-secret-key",
    "brandclub:backupOffsiteRecipients": OFFSITE_RECIPIENT,
    "brandclub:backupOffsiteIdentity": OFFSITE_IDENTITY,
    "brandclub:secretNameKey": "secrets-test-name-key-7f3e9a1c5b2d8e4f",
}
EVERYTHING_ON = {
    "brandclub:registry": {"username": "deploy-bot"},
    "brandclub:backup": {
        "offsite": {
            "kind": "s3",
            "endpoint": "https://s3.eu-central-1.amazonaws.com",
            "bucket": "brandclub-backups",
            "prefix": "prod",
            "accessKeyId": "AKIAEXAMPLE",
        }
    },
    "brandclub:restore": {"site": "brandclub.com", "date": "2026-11-20", "fromOffsite": True},
}
RSYNC = {
    "kind": "rsync",
    "target": "backup@vault.example.net:/srv/brandclub",
    "knownHosts": "vault.example.net ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample",
}


@pytest.fixture(scope="module")
def everything() -> Rendering:
    """prod with every secret-bearing feature switched on."""
    return render("prod", EVERYTHING_ON, secrets=ALL_SECRETS)


def _secrets_by_name(rendering: Rendering) -> dict[str, str]:
    return {r.name: r.inputs["name"] for r in rendering.of_type("docker:index/secret:Secret")}


@pytest.mark.parametrize("key", list(ALL_SECRETS))
def test_no_secret_value_appears_unwrapped_in_any_input(everything: Rendering, key: str) -> None:
    value = ALL_SECRETS[key]
    for resource in everything.resources:
        assert find_plain_secret(resource.raw_inputs, value) == [], resource.name


def test_no_secret_reaches_a_container_environment(everything: Rendering) -> None:
    for name, service in everything.services.items():
        env = service.container.get("env") or {}
        for value in ALL_SECRETS.values():
            assert value not in " ".join(env.values()), name
    for job in everything.of_type("command:local:Command"):
        for value in ALL_SECRETS.values():
            assert value not in job.inputs["environment"]["JOB_ENV"], job.name


# The one secret no deploy replaces: MariaDB's, pinned (issue 24 item 1).
PINNED = "data-mariadb-root-password"


def test_every_docker_secret_is_wrapped_and_named_by_fingerprint(everything: Rendering) -> None:
    secrets = everything.of_type("docker:index/secret:Secret")
    assert {s.name for s in secrets} == {
        PINNED,
        "jobs-admin-password",
        "jobs-db-root-password",
        "jobs-db-root-password-previous",
        "jobs-backup-offsite-identity",
        "app-backup-offsite",
        "app-backup-offsite-recipients",
        "app-restore-drill-db-root-password",
    }
    for secret in secrets:
        assert is_secret(secret.raw_inputs["data"]), secret.name
        if secret.name == PINNED:
            assert secret.inputs["name"] == "brandclub-db-prod-mariadb-initial-root-password"
            continue
        base, _, fingerprint = secret.inputs["name"].rpartition("-")
        assert len(fingerprint) == 10 and int(fingerprint, 16) >= 0, secret.name
        assert base.startswith(("brandclub-db-prod-", "brandclub-prod-")), secret.name


def test_offsite_credentials_are_a_secret_file_of_the_backup_service(
    everything: Rendering,
) -> None:
    backup = everything.service("brandclub-prod", "backup")
    names = _secrets_by_name(everything)
    mounts = {m["fileName"]: m["secretName"] for m in backup.container["secrets"]}
    assert mounts == {
        "/run/secrets/backup-offsite": names["app-backup-offsite"],
        "/run/secrets/backup-offsite-recipients": names["app-backup-offsite-recipients"],
    }
    env = backup.container["env"]
    assert env["OFFSITE_KIND"] == "s3"
    assert env["OFFSITE_S3_SECRET_KEY_FILE"] == "/run/secrets/backup-offsite"
    assert env["OFFSITE_S3_BUCKET"] == "brandclub-backups"
    assert env["OFFSITE_S3_ACCESS_KEY_ID"] == "AKIAEXAMPLE"


def test_the_restore_drill_mounts_the_root_password_as_the_site_jobs_do(
    everything: Rendering,
) -> None:
    drill = everything.service("brandclub-prod", "restore-drill")
    names = _secrets_by_name(everything)
    mounts = {m["fileName"]: m["secretName"] for m in drill.container["secrets"]}
    assert mounts == {"/run/secrets/db-root-password": names["app-restore-drill-db-root-password"]}
    assert drill.container["env"]["DB_ROOT_PASSWORD_FILE"] == "/run/secrets/db-root-password"
    # The same value as the site jobs' secret: named alike but by its own purpose.
    jobs_name = names["jobs-db-root-password"].rsplit("-", 1)
    drill_name = names["app-restore-drill-db-root-password"].rsplit("-", 1)
    assert jobs_name[0] == "brandclub-prod-db-root-password"
    assert drill_name[0] == "brandclub-prod-restore-drill-db-root-password"


def test_rsync_offsite_mounts_the_key_and_pinned_host_keys() -> None:
    secrets = {
        **TEST_SECRETS,
        "brandclub:backupOffsiteSecret": "-----BEGIN OPENSSH KEY-----",
        "brandclub:backupOffsiteRecipients": OFFSITE_RECIPIENT,
    }
    rendering = render("prod", {"brandclub:backup": {"offsite": RSYNC}}, secrets=secrets)
    backup = rendering.service("brandclub-prod", "backup")
    files = sorted(m["fileName"] for m in backup.container["secrets"])
    assert files == [
        "/run/secrets/backup-offsite",
        "/run/secrets/backup-offsite-known-hosts",
        "/run/secrets/backup-offsite-recipients",
    ]
    assert backup.container["env"]["OFFSITE_AGE_RECIPIENTS_FILE"] == (
        "/run/secrets/backup-offsite-recipients"
    )
    env = backup.container["env"]
    assert env["OFFSITE_KIND"] == "rsync"
    assert env["OFFSITE_RSYNC_TARGET"] == "backup@vault.example.net:/srv/brandclub"
    assert env["OFFSITE_SSH_KEY_FILE"] == "/run/secrets/backup-offsite"
    assert env["OFFSITE_SSH_KNOWN_HOSTS_FILE"] == "/run/secrets/backup-offsite-known-hosts"


# --- Rotation ---------------------------------------------------------------------------------


def _rotated(key: str, value: str) -> Rendering:
    return render("prod", secrets={**TEST_SECRETS, key: value})


def test_rotating_the_root_password_renames_the_jobs_docker_secret_only(
    rendered: dict[str, Rendering],
) -> None:
    before = rendered["prod"]
    after = _rotated("brandclub:dbRootPassword", "rotated-root-Zq8")
    old_name = _secrets_by_name(before)["jobs-db-root-password"]
    new_name = _secrets_by_name(after)["jobs-db-root-password"]
    # Same resource (URN), new Docker name: a replacement creates the new secret first.
    assert old_name != new_name
    assert old_name.rsplit("-", 1)[0] == new_name.rsplit("-", 1)[0]
    create_site = after.named("jobs-create-site").inputs["environment"]["JOB_SECRETS"]
    assert f"source={new_name}," in create_site
    # MariaDB keeps the secret it was created with (tests/components/test_data_layer.py).
    assert _secrets_by_name(after)[PINNED] == _secrets_by_name(before)[PINNED]


def test_the_same_password_keeps_the_same_name() -> None:
    first = _secrets_by_name(render("prod"))
    second = _secrets_by_name(render("prod"))
    assert first == second


def test_rotating_the_admin_password_touches_only_its_secret_and_create_site(
    rendered: dict[str, Rendering],
) -> None:
    before = {r.urn: r.fingerprint for r in rendered["prod"].resources}
    after = {
        r.urn: r.fingerprint
        for r in _rotated("brandclub:adminPassword", "rotated-admin-Zq8").resources
    }
    assert before.keys() == after.keys()
    changed = {urn.rsplit("::", 1)[1] for urn in before if before[urn] != after[urn]}
    assert changed == {"jobs-admin-password", "jobs-create-site"}


def test_secret_names_never_contain_the_value(everything: Rendering) -> None:
    for name in _secrets_by_name(everything).values():
        for value in ALL_SECRETS.values():
            assert value not in name


# --- Config rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"brandclub:registry": {"username": "deploy-bot"}}, "brandclub:registryPassword"),
        ({"brandclub:backup": {"offsite": RSYNC}}, "brandclub:backupOffsiteSecret"),
        ({"brandclub:backup": {"offsite": RSYNC}}, "brandclub:backupOffsiteRecipients"),
        (
            {
                "brandclub:restore": {
                    "site": "brandclub.com",
                    "date": "2026-11-20",
                    "fromOffsite": True,
                }
            },
            "brandclub:backupOffsiteIdentity",
        ),
    ],
    ids=["registry", "offsite", "offsite-recipients", "restore-from-offsite"],
)
def test_a_setting_that_needs_a_secret_says_how_to_set_it(overrides: dict, key: str) -> None:
    error, registered = render_error("prod", overrides)
    assert registered == []
    [problem] = [p for p in error.problems if p.key == key]
    assert f"pulumi config set --secret {key} <value> --stack prod" in problem.expected


def test_an_optional_secret_in_plain_text_is_refused_unechoed() -> None:
    error, _ = render_error(
        "prod",
        {"brandclub:registry": {"username": "bot"}, "brandclub:registryPassword": "plain-Zq8"},
    )
    [problem] = [p for p in error.problems if p.key == "brandclub:registryPassword"]
    assert "encrypted secret" in problem.expected
    assert "plain-Zq8" not in str(error)


def test_registry_credentials_must_be_for_the_apps_registry() -> None:
    secrets = {**TEST_SECRETS, "brandclub:registryPassword": "pw-Zq8"}
    overrides = {"brandclub:registry": {"username": "bot", "server": "registry.example.com"}}
    error, _ = render_error("prod", overrides, secrets=secrets)
    [problem] = [p for p in error.problems if p.key == "brandclub:registry.server"]
    assert "ghcr.io" in problem.expected


def test_the_removed_keep_backups_for_hours_is_refused() -> None:
    """bench prunes only sites/<site>/private/backups, never the backup service's --backup-path:
    the key protected nothing and is gone (issue 9 item 19); a stack that still sets it hears so."""
    error, _ = render_error("prod", {"brandclub:backup": {"keepBackupsForHours": 168}})
    [problem] = [p for p in error.problems if p.key == "brandclub:backup.keepBackupsForHours"]
    assert "no such key" in problem.expected


# --- The secret name key ----------------------------------------------------------------------

NAME_KEY = "brandclub:secretNameKey"


def test_secret_names_are_keyed_by_the_stacks_secret_name_key(
    rendered: dict[str, Rendering],
) -> None:
    """Same password, another key: every Docker secret gets another name, but the pinned one,
    which carries no fingerprint (so a new key restarts nothing). Without the key a name cannot
    be used to test password guesses."""
    before = _secrets_by_name(rendered["prod"])
    after = _secrets_by_name(_rotated(NAME_KEY, "another-name-key-0f1e2d3c4b5a69788796a5b4"))
    assert before.keys() == after.keys()
    assert before.pop(PINNED) == after.pop(PINNED)
    for name in before:
        assert before[name] != after[name], name
        assert before[name].rsplit("-", 1)[0] == after[name].rsplit("-", 1)[0], name


def test_the_fingerprint_is_an_hmac_of_purpose_and_value() -> None:
    import hashlib
    import hmac

    from components.swarm.secrets import secret_fingerprint

    expected = hmac.new(b"k" * 32, b"purpose\0value", hashlib.sha256).hexdigest()[:10]
    assert secret_fingerprint("k" * 32, "purpose", "value") == expected
    # The separator keeps purpose and value apart.
    assert secret_fingerprint("k" * 32, "a-b", "c") != secret_fingerprint("k" * 32, "a-", "bc")


def test_a_missing_secret_name_key_says_how_to_make_one() -> None:
    secrets = {k: v for k, v in TEST_SECRETS.items() if k != NAME_KEY}
    error, registered = render_error("dev", secrets=secrets)
    assert registered == []
    [problem] = [p for p in error.problems if p.key == NAME_KEY]
    assert problem.found == "nothing"
    assert f"pulumi config set --secret {NAME_KEY} <value> --stack dev" in problem.expected


@pytest.mark.parametrize("key", ["", "short-key", "x" * 31])
def test_a_short_secret_name_key_is_refused_unechoed(key: str) -> None:
    error, registered = render_error("dev", secrets={**TEST_SECRETS, NAME_KEY: key})
    assert registered == []
    [problem] = [p for p in error.problems if p.key == NAME_KEY]
    if key:
        assert "at least 32 characters" in problem.expected
        assert "openssl rand -hex 32" in problem.expected
        assert key not in str(error)


def test_the_secret_name_key_must_be_encrypted() -> None:
    secrets = {k: v for k, v in TEST_SECRETS.items() if k != NAME_KEY}
    key = "plain-text-name-key-0123456789abcdef"
    error, registered = render_error("dev", {NAME_KEY: key}, secrets=secrets)
    assert registered == []
    [problem] = [p for p in error.problems if p.key == NAME_KEY]
    assert "encrypted secret" in problem.expected
    assert key not in str(error)


# --- the off-site key: the public half to the backup service, the private one only to a restore


def test_the_identity_reaches_only_the_restore_job_from_an_off_site_copy(
    everything: Rendering,
) -> None:
    identity = _secrets_by_name(everything)["jobs-backup-offsite-identity"]
    restore = everything.named("jobs-restore").inputs["environment"]
    assert (
        f"source={identity},target=/run/secrets/backup-offsite-identity" in (restore["JOB_SECRETS"])
    )
    assert "OFFSITE_IDENTITY_FILE=/run/secrets/backup-offsite-identity" in restore["JOB_ENV"]
    for job in everything.of_type("command:local:Command"):
        if job.name != "jobs-restore":
            assert identity not in job.inputs["environment"]["JOB_SECRETS"], job.name
    for name, service in everything.services.items():
        mounted = [m["secretName"] for m in service.container.get("secrets") or []]
        assert identity not in mounted, name


def test_a_restore_from_local_backups_mounts_no_identity() -> None:
    overrides = {"brandclub:restore": {"site": "brandclub.com", "date": "2026-11-20"}}
    rendering = render("prod", overrides)
    restore = rendering.named("jobs-restore").inputs["environment"]
    assert "backup-offsite-identity" not in restore["JOB_SECRETS"]
    assert "OFFSITE_IDENTITY" not in restore["JOB_ENV"]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("brandclub:backupOffsiteRecipients", OFFSITE_IDENTITY, "not the private identity"),
        ("brandclub:backupOffsiteRecipients", "age1short", "one or more age recipients"),
        ("brandclub:backupOffsiteIdentity", OFFSITE_RECIPIENT, "age identities"),
    ],
    ids=["identity-as-recipient", "malformed-recipient", "recipient-as-identity"],
)
def test_a_malformed_age_key_is_refused_unechoed(key: str, value: str, expected: str) -> None:
    overrides = {
        "brandclub:backup": {"offsite": RSYNC},
        "brandclub:restore": {"site": "brandclub.com", "date": "2026-11-20", "fromOffsite": True},
    }
    secrets = {**ALL_SECRETS, key: value}
    error, registered = render_error("prod", overrides, secrets=secrets)
    assert registered == []
    [problem] = [p for p in error.problems if p.key == key]
    assert expected in problem.expected
    assert value not in str(error)


def test_the_identity_outside_a_restore_from_off_site_is_refused() -> None:
    """The private identity opens every off-site copy: it belongs offline, not in the stack."""
    secrets = {**TEST_SECRETS, "brandclub:backupOffsiteIdentity": OFFSITE_IDENTITY}
    error, registered = render_error("prod", secrets=secrets)
    assert registered == []
    [problem] = [p for p in error.problems if p.key == "brandclub:backupOffsiteIdentity"]
    assert "unset unless restore.fromOffsite is true" in problem.expected
    assert OFFSITE_IDENTITY not in str(error)
