"""The topic contract: docs/asyncapi.yaml is generated from the code and valid for the official AsyncAPI parser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from shopsync.contract import asyncapi_yaml

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "asyncapi"


def test_docs_asyncapi_matches_the_generated_contract() -> None:
    assert (ROOT / "docs" / "asyncapi.yaml").read_text() == asyncapi_yaml(), \
        "run: shopsync topics asyncapi > docs/asyncapi.yaml"


@pytest.mark.integration  # runs npm and node
@pytest.mark.skipif(shutil.which("npm") is None or shutil.which("node") is None, reason="needs Node.js and npm")
def test_official_asyncapi_parser_accepts_the_document() -> None:
    if not (TOOL / "node_modules" / "@asyncapi" / "parser").exists():
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund"], cwd=TOOL, check=True,
                       capture_output=True, timeout=300)
    result = subprocess.run(["node", "validate.mjs", str(ROOT / "docs" / "asyncapi.yaml")], cwd=TOOL,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VALID 13 channels 14 messages" in result.stdout
