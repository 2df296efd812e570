"""A stand-in for TikTok Shop: the Open API's contract (signatures, errors, rate limits), OAuth, webhook pushes.

It follows TikTok's documented contract; where the docs are silent it assumes, and `docs/sandbox.md` lists every
assumption (Ship Package's 21008106 in Mark markets, webhook 15 `changed_fields`, exact `seller_skus` matching,
...) so that no test depends on one.
"""
