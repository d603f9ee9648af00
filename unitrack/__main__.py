"""`python -m unitrack VERB [overrides]` = `unitrack VERB [overrides]`."""

from unitrack.cli import main

main()
