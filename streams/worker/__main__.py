"""`python -m streams.worker`: the stream worker (see streams.worker.main)."""

from streams.worker.main import main

main()
