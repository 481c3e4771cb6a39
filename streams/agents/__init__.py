"""Faust agents, one per module, each named by what it does."""
