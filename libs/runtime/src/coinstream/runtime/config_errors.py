"""Configuration errors as one line that names the variable and the expected form.

pydantic reports a bad setting as a multi-line ``ValidationError`` located by field path
(``('binance', 'max_streams_per_connection')``), and pydantic-settings reports an
environment value that is not valid JSON as a ``SettingsError`` naming only the top-level
field. People set environment variables, so ``explain`` translates both back to the
variable that was set (``INGEST_WS_BINANCE__MAX_STREAMS_PER_CONNECTION``), or to the
command-line option when the value came from there, and says what form the value must take.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import AliasChoices, BaseModel, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsError

from coinstream.runtime.errors import ConfigurationError
from coinstream.runtime.logging import is_secret_name

Path = tuple[str | int, ...]

_SETTINGS_ERROR = re.compile(r'field "(?P<field>[^"]+)" from source "(?P<source>[^"]+)"')
_FORMS = {
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "decimal_parsing": "a decimal number",
    "decimal_type": "a decimal number",
    "string_type": "a string",
    "list_type": 'a JSON list, e.g. ["a","b"]',
    "tuple_type": 'a JSON list, e.g. ["a","b"]',
    "dict_type": 'a JSON object, e.g. {"key":"value"}',
    "model_type": "a JSON object of its fields",
    "json_invalid": "valid JSON",
    "missing": "a value (it is required)",
    "url_parsing": "a URL",
}
_BOUNDS = {
    "greater_than": ("gt", "a number greater than"),
    "greater_than_equal": ("ge", "a number of at least"),
    "less_than": ("lt", "a number less than"),
    "less_than_equal": ("le", "a number of at most"),
}


def _unwrap(annotation: Any) -> Any:
    """``X`` for ``X | None``, ``Optional[X]`` and ``Annotated[X, ...]``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


def _model(annotation: Any) -> type[BaseModel] | None:
    inner = _unwrap(annotation)
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def _alias_names(model: type[BaseModel], name: str) -> list[str] | None:
    """Environment names given as a field's validation aliases (they bypass the prefix)."""
    alias = model.model_fields[name].validation_alias
    choices: list[Any] = list(alias.choices) if isinstance(alias, AliasChoices) else [alias]
    names = [c.upper() for c in choices if isinstance(c, str)]
    return list(dict.fromkeys(names)) or None


def env_names(
    model: type[BaseModel], path: Path, prefixes: Sequence[str] | None = None
) -> list[str]:
    """Every environment variable that sets ``path`` of ``model``, preferred name first.

    A nested ``BaseSettings`` (``kafka: KafkaSettings``) reads its own prefix, so
    ``KAFKA_BOOTSTRAP_SERVERS`` comes before ``<SERVICE>_KAFKA__BOOTSTRAP_SERVERS``. A path
    into a list or mapping stops at the variable that holds it as JSON.
    """
    config = model.model_config
    delimiter = str(config.get("env_nested_delimiter") or "__")
    if prefixes is None:
        prefixes = [str(config.get("env_prefix", "")).upper()]
    if not path or not isinstance(path[0], str) or path[0] not in model.model_fields:
        return list(prefixes) if path == () else []
    name, rest = path[0], path[1:]
    aliases = _alias_names(model, name) if issubclass(model, BaseSettings) else None
    here = aliases or [f"{p}{name.upper()}" for p in prefixes]
    sub = _model(model.model_fields[name].annotation)
    if not rest or sub is None:
        return here
    nested = env_names(sub, rest, [f"{n}{delimiter}" for n in here])
    if issubclass(sub, BaseSettings):  # it also reads its own prefix, the documented name
        return list(dict.fromkeys([*env_names(sub, rest), *nested]))
    return nested


def _annotation_at(model: type[BaseModel], path: Path) -> Any:
    annotation: Any = model
    for part in path:
        sub = _model(annotation)
        if sub is None or not isinstance(part, str) or part not in sub.model_fields:
            return None
        annotation = sub.model_fields[part].annotation
    return annotation


def _is_secret(model: type[BaseModel], path: Path) -> bool:
    annotation = _unwrap(_annotation_at(model, path))
    return annotation is SecretStr or any(is_secret_name(str(p)) for p in path)


def _path_to(model: type[BaseModel], title: str, seen: Path = ()) -> Path | None:
    """Where a model named ``title`` sits inside ``model`` (a nested settings class that
    raised its own ``ValidationError`` while being built as a default)."""
    if model.__name__ == title:
        return seen
    for name, field in model.model_fields.items():
        sub = _model(field.annotation)
        if sub is not None and sub is not model:
            found = _path_to(sub, title, (*seen, name))
            if found is not None:
                return found
    return None


def _lookup(environ: Mapping[str, str], names: Sequence[str]) -> tuple[str, str] | None:
    upper = {k.upper(): (k, v) for k, v in environ.items()}
    for name in names:
        if name.upper() in upper:
            return upper[name.upper()]
    return None


def _expected(error: Mapping[str, Any]) -> str:
    kind = str(error["type"])
    ctx = error.get("ctx") or {}
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"{words} {ctx.get(key)}"
    if kind in ("literal_error", "enum"):
        return f"one of {ctx.get('expected')}"
    if kind in _FORMS:
        return _FORMS[kind]
    message = str(error["msg"]).removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def _option(path: Path) -> str:
    return "--" + ".".join(str(p).replace("_", "-") for p in path)


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _where(
    model: type[BaseModel],
    path: Path,
    environ: Mapping[str, str],
    cli_values: Mapping[str, Any],
) -> tuple[str, str | None]:
    """(the name to show, the raw value if it came from the environment).

    The option or variable that holds the value, the deepest first; for an error about a
    whole nested model (a cross-field check), the variables set inside it.
    """
    for depth in range(len(path), 0, -1):
        if ".".join(str(p) for p in path[:depth]) in cli_values:
            return _option(path[:depth]), None
    for depth in range(len(path), 0, -1):
        found = _lookup(environ, env_names(model, path[:depth]))
        if found:
            return found
    names = env_names(model, path)
    delimiter = str(model.model_config.get("env_nested_delimiter") or "__")
    inside = sorted(
        key for key in environ if any(key.upper().startswith(n + delimiter) for n in names)
    )
    if inside:
        return ", ".join(inside), None
    return (names[0] if names else ".".join(str(p) for p in path)), None


def _validation_lines(
    exc: ValidationError,
    model: type[BaseModel],
    environ: Mapping[str, str],
    cli_values: Mapping[str, Any],
) -> Iterator[str]:
    base = _path_to(model, exc.title)
    for error in exc.errors(include_url=False):
        if base is None:  # a model outside the settings tree (a plugin's own settings)
            yield f"{exc.title} {'.'.join(map(str, error['loc']))}: {_expected(error)}"
            continue
        path: Path = (*base, *error["loc"])
        name, raw = _where(model, path, environ, cli_values)
        value = raw if raw is not None else error.get("input")
        secret = _is_secret(model, path)
        if error["type"] == "value_error":
            yield f"{name}: {_expected(error)}"
        elif isinstance(value, dict) or secret:
            yield f"{name}: expected {_expected(error)}"
        else:
            yield f"{name}={_shown(value)}: expected {_expected(error)}"


def _json_form(annotation: Any) -> str:
    origin = typing.get_origin(_unwrap(annotation)) or _unwrap(annotation)
    if origin in (list, tuple, set, frozenset):
        return 'a JSON list, e.g. ["BTC-USDT","ETH-USDT"]'
    return 'a JSON object, e.g. {"key":"value"}'


def _settings_error_line(
    exc: SettingsError, model: type[BaseModel], environ: Mapping[str, str]
) -> str:
    """The variable whose value is not the JSON its field needs (lists, maps, models)."""
    match = _SETTINGS_ERROR.search(str(exc))
    if match is None or "Env" not in match["source"]:
        return str(exc)
    field = match["field"]
    delimiter = str(model.model_config.get("env_nested_delimiter") or "__")
    for top in env_names(model, (field,)):
        for key, value in sorted(environ.items()):
            upper = key.upper()
            if upper != top and not upper.startswith(top + delimiter):
                continue
            rest = upper[len(top) :].split(delimiter)[1:]
            path: Path = (field, *(p.lower() for p in rest))
            annotation = _annotation_at(model, path)
            inner = _unwrap(annotation)
            complex_ = _model(annotation) is not None or typing.get_origin(inner) in (
                list,
                tuple,
                set,
                frozenset,
                dict,
            )
            if not complex_:
                continue
            try:
                json.loads(value)
            except ValueError:
                return f"{key}={_shown(value)}: expected {_json_form(annotation)}"
    return str(exc)


def explain(
    exc: BaseException,
    model: type[BaseModel],
    environ: Mapping[str, str],
    cli_values: Mapping[str, Any] | None = None,
) -> str:
    """One line for a configuration error raised while building or checking ``model``."""
    if isinstance(exc, ValidationError):
        return "; ".join(_validation_lines(exc, model, environ, cli_values or {}))
    if isinstance(exc, SettingsError):
        return _settings_error_line(exc, model, environ)
    if isinstance(exc, ConfigurationError):
        return " ".join(str(exc).split())
    raise TypeError(f"not a configuration error: {exc!r}")
