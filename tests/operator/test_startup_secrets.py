"""Every service refuses to start with a missing, placeholder or short secret, naming the variable; the demo's own
generated secrets pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from shared.secrets_check import SERVICE_RULES, Rule, WeakSecret, check_service_secrets, secret_problem
from shared.settings import load_settings
from shared.stores.crypto import generate_key
from shopsync.cli import cli
from shopsync.demo import demo_environment

STRONG = "q8Jt2vVx0sLrN4mYcE7bWfK1hPzA9dGu3TiR6oXy"  # 40 characters, as TikTok issues app secrets
GOOD = {"TIKTOK_APP_KEY": "6cjes8dabc", "TIKTOK_APP_SECRET": STRONG, "SHOPSYNC_SECRET_KEY": generate_key(),
        "SHOPSYNC_ADMIN_TOKEN": STRONG, "TIKTOK_APP_SECRET_PREVIOUS": "", "KAFKA_SASL_PASSWORD": ""}
TOKEN = Rule("SHOPSYNC_ADMIN_TOKEN")


@pytest.mark.parametrize(("value", "problem"), [
    ("", "must be set"),
    ("change-me", "placeholder"),
    ("CHANGE_ME", "placeholder"),
    ("changeme-please-put-a-long-random-value-here", "placeholder"),
    ("${SHOPSYNC_ADMIN_TOKEN}", "placeholder"),
    ("<your token>", "placeholder"),
    ("x" * 40, "placeholder"),
    ("fault-token", "too short (11 characters, at least 32)"),
    (STRONG[:31], "too short"),
    (STRONG[:32], None),
])
def test_a_token_must_be_set_generated_and_32_characters_long(value: str, problem: str | None) -> None:
    found = secret_problem(TOKEN, value)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(("value", "problem"), [
    ("", "is not set"),
    ("change-me", "placeholder"),
    ("not-a-fernet-key-but-long-enough-to-pass-a-length-check", "not a valid Fernet key"),
    (f"{generate_key()},change-me", "placeholder"),
    (f"{generate_key()},{generate_key()}", None),
])
def test_the_token_key_must_be_fernet_keys(value: str, problem: str | None) -> None:
    [rule] = [r for r in SERVICE_RULES["ingest"] if r.variable == "SHOPSYNC_SECRET_KEY"]
    found = secret_problem(rule, value)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_optional_secrets_may_be_unset_but_not_weak() -> None:
    settings = load_settings(**{k.lower(): v for k, v in GOOD.items()})
    check_service_secrets(settings, "gateway")
    with pytest.raises(WeakSecret) as info:
        check_service_secrets(settings.model_copy(update={"tiktok_app_secret_previous": "change-me"}), "gateway")
    assert info.value.variable == "TIKTOK_APP_SECRET_PREVIOUS"


def _run(*args: str, **env: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={**GOOD, **env})
    return result.exit_code, result.output


@pytest.mark.parametrize(("command", "variable", "value"), [
    ("gateway", "TIKTOK_APP_SECRET", "change-me"),
    ("gateway", "TIKTOK_APP_KEY", ""),
    ("gateway", "SHOPSYNC_SECRET_KEY", "change-me"),
    ("ingest", "SHOPSYNC_SECRET_KEY", ""),
    ("ingest", "TIKTOK_APP_SECRET", "test-app-secret"),
    ("store-sync", "TIKTOK_APP_SECRET", "change-me"),
    ("mapping", "SHOPSYNC_ADMIN_TOKEN", "change-me"),
    ("mapping", "SHOPSYNC_ADMIN_TOKEN", "short"),
])
def test_a_service_refuses_to_start_naming_the_weak_variable(command: str, variable: str, value: str) -> None:
    code, output = _run(command, **{variable: value})  # refused before it binds a port: this returns at once
    assert code == 1 and f"error: {variable} " in output, output
    assert STRONG not in output and GOOD["SHOPSYNC_SECRET_KEY"] not in output  # never echoes a secret


@pytest.mark.integration  # starts `python -m services.mapping`
def test_python_m_service_refuses_too(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIKTOK_", "SHOPSYNC_", "KAFKA_"))}
    env.update(GOOD, SHOPSYNC_ADMIN_TOKEN="change-me", SHOPSYNC_MAPPING_PORT="1")
    done = subprocess.run([sys.executable, "-m", "services.mapping"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 1 and "error: SHOPSYNC_ADMIN_TOKEN is a placeholder" in done.stderr, done.stderr


@pytest.mark.parametrize("service", sorted(SERVICE_RULES))
def test_the_demo_generates_secrets_every_service_accepts(tmp_path: Path, service: str) -> None:
    env = demo_environment(tmp_path, 8900)
    check_service_secrets(load_settings(**{k.lower(): v for k, v in env.items()}), service)


def test_the_demo_replaces_a_short_secret_saved_by_an_older_run(tmp_path: Path) -> None:
    (tmp_path / "demo.env").write_text("export SHOPSYNC_ADMIN_TOKEN=old-short-token\nexport TIKTOK_APP_SECRET="
                                       f"{STRONG}\n")
    env = demo_environment(tmp_path, 8900)
    assert env["TIKTOK_APP_SECRET"] == STRONG and len(env["SHOPSYNC_ADMIN_TOKEN"]) >= 32
