"""`python -m inbox_filter` runs the command line."""

from .cli import main

if __name__ == "__main__":  # a spawned worker process imports this module too
    main(prog_name="inbox-filter")
