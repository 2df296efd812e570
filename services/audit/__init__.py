"""Audit: a compact per-order timeline (webhooks, decisions, enrichments, dead letters) indexed by order key."""
