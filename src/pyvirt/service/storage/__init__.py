"""Storage pools and volumes."""
