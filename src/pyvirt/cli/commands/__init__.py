"""CLI command modules, one per noun."""
