"""Webhook gateway: verified, durable intake of TikTok Shop webhooks into `tiktok.webhooks`."""
