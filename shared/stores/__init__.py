"""Store connections: the record, token encryption, the table on `shopsync.stores`, linking and tokens."""
