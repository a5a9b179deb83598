"""`python -m inbox_filter` runs the command line."""

from .cli import main

main(prog_name="inbox-filter")
