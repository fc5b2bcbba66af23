"""Example exchange ``examplex``: a venue added to Coinstream without editing Coinstream."""
