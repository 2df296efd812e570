"""One module per console page: each returns its routes over the shared `Console`."""

from services.console.pages import mappings, operations, orders, signin, stores

__all__ = ["mappings", "operations", "orders", "signin", "stores"]
