"""Polls REST market-data sources within their rate budgets and publishes raw envelopes."""
