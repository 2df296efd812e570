"""Signing: the documented worked example, webhook signatures and their strict comparison."""

from shared.tiktok.signing import api_signature, verify_api_signature, verify_webhook, webhook_signature


def test_documented_api_signing_example() -> None:
    params = {"app_key": "29a39d", "timestamp": "1623812664"}
    sign = api_signature("e59af819cc", "/authorization/202309/shops", params)
    assert sign == "b596b73e0cc6de07ac26f036364178ab16b0a907af13d43f0a0cd2345f582dc8"


def test_body_is_appended_and_sign_and_access_token_are_excluded() -> None:
    base = {"app_key": "k", "timestamp": "1", "shop_cipher": "c"}
    with_noise = {**base, "sign": "x", "access_token": "t"}
    body = b'{"order_status":"AWAITING_SHIPMENT"}'
    assert api_signature("s", "/order/202309/orders/search", base, body) == api_signature(
        "s", "/order/202309/orders/search", with_noise, body)
    assert api_signature("s", "/p", base, body) != api_signature("s", "/p", base, b"")
    assert verify_api_signature("s", "/p", {**base, "sign": api_signature("s", "/p", base, body)}, body)


def test_webhook_signature_is_hmac_of_app_key_and_body() -> None:
    import hashlib
    import hmac

    body = b'{"type":1}'
    assert webhook_signature("abcdef", "123", body) == hmac.new(b"123", b"abcdef" + body, hashlib.sha256).hexdigest()


def test_webhook_verification_is_strict() -> None:
    body = b'{"type":1,"shop_id":"1"}'
    sig = webhook_signature("key", "secret", body)
    assert verify_webhook("key", ["secret"], body, sig)
    assert verify_webhook("key", ["new", "secret"], body, sig)  # rotation: previous secret still accepted
    assert not verify_webhook("key", ["secret"], body, sig.upper())
    assert not verify_webhook("key", ["secret"], body, "Bearer " + sig)
    assert not verify_webhook("key", ["secret"], body, "")
    assert not verify_webhook("key", ["secret"], body, None)
    assert not verify_webhook("key", ["secret"], body + b" ", sig)
    assert not verify_webhook("other", ["secret"], body, sig)
    assert not verify_webhook("key", ["", ""], body, sig)


def test_query_keys_with_empty_values_are_signed() -> None:
    """TikTok's Go/Java samples keep empty-valued keys (only sign and access_token are left out)."""
    import hashlib
    import hmac

    params = {"app_key": "29a39d", "timestamp": "1623812664", "page_token": "", "sign": "x", "access_token": "t"}
    wrapped = b"e59af819cc/product/202309/products/searchapp_key29a39dpage_tokentimestamp1623812664e59af819cc"
    expected = hmac.new(b"e59af819cc", wrapped, hashlib.sha256).hexdigest()
    assert api_signature("e59af819cc", "/product/202309/products/search", params) == expected
    assert expected == "bd831a593e7b7963f4ea31bf3bee2dda0f47e8c6b8022c8ae257223d12c4ebc8"
    without = {k: v for k, v in params.items() if k != "page_token"}
    assert api_signature("e59af819cc", "/product/202309/products/search", without) != expected
    none_valued = {**params, "page_token": None}  # httpx sends it as `page_token=`
    assert api_signature("e59af819cc", "/product/202309/products/search", none_valued) == expected
