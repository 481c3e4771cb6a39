"""The test suite: mirrors the packages; tests/integration starts real servers."""
