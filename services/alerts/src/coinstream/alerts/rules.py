"""The rules file: pydantic models, YAML loading and validation with errors that name the rule.

Every rule has hysteresis, so a value hovering near its threshold cannot flap: a clear band
or resolve threshold per rule type (``rearm_*``/``resolve_threshold``, ``resolve_percent``,
``resolve_factor``, ``band_margin``) and the time the condition must hold before firing
(``for``) and stay clear before resolving (``resolve_for``, default ``for``).

A rules file has four sections::

    version: 1
    grouping: {group_by: [alertname], group_wait: 2s, group_interval: 1m, repeat_interval: 4h}
    receivers:
      slack-main: {type: slack_webhook, url_env: ALERTS_SLACK_WEBHOOK_URL}
    rules:
      - id: btc-above-68k
        type: price_threshold
        symbols: [BTC-USDT]
        direction: above
        threshold: 68000
        rearm_amount: 250
        receivers: [slack-main]

Secrets (webhook URLs, tokens) are never written in the file: receivers name the environment
variable (``ALERTS_*``) that holds them.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import math
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from coinstream.alerts.errors import RulesError

Severity = Literal["info", "warning", "critical"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_ENV_NAME = re.compile(r"^ALERTS_[A-Z0-9_]+$")


def parse_duration(value: Any) -> float:
    """``"90s"``, ``"5m"``, ``"1h30m"``, ``"250ms"`` or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is required, not a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        pos, seconds = 0, 0.0
        for match in _DURATION.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 1h30m, 250ms)")
    else:
        raise ValueError(f"a duration is required, got {type(value).__name__}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("a number is required, not a boolean")
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise ValueError("the number must be finite")
    return result


Duration = Annotated[float, BeforeValidator(parse_duration)]
Number = Annotated[Decimal, BeforeValidator(_decimal)]

DEFAULT_REARM_PERCENT = Decimal("0.1")
"""price_threshold's clear band when none is given: 0.1% of the threshold."""
CLEAR_FRACTION = Decimal("0.8")
"""Default resolve level of percent, spread, spike and error-rate rules: 80% of the way."""


def _below(name: str, value: Decimal | None, limit_name: str, limit: Decimal) -> None:
    if value is not None and value > limit:
        raise ValueError(f"{name} must not be above {limit_name} {limit}")


def _or_fraction(value: Decimal | None, limit: Decimal) -> Decimal:
    return limit * CLEAR_FRACTION if value is None else value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} must name an environment variable ALERTS_<NAME>")
    return value


EnvName = Annotated[str, BeforeValidator(_env_name)]


# ---------------------------------------------------------------------------------- receivers
class _Receiver(_Model):
    min_interval_s: float | None = Field(
        None, ge=0, description="Minimum spacing between messages to this destination"
    )
    group_by: list[str] | None = Field(None, description="Overrides grouping.group_by")
    group_wait: Duration | None = Field(None, description="Overrides grouping.group_wait")
    group_interval: Duration | None = Field(None, description="Overrides grouping.group_interval")
    repeat_interval: Duration | None = Field(None, description="Overrides grouping.repeat_interval")


class SlackWebhookReceiver(_Receiver):
    type: Literal["slack_webhook"]
    url_env: EnvName


class SlackApiReceiver(_Receiver):
    type: Literal["slack_api"]
    token_env: EnvName
    channel: str = Field(min_length=1)


class TelegramReceiver(_Receiver):
    type: Literal["telegram"]
    token_env: EnvName
    chat_id: str = Field(min_length=1)
    parse_mode: Literal["MarkdownV2", "HTML"] = "MarkdownV2"

    @field_validator("chat_id", mode="before")
    @classmethod
    def _chat_id_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @property
    def is_group(self) -> bool:
        return self.chat_id.startswith(("-", "@"))


class DiscordReceiver(_Receiver):
    type: Literal["discord"]
    url_env: EnvName


class EmailReceiver(_Receiver):
    type: Literal["email"]
    to: list[str] = Field(min_length=1)
    subject_prefix: str = "[coinstream]"

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or any(c in address for c in "\r\n<> "):
                raise ValueError(f"not an e-mail address: {address!r}")
        return value


class WebhookReceiver(_Receiver):
    type: Literal["webhook"]
    url_env: EnvName


Receiver = Annotated[
    SlackWebhookReceiver
    | SlackApiReceiver
    | TelegramReceiver
    | DiscordReceiver
    | EmailReceiver
    | WebhookReceiver,
    Field(discriminator="type"),
]


# --------------------------------------------------------------------------------------- rules
class _Rule(_Model):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=120)
    description: str = ""
    severity: Severity = "warning"
    for_: Duration = Field(0.0, alias="for", description="Condition must hold this long")
    resolve_for: Duration | None = Field(
        None, description="Condition must stay clear this long before resolving (default: for)"
    )
    cooldown: Duration = Field(0.0, description="No new firing this long after the last one")
    repeat_interval: Duration | None = Field(None, description="Re-notify while still firing")
    send_resolved: bool = True
    labels: dict[str, str] = Field(default_factory=dict)
    receivers: list[str] = Field(default_factory=list)
    enabled: bool = True

    _digest: str | None = PrivateAttr(None)

    def digest(self) -> str:
        """Changes when the rule's definition changes (a reload keeps state of unchanged rules)."""
        if self._digest is None:
            text = self.model_dump_json().encode()
            self._digest = hashlib.blake2b(text, digest_size=8).hexdigest()
        return self._digest

    @property
    def clear_for(self) -> float:
        """How long the condition must stay clear before a firing alert resolves."""
        return self.for_ if self.resolve_for is None else self.resolve_for


class _SymbolRule(_Rule):
    symbols: list[str] = Field(default_factory=lambda: ["*"], description="Names or globs")
    assets: list[str] = Field(default_factory=list, description="Base asset codes or globs")
    sources: list[str] = Field(default_factory=lambda: ["*"], description="Venues or globs")

    def matches(self, symbol: str, base: str | None, source: str) -> bool:
        if not patterns(self.sources).match(source):
            return False
        if self.assets:
            return base is not None and patterns(self.assets).match(base)
        return patterns(self.symbols).match(symbol)


class PriceThresholdRule(_SymbolRule):
    type: Literal["price_threshold"]
    direction: Literal["above", "below"]
    threshold: Number
    rearm_amount: Number | None = Field(None, description="Re-arm after moving back this much")
    rearm_percent: Number | None = Field(
        None, description=f"... or this percent (default {DEFAULT_REARM_PERCENT})"
    )
    resolve_threshold: Number | None = Field(None, description="... or at this price")
    field: Literal["price", "mid", "bid", "ask"] = "price"

    @model_validator(mode="after")
    def _rearm(self) -> PriceThresholdRule:
        given = [
            n
            for n in ("rearm_amount", "rearm_percent", "resolve_threshold")
            if getattr(self, n) is not None
        ]
        if len(given) > 1:
            raise ValueError(
                f"give one of rearm_amount, rearm_percent, resolve_threshold, not {given}"
            )
        for name in ("rearm_amount", "rearm_percent"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} cannot be negative")
        level = self.resolve_threshold
        if level is not None and (
            level > self.threshold if self.direction == "above" else level < self.threshold
        ):
            side = "at or below" if self.direction == "above" else "at or above"
            raise ValueError(f"resolve_threshold must be {side} the threshold {self.threshold}")
        return self

    @property
    def rearm_level(self) -> Decimal:
        """The price at which a fired alert re-arms (and resolves): the clear band's edge."""
        if self.resolve_threshold is not None:
            return self.resolve_threshold
        if self.rearm_amount is not None:
            margin = self.rearm_amount
        else:
            percent = DEFAULT_REARM_PERCENT if self.rearm_percent is None else self.rearm_percent
            margin = abs(self.threshold) * percent / 100
        return self.threshold - margin if self.direction == "above" else self.threshold + margin


class PercentChangeRule(_SymbolRule):
    type: Literal["percent_change"]
    window: Duration = Field(gt=0)
    percent: Number = Field(gt=0)
    resolve_percent: Number | None = Field(
        None, ge=0, description=f"Resolves below this move (default {CLEAR_FRACTION} x percent)"
    )
    direction: Literal["up", "down", "either"] = "either"

    @model_validator(mode="after")
    def _band(self) -> PercentChangeRule:
        _below("resolve_percent", self.resolve_percent, "percent", self.percent)
        return self

    @property
    def clear_percent(self) -> Decimal:
        return _or_fraction(self.resolve_percent, self.percent)


class SpikeRule(_SymbolRule):
    type: Literal["spike"]
    metric: Literal["volume", "volatility"]
    window: Duration = Field(gt=0, description="Recent window compared with the baseline")
    baseline: Duration = Field(gt=0, description="Trailing baseline before the window")
    factor: float = Field(gt=1, description="Fire when recent > factor x baseline")
    resolve_factor: float | None = Field(
        None, ge=0, description="Resolve at or below this ratio (default 80% of the way to factor)"
    )
    min_samples: int = Field(10, ge=2, description="Events needed in the baseline")

    @model_validator(mode="after")
    def _baseline_longer(self) -> SpikeRule:
        if self.baseline < self.window:
            raise ValueError("baseline must be at least as long as window")
        if self.resolve_factor is not None and self.resolve_factor > self.factor:
            raise ValueError(f"resolve_factor must not be above factor {self.factor:g}")
        return self

    @property
    def clear_factor(self) -> float:
        if self.resolve_factor is not None:
            return self.resolve_factor
        return 1 + (self.factor - 1) * float(CLEAR_FRACTION)


class SpreadRule(_SymbolRule):
    type: Literal["spread"]
    percent: Number = Field(gt=0)
    resolve_percent: Number | None = Field(
        None, ge=0, description=f"Resolves below this spread (default {CLEAR_FRACTION} x percent)"
    )
    max_age: Duration = Field(10.0, gt=0, description="Ignore venue prices older than this")
    min_venues: int = Field(2, ge=2)

    @model_validator(mode="after")
    def _band(self) -> SpreadRule:
        _below("resolve_percent", self.resolve_percent, "percent", self.percent)
        return self

    @property
    def clear_percent(self) -> Decimal:
        return _or_fraction(self.resolve_percent, self.percent)


class SentimentRule(_Rule):
    type: Literal["sentiment"]
    subjects: list[str] = Field(default_factory=lambda: ["market"])
    sources: list[str] = Field(
        default_factory=lambda: ["*"], description="Reporting sources (globs); each has its state"
    )
    metric: str = "fear_greed"
    mode: Literal["band_change", "change"] = "band_change"
    points: Number | None = Field(None, gt=0, description="For mode=change")
    band_margin: Number = Field(
        Decimal(2),
        ge=0,
        description="band_change: the value must move this many points past the last value "
        "reported in the current band before a new band counts",
    )

    @model_validator(mode="after")
    def _points(self) -> SentimentRule:
        if self.mode == "change" and self.points is None:
            raise ValueError("mode 'change' needs points")
        return self


class FeedStatusRule(_Rule):
    type: Literal["feed_status"]
    sources: list[str] = Field(default_factory=lambda: ["*"])
    symbols: list[str] = Field(default_factory=lambda: ["*"])
    statuses: list[str] = Field(default_factory=lambda: ["stale", "gap", "disconnected"])
    clear_statuses: list[str] = Field(default_factory=lambda: ["connected", "resumed"])
    resolve_after: Duration | None = Field(
        None, gt=0, description="Resolve when no bad status was reported for this long"
    )


class NoDataRule(_SymbolRule):
    type: Literal["no_data"]
    timeout: Duration = Field(gt=0)


class ServiceHealthRule(_Rule):
    type: Literal["service_health"]
    services: list[str] = Field(default_factory=lambda: ["*"])
    statuses: list[Literal["degraded", "unready"]] = Field(
        default_factory=lambda: ["degraded", "unready"]  # type: ignore[arg-type]
    )


class ErrorRateRule(_Rule):
    type: Literal["error_rate"]
    sources: list[str] = Field(default_factory=lambda: ["*"])
    statuses: list[str] = Field(
        default_factory=lambda: ["rate_limited", "source_error", "disconnected", "circuit_open"]
    )
    counters: list[str] = Field(
        default_factory=list, description="ServiceHealthEvent counters (globs) that count errors"
    )
    window: Duration = Field(gt=0)
    threshold: int = Field(ge=1, description="Fire when more errors than this in the window")
    resolve_threshold: int | None = Field(
        None, ge=0, description="Resolve at or below this many (default 80% of threshold)"
    )

    @model_validator(mode="after")
    def _band(self) -> ErrorRateRule:
        if self.resolve_threshold is not None and self.resolve_threshold > self.threshold:
            raise ValueError(f"resolve_threshold must not be above threshold {self.threshold}")
        return self

    @property
    def clear_threshold(self) -> int:
        if self.resolve_threshold is not None:
            return self.resolve_threshold
        return math.floor(self.threshold * CLEAR_FRACTION)


Rule = Annotated[
    PriceThresholdRule
    | PercentChangeRule
    | SpikeRule
    | SpreadRule
    | SentimentRule
    | FeedStatusRule
    | NoDataRule
    | ServiceHealthRule
    | ErrorRateRule,
    Field(discriminator="type"),
]
AnyRule = (
    PriceThresholdRule
    | PercentChangeRule
    | SpikeRule
    | SpreadRule
    | SentimentRule
    | FeedStatusRule
    | NoDataRule
    | ServiceHealthRule
    | ErrorRateRule
)


class Grouping(_Model):
    group_by: list[str] = Field(default_factory=lambda: ["alertname"])
    group_wait: Duration = 5.0
    group_interval: Duration = 60.0
    repeat_interval: Duration = 4 * 3600.0


class RulesFile(_Model):
    version: Literal[1] = 1
    grouping: Grouping = Field(default_factory=Grouping)
    default_receivers: list[str] = Field(default_factory=list)
    receivers: dict[str, Receiver] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> RulesFile:
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            where = f"rule {rule.id!r} (rules[{index}])"
            if rule.id in seen:
                raise ValueError(f"{where}: duplicate id")
            seen.add(rule.id)
            names = rule.receivers or self.default_receivers
            if not names:
                raise ValueError(f"{where} field 'receivers': no receivers and no default")
            for name in names:
                if name not in self.receivers:
                    raise ValueError(
                        f"{where} field 'receivers': unknown receiver {name!r} "
                        f"(defined: {sorted(self.receivers)})"
                    )
        for name in self.default_receivers:
            if name not in self.receivers:
                raise ValueError(f"field 'default_receivers': unknown receiver {name!r}")
        return self

    def receivers_of(self, rule: _Rule) -> list[str]:
        return list(rule.receivers or self.default_receivers)

    def grouping_for(self, receiver: str) -> Grouping:
        """The file's grouping with the receiver's own overrides (like an Alertmanager route)."""
        r = self.receivers.get(receiver)
        if r is None:
            return self.grouping
        changes = {
            k: getattr(r, k)
            for k in ("group_by", "group_wait", "group_interval", "repeat_interval")
            if getattr(r, k) is not None
        }
        return self.grouping.model_copy(update=changes) if changes else self.grouping

    @property
    def active_rules(self) -> list[AnyRule]:
        return [r for r in self.rules if r.enabled]

    def secret_names(self) -> dict[str, str]:
        """Environment variables the receivers need: ``{receiver: env name}``."""
        out: dict[str, str] = {}
        for name, receiver in self.receivers.items():
            env = getattr(receiver, "url_env", None) or getattr(receiver, "token_env", None)
            if env:
                out[name] = env
        return out


class Patterns:
    """A list of names or globs, compiled once: exact names in a set, globs in one regex."""

    def __init__(self, items: tuple[str, ...]) -> None:
        globs = [p for p in items if is_glob(p)]
        self.exact = frozenset(p for p in items if not is_glob(p))
        self.everything = "*" in globs
        self._regex = re.compile("|".join(fnmatch.translate(p) for p in globs)) if globs else None

    def match(self, value: str) -> bool:
        if self.everything or value in self.exact:
            return True
        return self._regex is not None and self._regex.match(value) is not None


def is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


@functools.lru_cache(maxsize=4096)
def _patterns(items: tuple[str, ...]) -> Patterns:
    return Patterns(items)


def patterns(items: list[str]) -> Patterns:
    """The compiled form of a rule's name/glob list (cached)."""
    return _patterns(tuple(items))


def _describe(loc: tuple[int | str, ...], raw: Any) -> str:
    """``('rules', 2, 'price_threshold', 'threshold')`` -> ``rule 'x' (rules[2]) field 'threshold'``."""
    parts = list(loc)
    if len(parts) >= 2 and parts[0] == "rules" and isinstance(parts[1], int):
        index = parts[1]
        rule_id = "?"
        rules = raw.get("rules") if isinstance(raw, dict) else None
        if isinstance(rules, list) and index < len(rules) and isinstance(rules[index], dict):
            rule_id = str(rules[index].get("id", "?"))
            tag = rules[index].get("type")
            if len(parts) > 2 and parts[2] == tag:
                del parts[2]
        field = ".".join(str(p) for p in parts[2:]) or "(rule)"
        return f"rule {rule_id!r} (rules[{index}]) field {field!r}"
    if len(parts) >= 2 and parts[0] == "receivers":
        field = ".".join(str(p) for p in parts[3:] or parts[2:]) or "(receiver)"
        return f"receiver {parts[1]!r} field {field!r}"
    return "field " + repr(".".join(str(p) for p in parts) or "(file)")


def parse_rules(text: str, origin: str = "<rules>") -> RulesFile:
    """Parse and validate rules YAML; raise ``RulesError`` naming the rule and field."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{origin}: not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RulesError(f"{origin}: the top level must be a mapping with 'rules' and 'receivers'")
    try:
        return RulesFile.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["loc"]:
                problems.append(f"{_describe(err['loc'], raw)}: {msg}")
            else:
                problems.append(msg)
        raise RulesError(f"{origin}: invalid rules file: " + "; ".join(problems)) from None


def load_rules(path: Path) -> RulesFile:
    """Read and validate the rules file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(
            f"cannot read rules file {path}: {exc.strerror}; set ALERTS_RULES_FILE"
        ) from None
    return parse_rules(text, str(path))
