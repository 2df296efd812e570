"""`python -m shopsync` runs the CLI."""

from shopsync.cli import main

main()
