"""Store connections: the record, token encryption, the table on `shopsync.stores`, linking, tokens, and the
commands that ask the stores owner (the table's one writer) for a change."""
