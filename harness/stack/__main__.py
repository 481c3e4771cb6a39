"""`python -m harness.stack`: just the three local servers until Ctrl-C (as before the packages;
`make run`, the whole system, is `python -m harness.stack.run`)."""

from harness.stack.servers import main

raise SystemExit(main())
