"""Virtual networks."""
