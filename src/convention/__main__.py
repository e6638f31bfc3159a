"""``python -m convention``: the command line."""

from convention.cli import main

main()
