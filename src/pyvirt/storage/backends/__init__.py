"""Pool backends, one module per pool type; each registers itself with a decorator."""
