"""Tests of the REST ingest service (a package, so module names cannot clash)."""
