"""Small helpers every CLI command shares: settings, JSON output, errors that name the problem."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click
import orjson

from shared.settings import Settings, load_settings


def settings_from(ctx: click.Context) -> Settings:
    """The settings object the root command loaded."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = load_settings()
    return root.obj  # type: ignore[no-any-return]


def print_json(value: Any) -> None:
    """Print `value` as indented JSON on stdout (for `--json` output)."""
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` on stderr and exit non-zero."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
