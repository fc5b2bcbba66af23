"""Tests of the market simulator (a package, so module names cannot clash)."""
