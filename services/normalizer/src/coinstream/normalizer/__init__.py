"""Coinstream normalizer: raw source records -> canonical prices, sentiment, metadata, candles."""
