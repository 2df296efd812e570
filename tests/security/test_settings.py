"""KAFKA_* security settings: what every client gets, and combinations refused at load naming the variable."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.kafka import create_admin, create_consumer, create_managed_producer, create_producer, kafka_client_options
from shared.settings import load_settings
from shopsync import localtls

PASSWORD = "s3cret-never-shown"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a client certificate it signed with its key, another CA's key, and a file that is not PEM."""
    root = tmp_path_factory.mktemp("pki")
    ca = localtls.make_ca()
    ca.write_pem(root / "ca.pem")
    localtls.issue(ca, "client").write_pem(root / "client.pem", root / "client.key")
    localtls.issue(localtls.make_ca("other"), "other").write_pem(root / "other.pem", root / "other.key")
    (root / "garbage.pem").write_text("not a certificate\n")
    return {p.stem + p.suffix.replace(".", "_"): p for p in root.iterdir()}


def scram(**overrides: object) -> dict[str, object]:
    return {"kafka_bootstrap_servers": "kafka:9094", "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512", "kafka_sasl_username": "shopsync",
            "kafka_sasl_password": PASSWORD} | overrides


def test_default_is_plaintext_with_nothing_else() -> None:
    settings = load_settings(kafka_bootstrap_servers="kafka:9092")
    assert kafka_client_options(settings) == {"bootstrap_servers": "kafka:9092", "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_options_verify_the_broker_and_carry_the_credentials(pki: dict[str, Path]) -> None:
    options = kafka_client_options(load_settings(**scram(kafka_ssl_ca_file=pki["ca_pem"])))
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "shopsync local CA"),),)]
    assert options == {"bootstrap_servers": "kafka:9094", "security_protocol": "SASL_SSL",
                       "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "shopsync",
                       "sasl_plain_password": PASSWORD}


def test_without_a_ca_file_the_system_store_is_trusted() -> None:
    context = kafka_client_options(load_settings(kafka_security_protocol="SSL"))["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


async def test_every_factory_gets_the_security_options(pki: dict[str, Path]) -> None:
    settings = load_settings(**scram(kafka_ssl_ca_file=pki["ca_pem"]))
    clients = [create_producer(settings).client, create_consumer(settings, "g", "shopsync.dlq")._client,
               create_admin(settings)._client, create_managed_producer(settings, "gateway")._factory().client]
    for client in clients:
        assert (client._security_protocol, client._sasl_mechanism, client._sasl_plain_password) == (
            "SASL_SSL", "SCRAM-SHA-512", PASSWORD)
        assert isinstance(client._ssl_context, ssl.SSLContext)


def test_values_are_read_case_insensitively_and_empty_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "scram-sha-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "u")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "p")
    monkeypatch.setenv("KAFKA_SSL_CA_FILE", "")
    settings = load_settings()
    assert (settings.kafka_security_protocol, settings.kafka_sasl_mechanism, settings.kafka_ssl_ca_file) == (
        "SASL_SSL", "SCRAM-SHA-256", None)
    for name in ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"):
        monkeypatch.setenv(name, "")
    assert (load_settings().kafka_security_protocol, load_settings().kafka_sasl_mechanism) == ("PLAINTEXT", None)


INVALID = [  # (settings, the variable the message must name, a phrase of the message)
    ({"kafka_security_protocol": "SASL_SSL"}, "KAFKA_SASL_MECHANISM", "must be set"),
    (scram(kafka_sasl_password=""), "KAFKA_SASL_PASSWORD", "must be set"),
    (scram(kafka_sasl_username="", kafka_sasl_password=""), "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
     "must be set"),
    (scram(kafka_security_protocol="SSL"), "KAFKA_SASL_MECHANISM", "does not use SASL"),
    ({"kafka_sasl_username": "u", "kafka_sasl_password": "p"}, "KAFKA_SASL_USERNAME", "does not use SASL"),
    (scram(kafka_sasl_mechanism="OAUTHBEARER"), "KAFKA_SASL_OAUTH_TOKEN_URL", "must be set"),
    ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol", "SASL_SSL"),
    (scram(kafka_sasl_mechanism="GSSAPI"), "kafka_sasl_mechanism", "SCRAM-SHA-512"),
    ({"kafka_ssl_ca_file": "{ca_pem}"}, "KAFKA_SSL_CA_FILE", "does not use TLS"),
    (scram(kafka_ssl_ca_file="/nonexistent/ca.pem"), "KAFKA_SSL_CA_FILE", "No such file"),
    (scram(kafka_ssl_ca_file="{garbage_pem}"), "KAFKA_SSL_CA_FILE", "cannot be used as a PEM CA bundle"),
    (scram(kafka_ssl_cert_file="{client_pem}"), "KAFKA_SSL_KEY_FILE", "mutual TLS needs both"),
    (scram(kafka_ssl_key_file="{client_key}"), "KAFKA_SSL_CERT_FILE", "mutual TLS needs both"),
    (scram(kafka_ssl_cert_file="{client_pem}", kafka_ssl_key_file="{other_key}"), "KAFKA_SSL_KEY_FILE",
     "cannot be loaded"),
]


@pytest.mark.parametrize(("values", "variable", "phrase"), INVALID)
def test_invalid_combinations_fail_at_load_naming_the_variable(pki: dict[str, Path], values: dict[str, object],
                                                               variable: str, phrase: str) -> None:
    resolved = {k: v.format(**pki) if isinstance(v, str) else v for k, v in values.items()}
    with pytest.raises(ValidationError) as caught:
        load_settings(**resolved)
    message = str(caught.value)
    assert variable in message and phrase in message
    assert PASSWORD not in message


def test_mutual_tls_files_that_match_are_accepted(pki: dict[str, Path]) -> None:
    settings = load_settings(kafka_security_protocol="SSL", kafka_ssl_ca_file=pki["ca_pem"],
                             kafka_ssl_cert_file=pki["client_pem"], kafka_ssl_key_file=pki["client_key"])
    assert isinstance(kafka_client_options(settings)["ssl_context"], ssl.SSLContext)


def test_the_password_is_never_shown() -> None:
    settings = load_settings(**scram())
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert PASSWORD not in str(settings.model_dump())
