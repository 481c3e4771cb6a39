"""`python -m harness.bench`: the serving-speed benchmark (make bench) (see harness.bench.main)."""

from harness.bench.main import main

raise SystemExit(main())
