"""Start-up check of the secrets a service needs: missing, placeholder (`change-me`) or short values are refused.

A shipped example value that reaches production (a `kubectl apply` of an example Secret, an unexpanded
`${VAR}`) must stop the service at start-up, naming the variable, not run with a guessable key. The TikTok
sandbox is exempt: it stands in for TikTok and never holds a real secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import SecretStr

from shared.settings import Settings
from shared.stores.crypto import MissingSecretKey, TokenCipher

MIN_SECRET_CHARS = 32
# Compared after lower-casing and dropping everything but letters and digits ("Change_Me!" is "changeme").
PLACEHOLDER_WORDS = frozenset({
    "changeme", "replaceme", "placeholder", "secret", "password", "token", "key", "todo", "fixme", "example",
    "default", "dummy", "none", "null", "test", "xxx", "yoursecret", "yourtoken", "yourkey",
})
PLACEHOLDER_PARTS = ("changeme", "replaceme", "placeholder", "yoursecret", "yourtoken", "yourkey")
TEMPLATE = re.compile(r"^(<.*>|\$\{.*\}|\$[A-Z_]+|\{\{.*\}\}|\.\.\.)$")


class WeakSecret(ValueError):
    """A secret a service needs is missing, a placeholder or too short; `variable` names the one to fix."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable} {problem}")
        self.variable = variable
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Rule:
    """What a service needs of one variable: set or not, its least length, and whether it is Fernet keys."""

    variable: str
    required: bool = True
    min_chars: int = MIN_SECRET_CHARS
    fernet_keys: bool = False
    hint: str = "generate one: `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"


_APP = "use the app's key and secret from TikTok Shop Partner Center"
_APP_KEY = Rule("TIKTOK_APP_KEY", min_chars=0, hint=_APP)  # an identifier TikTok issues, not a secret
_APP_SECRET = Rule("TIKTOK_APP_SECRET", hint=_APP)  # TikTok issues 40 characters
_APP_SECRET_PREVIOUS = Rule("TIKTOK_APP_SECRET_PREVIOUS", required=False, hint=_APP)
_TOKEN_KEY = Rule("SHOPSYNC_SECRET_KEY", min_chars=0, fernet_keys=True,  # a Fernet key is 32 bytes by construction
                  hint="create one with `shopsync keygen`")
_ADMIN_TOKEN = Rule("SHOPSYNC_ADMIN_TOKEN")
_KAFKA_PASSWORD = Rule("KAFKA_SASL_PASSWORD", required=False, min_chars=0,  # the cluster's admin chooses it
                       hint="use the password of the cluster's SASL user")

SERVICE_RULES: dict[str, tuple[Rule, ...]] = {
    # The gateway verifies webhooks; it no longer decrypts tokens (the stores owner links), the key is checked if set.
    "gateway": (_APP_KEY, _APP_SECRET, _APP_SECRET_PREVIOUS, Rule("SHOPSYNC_SECRET_KEY", required=False,
                min_chars=0, fernet_keys=True, hint=_TOKEN_KEY.hint), _KAFKA_PASSWORD),
    "stores-owner": (_TOKEN_KEY, _APP_KEY, _APP_SECRET, _KAFKA_PASSWORD),
    "ingest": (_TOKEN_KEY, _APP_KEY, _APP_SECRET, _KAFKA_PASSWORD),
    "store-sync": (_TOKEN_KEY, _APP_KEY, _APP_SECRET, _KAFKA_PASSWORD),
    "mapping": (_ADMIN_TOKEN, _KAFKA_PASSWORD),
    "audit": (_KAFKA_PASSWORD,),
}


def is_placeholder(value: str) -> bool:
    """True for values that are an example or a template, not a secret someone generated."""
    stripped = value.strip()
    words = re.sub(r"[^a-z0-9]", "", stripped.lower())
    return (TEMPLATE.match(stripped) is not None or words in PLACEHOLDER_WORDS
            or any(part in words for part in PLACEHOLDER_PARTS) or len(set(words)) <= 1)


def secret_problem(rule: Rule, value: str) -> str | None:
    """What is wrong with `value` for `rule` (None when it may be used); pure, for tests and every service."""
    if not value.strip() and not rule.required:
        return None
    if not value.strip() and not rule.fernet_keys:
        return f"must be set: {rule.hint}"
    parts = [p.strip() for p in value.split(",")] if rule.fernet_keys else [value]
    if any(is_placeholder(p) for p in parts if p):
        return f"is a placeholder value (like `change-me`), not a secret: {rule.hint}"
    if len(value) < rule.min_chars:
        return f"is too short ({len(value)} characters, at least {rule.min_chars}): {rule.hint}"
    if rule.fernet_keys:
        try:
            TokenCipher(value)
        except MissingSecretKey as exc:  # its message names the variable and says how to make a key
            return str(exc).removeprefix(f"{rule.variable} ")
    return None


def check_service_secrets(settings: Settings, service: str) -> None:
    """Raise WeakSecret for the first secret `service` needs that is missing, a placeholder or too short."""
    for rule in SERVICE_RULES[service]:
        problem = secret_problem(rule, _value(settings, rule.variable))
        if problem is not None:
            raise WeakSecret(rule.variable, problem)


def _value(settings: Settings, variable: str) -> str:
    value = getattr(settings, variable.lower())
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return "" if value is None else str(value)


def exit_if_weak_secrets(settings: Settings, service: str) -> None:
    """Stop the process (exit code 1, `error: <VARIABLE> <problem>` on stderr) before it serves with a weak secret."""
    try:
        check_service_secrets(settings, service)
    except WeakSecret as exc:
        raise SystemExit(f"error: {exc}") from None
