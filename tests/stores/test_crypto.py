"""The token cipher: a comma-separated SHOPSYNC_SECRET_KEY, the first key encrypts and every key decrypts (pure)."""

from __future__ import annotations

import pytest

from shared.stores.crypto import KeyMismatch, MissingSecretKey, TokenCipher, generate_key

OLD, NEW = generate_key(), generate_key()


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    under_old = TokenCipher(OLD).encrypt("TTP_old")
    during = TokenCipher(f"{NEW},{OLD}")
    under_new = during.encrypt("TTP_new")
    assert during.decrypt(under_old) == "TTP_old" and during.decrypt(under_new) == "TTP_new"
    assert TokenCipher(NEW).decrypt(under_new) == "TTP_new"  # encrypted with the first key only
    with pytest.raises(KeyMismatch):
        TokenCipher(OLD).decrypt(under_new)


def test_spaces_around_the_keys_are_ignored() -> None:
    blob = TokenCipher(OLD).encrypt("t")
    assert TokenCipher(f" {NEW} , {OLD} ").decrypt(blob) == "t"


def test_rotate_re_encrypts_with_the_first_key() -> None:
    during = TokenCipher(f"{NEW},{OLD}")
    blob = TokenCipher(OLD).encrypt("TTP_secret")
    assert not during.is_current(blob)
    rotated = during.rotate(blob)
    assert during.is_current(rotated) and TokenCipher(NEW).decrypt(rotated) == "TTP_secret"
    assert "TTP_secret" not in rotated


def test_a_token_no_key_decrypts_is_a_key_mismatch_naming_the_setting() -> None:
    blob = TokenCipher(OLD).encrypt("t")
    cipher = TokenCipher(f"{NEW},{generate_key()}")
    for attempt in (cipher.decrypt, cipher.rotate):
        with pytest.raises(KeyMismatch, match="do not decrypt with SHOPSYNC_SECRET_KEY") as info:
            attempt(blob)
        assert isinstance(info.value, MissingSecretKey) and "SHOPSYNC_SECRET_KEY=new,old" in str(info.value)
    assert not cipher.is_current(blob)


@pytest.mark.parametrize(("keys", "problem"), [
    ("", "SHOPSYNC_SECRET_KEY is not set"),
    (" , ", "SHOPSYNC_SECRET_KEY is not set"),
    ("not-a-key", "SHOPSYNC_SECRET_KEY is not a valid Fernet key"),
    (f"{NEW},not-a-key", "SHOPSYNC_SECRET_KEY is not a valid Fernet key (key 2 of 2)"),
    (f"{NEW},,{OLD}", "SHOPSYNC_SECRET_KEY has an empty entry"),
])
def test_a_wrong_key_list_names_the_setting_and_the_position_never_the_key(keys: str, problem: str) -> None:
    with pytest.raises(MissingSecretKey) as info:
        TokenCipher(keys)
    message = str(info.value)
    assert message.startswith(problem) and "shopsync keygen" in message
    assert NEW not in message and OLD not in message and "not-a-key" not in message
