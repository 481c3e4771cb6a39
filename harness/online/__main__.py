"""`python -m harness.online`: the streaming-quality evaluation (make online-eval)."""

from harness.online.main import main

raise SystemExit(main())
