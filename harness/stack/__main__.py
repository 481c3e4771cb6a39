"""`python -m harness.stack`: the local stack, worker and API until Ctrl-C (make run)."""

from harness.stack.run import main

raise SystemExit(main())
