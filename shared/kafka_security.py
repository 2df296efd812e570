"""Reaching a secured cluster: the TLS and SASL options every client gets, and errors that say why it failed.

aiokafka logs the real cause of a failed bootstrap (a refused login, an untrusted certificate) and raises only
"Unable to bootstrap". `explain_bootstrap_failure` connects once more to each bootstrap server the same way and
turns what went wrong into `KafkaAuthenticationFailed`, `KafkaTLSFailed` or `KafkaUnreachable`, whose message
names the cause and the setting to check. They subclass aiokafka's `KafkaConnectionError`, so every handler that
treats an unreachable broker as "not ready" keeps working.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from aiokafka.abc import AbstractTokenProvider
from aiokafka.conn import create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context
from aiokafka.protocol.metadata import MetadataRequest

from shared.settings import Settings

AUTH_ERRORS = (SaslAuthenticationFailed, IllegalSaslStateError, UnsupportedSaslMechanismError)
PROBE_TIMEOUT_S = 5.0
TOKEN_EXPIRY_MARGIN_S = 30.0


class KafkaUnreachable(KafkaConnectionError):  # type: ignore[misc]  # aiokafka is untyped: its base is Any
    """No bootstrap server could be used; `reason` says why in words an operator can act on."""

    kind = "connection"

    def __init__(self, reason: str, *, server: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.server = server

    def __str__(self) -> str:
        return self.reason


class KafkaAuthenticationFailed(KafkaUnreachable):
    """The broker refused the SASL login (user, password or mechanism): retrying will not help."""

    kind = "authentication"
    retriable = False


class KafkaTLSFailed(KafkaUnreachable):
    """The TLS handshake failed (an untrusted certificate, TLS against a plaintext port or the reverse)."""

    kind = "TLS"
    retriable = False


def security_options(settings: Settings) -> dict[str, Any]:
    """aiokafka keyword arguments for the KAFKA_* security settings. They hold the password: never log them."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_ca_file,
                                                    certfile=settings.kafka_ssl_cert_file,
                                                    keyfile=settings.kafka_ssl_key_file)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        if settings.kafka_sasl_mechanism == "OAUTHBEARER":
            options["sasl_oauth_token_provider"] = ClientCredentialsTokenProvider(
                settings.kafka_sasl_oauth_token_url, settings.kafka_sasl_username,
                settings.kafka_sasl_password.get_secret_value(), scope=settings.kafka_sasl_oauth_scope)
        else:
            options["sasl_plain_username"] = settings.kafka_sasl_username
            options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


class ClientCredentialsTokenProvider(AbstractTokenProvider):  # type: ignore[misc]  # untyped aiokafka: its base is Any
    """SASL/OAUTHBEARER tokens from an OAuth 2 token endpoint (client-credentials grant), reused until they expire.

    A refused or failed token request raises `SaslAuthenticationFailed`, so it reads as the login failure it is.
    """

    def __init__(self, token_url: str, client_id: str, client_secret: str, *, scope: str = "",
                 timeout_s: float = 10.0, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._token_url = token_url
        self._clock = clock
        self._auth = (client_id, client_secret)
        self._scope = scope
        self._timeout_s = timeout_s
        self._transport = transport
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:  # several connections opening at once share one request
            if self._token is None or self._clock() >= self._expires_at:
                self._token, lifetime = await self._fetch()
                self._expires_at = self._clock() + max(lifetime - TOKEN_EXPIRY_MARGIN_S, lifetime / 2)
            return self._token

    async def _fetch(self) -> tuple[str, float]:
        form = {"grant_type": "client_credentials"} | ({"scope": self._scope} if self._scope else {})
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s, transport=self._transport) as http:
                answer = await http.post(self._token_url, data=form, auth=self._auth)
        except httpx.HTTPError as exc:
            raise SaslAuthenticationFailed(
                f"OAuth token endpoint {self._token_url} unreachable: {exc.__class__.__name__}") from None
        if answer.status_code != 200:
            raise SaslAuthenticationFailed(f"OAuth token endpoint {self._token_url} answered {answer.status_code}")
        try:
            body = answer.json()
            return str(body["access_token"]), float(body.get("expires_in", 300))
        except (ValueError, KeyError, TypeError):
            raise SaslAuthenticationFailed(f"OAuth token endpoint {self._token_url} gave no access_token") from None


async def explain_bootstrap_failure(options: Mapping[str, Any], original: BaseException) -> KafkaUnreachable:
    """Connect to each bootstrap server with the client's `options`; the first failure, typed and explained.

    The same steps as aiokafka's bootstrap (TCP, TLS, API versions, SASL, a metadata request), all servers at
    once, each within PROBE_TIMEOUT_S. When every server answers this time, the original error is passed on.
    """
    servers = options["bootstrap_servers"]
    hosts = [h.strip() for h in (servers.split(",") if isinstance(servers, str) else servers) if h.strip()]
    problems = [p for p in await asyncio.gather(*(_probe(h, options) for h in hosts)) if p is not None]
    problems.sort(key=lambda p: type(p) is KafkaUnreachable)  # authentication or TLS tells more than "down"
    if problems:
        return problems[0]
    return KafkaUnreachable(f"could not bootstrap from {servers}: {original}", server=str(servers))


async def _probe(server: str, options: Mapping[str, Any]) -> KafkaUnreachable | None:
    host, _, port = server.rpartition(":") if ":" in server.split("]")[-1] else (server, "", "9092")
    host = host.strip("[]")  # an IPv6 literal
    protocol = options.get("security_protocol", "PLAINTEXT")
    step = "connect"
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            conn = await create_conn(
                host, int(port), client_id=options.get("client_id", "shopsync-probe"),
                request_timeout_ms=int(PROBE_TIMEOUT_S * 1000), security_protocol=protocol,
                ssl_context=options.get("ssl_context"), sasl_mechanism=options.get("sasl_mechanism"),
                sasl_plain_username=options.get("sasl_plain_username"),
                sasl_plain_password=options.get("sasl_plain_password"),
                sasl_oauth_token_provider=options.get("sasl_oauth_token_provider"))
            step = "metadata"
            try:
                await conn.send(MetadataRequest([]))
            finally:
                conn.close()
    except Exception as exc:
        return _classify(exc, server, step, protocol, options)
    return None


def _classify(exc: BaseException, server: str, step: str, protocol: str,
              options: Mapping[str, Any]) -> KafkaUnreachable:
    """Name the cause of one failed connection attempt and the setting that fixes it."""
    uses_tls, uses_sasl = protocol.endswith("SSL"), protocol.startswith("SASL_")
    exc = _tls_cause(exc) or exc  # a connection "closed" by a TLS alert: the alert is the cause
    mechanism = options.get("sasl_mechanism")
    if isinstance(exc, UnsupportedSaslMechanismError):
        return KafkaAuthenticationFailed(
            f"authentication failed: {server} does not accept SASL mechanism {mechanism}; check "
            "KAFKA_SASL_MECHANISM", server=server)
    if isinstance(exc, AUTH_ERRORS):
        user = options.get("sasl_plain_username") or "(OAuth client)"
        return KafkaAuthenticationFailed(
            f"authentication failed: {server} refused SASL user {user!r} with {mechanism} ({_detail(exc)}); "
            "check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM", server=server)
    if isinstance(exc, ConnectionRefusedError):
        return KafkaUnreachable(f"nothing listens on {server} (connection refused)", server=server)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return KafkaTLSFailed(
            f"TLS failed: the certificate of {server} is not trusted ({exc.verify_message}); set KAFKA_SSL_CA_FILE "
            "to the PEM bundle of the CA that signed it, and connect by a name the certificate lists", server=server)
    if isinstance(exc, ssl.SSLError) and "ALERT" in str(exc.reason) and "CERTIFICATE" in str(exc.reason):
        return KafkaTLSFailed(
            f"TLS failed: {server} refused the client certificate ({_detail(exc)}); it wants one signed by a CA it "
            "trusts: check KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE", server=server)
    if isinstance(exc, ssl.SSLError) or (uses_tls and step == "connect" and isinstance(exc, ConnectionError)):
        return KafkaTLSFailed(
            f"TLS failed: the handshake with {server} failed ({_detail(exc)}); check that the listener speaks TLS "
            f"(KAFKA_SECURITY_PROTOCOL={protocol}) and whether it requires a client certificate "
            "(KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE)", server=server)
    if isinstance(exc, socket.gaierror):
        return KafkaUnreachable(f"cannot resolve {server} ({exc.strerror})", server=server)
    if isinstance(exc, TimeoutError):
        return KafkaUnreachable(f"{server} did not answer within {PROBE_TIMEOUT_S:.0f}s", server=server)
    if isinstance(exc, KafkaConnectionError) and not uses_tls and step == "connect":
        return KafkaTLSFailed(
            f"TLS expected? {server} closed the connection at the first request, as a TLS listener does with a "
            f"plaintext client: KAFKA_SECURITY_PROTOCOL is {protocol}; a TLS listener needs SSL or SASL_SSL",
            server=server)
    if isinstance(exc, KafkaConnectionError) and not uses_sasl and step == "metadata":
        return KafkaAuthenticationFailed(
            f"authentication required: {server} closed the connection before any login, as a SASL listener does; "
            f"KAFKA_SECURITY_PROTOCOL is {protocol}: set SASL_SSL (or SASL_PLAINTEXT) and the KAFKA_SASL_* "
            "credentials", server=server)
    return KafkaUnreachable(f"could not use {server}: {exc.__class__.__name__}: {_detail(exc)}", server=server)


def _tls_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, ssl.SSLError):
        seen = seen.__cause__
    return seen


def _detail(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return str(exc) or exc.__class__.__name__
