"""Harnesses around the production code: local stack, launcher, demo, benchmarks, fault runs."""
