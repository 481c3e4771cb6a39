"""`python -m streams.api`: the recall HTTP API and live page (see streams.api.main)."""

from streams.api.main import main

main()
