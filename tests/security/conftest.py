"""Secured-broker fixtures: a second local broker (SASL_SSL + SCRAM-SHA-512, an mTLS listener), started once.

It runs the session broker's jars in a temporary home on ports 19391 (SASL_SSL), 19392 (controller) and 19393
(mutual TLS), and also takes unsigned OAUTHBEARER tokens so the token provider can be tried for real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.settings import Settings, load_settings
from shopsync import localtls
from shopsync.localkafka import LocalKafka, SecuredLocalKafka
from shopsync.topic_admin import delete_prefixed_topics, ensure_topics
from tests.sandbox import APP_KEY, APP_SECRET

SASL_SSL_PORT, CONTROLLER_PORT, MTLS_PORT = 19391, 19392, 19393
GATEWAY_SECRETS = {"tiktok_app_key": APP_KEY, "tiktok_app_secret": APP_SECRET}


@pytest.fixture(scope="session")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredLocalKafka]:
    """The secured broker for the session (its start-up time is printed with `-s`)."""
    plaintext = LocalKafka.from_settings(load_settings())
    plaintext.install()
    broker = SecuredLocalKafka(home=tmp_path_factory.mktemp("secured"), port=SASL_SSL_PORT,
                               controller_port=CONTROLLER_PORT, mtls_port=MTLS_PORT, heap="384m",
                               unsecured_oauth=True, jars=plaintext.lib_dir)
    started = time.monotonic()
    broker.start()
    print(f"\nsecured broker up in {time.monotonic() - started:.1f}s")
    yield broker
    broker.stop()


@pytest.fixture
async def secured_settings(secured_broker: SecuredLocalKafka, topic_prefix: str) -> AsyncIterator[Settings]:
    """Settings that log in to the secured broker, with this test's topics created (deleted afterwards)."""
    settings = secured_broker.client_settings(shopsync_topic_prefix=topic_prefix, **GATEWAY_SECRETS)
    await ensure_topics(settings)
    yield settings
    try:
        await asyncio.wait_for(delete_prefixed_topics(settings), 10)
    except Exception:
        pass


@pytest.fixture(scope="session")
def untrusted_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PEM CA the secured broker's certificate was not signed by."""
    path = tmp_path_factory.mktemp("other-ca") / "ca.pem"
    localtls.make_ca("some other CA").write_pem(path)
    return path
