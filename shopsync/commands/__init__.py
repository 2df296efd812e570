"""One module per CLI command group; `shopsync.cli` registers them."""
