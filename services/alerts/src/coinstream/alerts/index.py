"""Which price rules watch a symbol (pure): rules indexed by subject, built once per rules file.

Exact symbols and asset codes are dictionary keys; glob patterns are compiled once
(``rules.patterns``). ``PriceIndex.rules_for`` answers for one (symbol, base, source) and the
engine caches the answer, so an event costs one dictionary lookup however many rules there are.
"""

from __future__ import annotations

from coinstream.alerts.rules import AnyRule, is_glob


class PriceIndex:
    """The price rules of a rules file, by the symbols and assets they name."""

    def __init__(self, rules: list[AnyRule]) -> None:
        self.rules = rules
        self.by_symbol: dict[str, list[int]] = {}
        self.by_asset: dict[str, list[int]] = {}
        self.patterned: list[int] = []
        for pos, rule in enumerate(rules):
            names: list[str] = getattr(rule, "assets", None) or getattr(rule, "symbols", ["*"])
            table = self.by_asset if getattr(rule, "assets", None) else self.by_symbol
            for name in names:
                if is_glob(name):
                    if pos not in self.patterned:
                        self.patterned.append(pos)
                else:
                    table.setdefault(name, []).append(pos)

    def rules_for(self, symbol: str, base: str, source: str) -> list[int]:
        """Positions (in file order) of the rules that watch this symbol from this source."""
        candidates = {
            *self.by_symbol.get(symbol, ()),
            *self.by_asset.get(base, ()),
            *self.patterned,
        }
        return sorted(
            pos
            for pos in candidates
            if self.rules[pos].matches(symbol, base, source)  # type: ignore[union-attr]
        )
