"""sink-postgres: every canonical Coinstream event in PostgreSQL exactly once."""
