"""`python -m hch` is the `hch` command."""

from hch.cli import main

main()
