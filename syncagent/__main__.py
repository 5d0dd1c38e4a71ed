"""`python -m syncagent` runs the CLI."""

from syncagent.cli import main

main()
