"""`python -m fityard ...`: the same CLI as the `fityard` command."""

from fityard.cli import main

raise SystemExit(main())
