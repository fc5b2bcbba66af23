"""Asset codes Coinstream follows on every exchange venue (each venue adds its own)."""

from __future__ import annotations

COMMON_BASES = frozenset(
    {
        "BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "DOT", "LINK", "LTC", "AVAX", "SHIB", "PEPE",
        "UNI", "ATOM", "XLM", "BCH", "NEAR", "APT", "ARB", "OP", "FIL", "ETC", "SUI", "AAVE",
        "MKR", "INJ", "RNDR", "GRT", "ALGO",
    }
)  # fmt: skip
