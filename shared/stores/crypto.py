"""Tokens are encrypted at rest with Fernet keys: SHOPSYNC_SECRET_KEY is `new[,old,...]`, the first key encrypts
and every key decrypts (MultiFernet), so the key can be rotated without a moment when stored tokens are unreadable."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_MISMATCH = "tokens do not decrypt with SHOPSYNC_SECRET_KEY (was the key changed?)"


class MissingSecretKey(RuntimeError):
    """SHOPSYNC_SECRET_KEY is not set, or is not a comma-separated list of Fernet keys."""

    advice = ("Create one with `shopsync keygen` and export it as SHOPSYNC_SECRET_KEY "
              "(keep it: tokens encrypted with it cannot be read without it).")

    def __init__(self, problem: str = "SHOPSYNC_SECRET_KEY is not set") -> None:
        super().__init__(f"{problem}. {self.advice}")


class KeyMismatch(MissingSecretKey):
    """No key in SHOPSYNC_SECRET_KEY decrypts a stored token: a problem of the store that holds it."""

    advice = ("Put the key they were encrypted with back, after the current one (SHOPSYNC_SECRET_KEY=new,old), "
              "or link the store again with `shopsync stores link`.")

    def __init__(self) -> None:
        super().__init__(KEY_MISMATCH)


class TokenCipher:
    """Encrypts store tokens with the first key of SHOPSYNC_SECRET_KEY and decrypts them with any of its keys."""

    def __init__(self, keys: str) -> None:
        parts = [part.strip() for part in keys.split(",")]
        if not any(parts):
            raise MissingSecretKey()
        if "" in parts:
            raise MissingSecretKey("SHOPSYNC_SECRET_KEY has an empty entry (separate the keys with single commas)")
        fernets = [_fernet(part, n, len(parts)) for n, part in enumerate(parts, 1)]
        self._first = fernets[0]
        self._all = MultiFernet(fernets)
        self.key_count = len(fernets)

    def encrypt(self, token: str) -> str:
        return self._all.encrypt(token.encode()).decode()

    def decrypt(self, blob: str) -> str:
        """The token; KeyMismatch when no key decrypts `blob`."""
        try:
            return self._all.decrypt(blob.encode()).decode()
        except InvalidToken:
            raise KeyMismatch() from None

    def is_current(self, blob: str) -> bool:
        """True when the first key decrypts `blob` (rotation has nothing to do for it)."""
        try:
            self._first.decrypt(blob.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, blob: str) -> str:
        """`blob` re-encrypted with the first key; KeyMismatch when no key decrypts it."""
        try:
            return self._all.rotate(blob.encode()).decode()
        except InvalidToken:
            raise KeyMismatch() from None


def _fernet(key: str, n: int, of: int) -> Fernet:
    """One key of the list; the error says which one is wrong (by position, never by value)."""
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        where = f" (key {n} of {of})" if of > 1 else ""
        raise MissingSecretKey(f"SHOPSYNC_SECRET_KEY is not a valid Fernet key{where}") from None


def generate_key() -> str:
    return Fernet.generate_key().decode()
