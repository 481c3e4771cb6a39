"""Command-line producers: single clicks, dataset replay, item embedding publisher."""
