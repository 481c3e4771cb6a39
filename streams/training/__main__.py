"""`python -m streams.training`: the continuous trainer (see streams.training.main)."""

from streams.training.main import main

raise SystemExit(main())
