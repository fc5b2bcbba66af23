"""Normalizer tests (a package, so module names never collide with other test directories)."""
