"""The shopsync console: the seller's and operator's web page, over the owners' APIs and commands."""
