"""`python -m harness.faults`: the fault-injection suite (make faults) (see harness.faults.main)."""

from harness.faults.main import main

raise SystemExit(main())
