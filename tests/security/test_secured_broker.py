"""Against a real SASL_SSL + SCRAM-SHA-512 broker: the right credentials work, wrong ones fail fast and say why."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka.structs import ConsumerRecord
from pydantic import SecretStr

from shared.kafka import commit_owned, create_admin, create_consumer, create_managed_producer, read_to_end
from shared.kafka_security import KafkaAuthenticationFailed, KafkaTLSFailed
from shared.settings import Settings, load_settings
from shared.topics import DLQ, topic_name
from shopsync.localkafka import SecuredLocalKafka
from shopsync.topic_admin import ensure_topics

pytestmark = pytest.mark.secured
FAST_S = 10.0  # "within seconds": a failure must never look like a broker outage being retried


def run_cli(settings: Settings, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """`shopsync <args>` as a child process whose environment holds `settings`, and how long it took."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "SHOPSYNC_"))}
    for name in ("kafka_bootstrap_servers", "kafka_security_protocol", "kafka_sasl_mechanism", "kafka_sasl_username",
                 "kafka_sasl_password", "kafka_ssl_ca_file", "shopsync_topic_prefix"):
        value = getattr(settings, name)
        if value is not None:
            env[name.upper()] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "shopsync", *args], env=env, capture_output=True, text=True,
                            timeout=60)
    return result, time.monotonic() - started


async def test_topics_ensure_then_produce_and_consume_with_the_right_credentials(
        secured_broker: SecuredLocalKafka, topic_prefix: str) -> None:
    settings = secured_broker.client_settings(shopsync_topic_prefix=topic_prefix)
    result, _ = run_cli(settings, "topics", "ensure")
    assert result.returncode == 0, result.stderr
    assert f"{topic_prefix}tiktok.webhooks" in result.stdout

    producer = create_managed_producer(settings, "test")
    await producer.start()
    try:
        await producer.send_and_wait(topic_name(DLQ, topic_prefix), b"over TLS", key=b"k")
        assert await producer.check() is None
    finally:
        await producer.stop()

    consumer = create_consumer(settings, f"{topic_prefix}group", DLQ)
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            got: list[ConsumerRecord] = []
            while not got:
                got = [r for batch in (await consumer.getmany(timeout_ms=200)).values() for r in batch]
        assert await commit_owned(consumer) is True
    finally:
        await consumer.stop()
    assert [(r.key, r.value) for r in got] == [(b"k", b"over TLS")]
    assert [r.value async for r in read_to_end(settings, DLQ)] == [b"over TLS"]


async def test_wrong_password_is_an_authentication_error_within_seconds(secured_broker: SecuredLocalKafka) -> None:
    settings = secured_broker.client_settings(kafka_sasl_password="not-the-password")
    result, elapsed = run_cli(settings, "topics", "ensure")
    assert result.returncode != 0
    assert "KafkaAuthenticationFailed: authentication failed" in result.stderr
    assert "refused SASL user 'shopsync' with SCRAM-SHA-512" in result.stderr
    assert "not-the-password" not in result.stderr + result.stdout
    assert elapsed < FAST_S

    started = time.monotonic()
    consumer = create_consumer(settings, None, DLQ)
    with pytest.raises(KafkaAuthenticationFailed, match="check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD"):
        await consumer.start()
    await consumer.stop()
    assert time.monotonic() - started < FAST_S


async def test_unknown_user_and_unoffered_mechanism_are_authentication_errors(
        secured_broker: SecuredLocalKafka) -> None:
    with pytest.raises(KafkaAuthenticationFailed, match="refused SASL user 'nobody'"):
        await ensure_topics(secured_broker.client_settings(kafka_sasl_username="nobody"))
    with pytest.raises(KafkaAuthenticationFailed, match="does not accept SASL mechanism SCRAM-SHA-256"):
        await ensure_topics(secured_broker.client_settings(kafka_sasl_mechanism="SCRAM-SHA-256"))


async def test_untrusted_ca_is_a_tls_error(secured_broker: SecuredLocalKafka, untrusted_ca: Path) -> None:
    settings = secured_broker.client_settings(kafka_ssl_ca_file=untrusted_ca)
    result, elapsed = run_cli(settings, "topics", "ensure")
    assert result.returncode != 0 and elapsed < FAST_S
    assert "KafkaTLSFailed: TLS failed: the certificate of 127.0.0.1:19391 is not trusted" in result.stderr
    assert "set KAFKA_SSL_CA_FILE" in result.stderr
    with pytest.raises(KafkaTLSFailed, match="not trusted"):  # the system store does not know the local CA either
        await ensure_topics(secured_broker.client_settings(kafka_ssl_ca_file=None))


async def test_plaintext_client_against_the_tls_port_is_told_to_use_tls(secured_broker: SecuredLocalKafka) -> None:
    plaintext = load_settings(kafka_bootstrap_servers=secured_broker.bootstrap, kafka_security_protocol="PLAINTEXT",
                              kafka_sasl_mechanism=None, kafka_sasl_username="", kafka_sasl_password="",
                              kafka_ssl_ca_file=None, kafka_ssl_cert_file=None, kafka_ssl_key_file=None)
    started = time.monotonic()
    with pytest.raises(KafkaTLSFailed, match=r"TLS expected.*KAFKA_SECURITY_PROTOCOL is PLAINTEXT.*SSL or SASL_SSL"):
        await ensure_topics(plaintext)
    assert time.monotonic() - started < FAST_S
    tls_without_sasl = secured_broker.client_settings(kafka_security_protocol="SSL", kafka_sasl_mechanism=None,
                                                      kafka_sasl_username="", kafka_sasl_password="")
    with pytest.raises(KafkaAuthenticationFailed, match=r"authentication required.*set SASL_SSL"):
        await ensure_topics(tls_without_sasl)


async def test_tls_client_against_a_plaintext_port_is_a_tls_error(secured_broker: SecuredLocalKafka,
                                                                 kafka_broker: str) -> None:
    admin = create_admin(secured_broker.client_settings(kafka_bootstrap_servers=kafka_broker))
    with pytest.raises(KafkaTLSFailed, match=r"handshake with .* failed"):
        await admin.start()
    await admin.close()


async def test_mutual_tls_with_a_certificate_the_broker_trusts(secured_broker: SecuredLocalKafka,
                                                               tmp_path: Path, topic_prefix: str) -> None:
    secured_broker.issue_client_certificate(tmp_path / "client.pem", tmp_path / "client.key")
    mtls = {"kafka_bootstrap_servers": secured_broker.mtls_bootstrap, "kafka_security_protocol": "SSL",
            "kafka_sasl_mechanism": None, "kafka_sasl_username": "", "kafka_sasl_password": ""}
    settings = secured_broker.client_settings(**mtls, kafka_ssl_cert_file=tmp_path / "client.pem",
                                              kafka_ssl_key_file=tmp_path / "client.key",
                                              shopsync_topic_prefix=topic_prefix)
    report = await ensure_topics(settings)
    assert report.problems == [] and f"{topic_prefix}shopsync.dlq" in report.created
    with pytest.raises(KafkaTLSFailed, match=r"refused the client certificate.*KAFKA_SSL_CERT_FILE"):
        await ensure_topics(secured_broker.client_settings(**mtls))


async def test_the_login_failure_is_named_even_when_another_bootstrap_server_is_down(
        secured_broker: SecuredLocalKafka) -> None:
    settings = secured_broker.client_settings(kafka_bootstrap_servers=f"127.0.0.1:19399,{secured_broker.bootstrap}",
                                              kafka_sasl_password="not-the-password")
    with pytest.raises(KafkaAuthenticationFailed, match=f"{secured_broker.bootstrap} refused SASL user"):
        await ensure_topics(settings)
