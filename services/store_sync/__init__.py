"""Store sync: OMS shipments and stock levels back to TikTok Shop."""
