"""stacktools.backend: the state backends CI can use, and the organisation-qualified stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacktools import backend

CLOUD_ENV = {"PULUMI_ACCESS_TOKEN": "t", "PULUMI_CONFIG_PASSPHRASE": "p"}
S3_ENV = {
    "PULUMI_BACKEND_URL": "s3://brandclub-state?region=eu-central-1",
    "AWS_ACCESS_KEY_ID": "a",
    "AWS_SECRET_ACCESS_KEY": "s",
    "PULUMI_CONFIG_PASSPHRASE": "p",
}


@pytest.mark.parametrize(
    ("url", "kind", "stack"),
    [
        ("", backend.CLOUD, "brand-club/brandclub/prod"),
        ("https://api.pulumi.com", backend.CLOUD, "brand-club/brandclub/prod"),
        ("s3://brandclub-state", backend.S3, "organization/brandclub/prod"),
    ],
)
def test_supported_backends(url: str, kind: str, stack: str) -> None:
    found = backend.backend(url)
    assert found.kind == kind
    assert found.qualified("prod") == stack


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///home/runner/state", "throwaway state"),
        ("file://~/state", "throwaway state"),
        ("gs://bucket", "Google Cloud credentials"),
        ("azblob://container", "Azure Storage credentials"),
        ("bucket", "not a backend URL"),
    ],
)
def test_ci_refuses_what_cannot_work(url: str, reason: str) -> None:
    with pytest.raises(backend.BackendError, match=reason) as error:
        backend.backend(url)
    # The URL is a secret: only its scheme is named.
    assert url.split("://")[-1] not in str(error.value)


@pytest.mark.parametrize(
    ("environ", "missing"),
    [
        (CLOUD_ENV, []),
        ({"PULUMI_CONFIG_PASSPHRASE": "p"}, ["PULUMI_ACCESS_TOKEN"]),
        ({**CLOUD_ENV, "PULUMI_CONFIG_PASSPHRASE": ""}, ["PULUMI_CONFIG_PASSPHRASE"]),
        (S3_ENV, []),
        ({**S3_ENV, "AWS_SECRET_ACCESS_KEY": ""}, ["AWS_SECRET_ACCESS_KEY"]),
    ],
)
def test_missing_credentials(environ: dict[str, str], missing: list[str]) -> None:
    found = backend.backend(environ.get("PULUMI_BACKEND_URL", ""))
    assert backend.missing_credentials(found, environ) == missing


def test_cli_writes_the_qualified_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "output"
    assert backend.main(["--stack", "dev"], {**S3_ENV, "GITHUB_OUTPUT": str(output)}) == 0
    assert output.read_text() == "kind=s3\nstack=organization/brandclub/dev\n"
    assert "s3://" not in capsys.readouterr().out


def test_cli_names_missing_credentials_not_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert backend.main(["--stack", "dev"], {"PULUMI_ACCESS_TOKEN": "secret-token"}) == 2
    err = capsys.readouterr().err
    assert "PULUMI_CONFIG_PASSPHRASE" in err and "secret-token" not in err
    assert backend.main(["--stack", "dev"], {**CLOUD_ENV, "PULUMI_BACKEND_URL": "file://x"}) == 2
    assert "throwaway" in capsys.readouterr().err
