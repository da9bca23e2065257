"""Host facts and node devices."""
