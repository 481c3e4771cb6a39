"""Command-line consumers of the recommendations topic."""
