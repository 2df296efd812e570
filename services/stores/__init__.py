"""The stores owner: the one writer of `shopsync.stores`; everyone else asks it through `shopsync.store-commands`."""
