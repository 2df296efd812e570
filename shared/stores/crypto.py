"""Tokens are encrypted at rest with a Fernet key (SHOPSYNC_SECRET_KEY)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class MissingSecretKey(RuntimeError):
    """Raised when a command needs SHOPSYNC_SECRET_KEY and it is not set (or not a Fernet key)."""

    def __init__(self, problem: str = "SHOPSYNC_SECRET_KEY is not set") -> None:
        super().__init__(f"{problem}. Create one with `shopsync keygen` and export it as SHOPSYNC_SECRET_KEY "
                         "(keep it: tokens encrypted with it cannot be read without it).")


class TokenCipher:
    """Encrypts and decrypts store tokens."""

    def __init__(self, key: str) -> None:
        if not key:
            raise MissingSecretKey()
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError):
            raise MissingSecretKey("SHOPSYNC_SECRET_KEY is not a valid Fernet key") from None

    def encrypt(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def decrypt(self, blob: str) -> str:
        try:
            return self._fernet.decrypt(blob.encode()).decode()
        except InvalidToken:
            raise MissingSecretKey("SHOPSYNC_SECRET_KEY does not decrypt the stored tokens (was it changed?)") from None


def generate_key() -> str:
    return Fernet.generate_key().decode()
