"""TikTok Shop Open API: request/webhook signing, the async client, typed errors, and TikTok's data as typed
values parsed once (`webhooks`, `orders`, `products`, `models`; field rules in `fields`)."""
