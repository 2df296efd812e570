"""TikTok Shop Open API: request/webhook signing, the async client, typed errors."""
