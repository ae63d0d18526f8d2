"""`python -m dynaplan ...`: the command line (app/cli.py)."""

from dynaplan.app.cli import entry

entry()
