"""Shared helpers for the deployment checks: repository paths, file loading, env files,
compose-style interpolation, and checking environment variables against a service's settings."""

from __future__ import annotations

import importlib
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from pydantic_settings import BaseSettings

from coinstream.runtime import KafkaSettings, ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCHEMAS = DEPLOY / "schemas"

SERVICES: dict[str, str] = {
    "ingest-ws": "INGEST_WS_",
    "ingest-rest": "INGEST_REST_",
    "normalizer": "NORMALIZER_",
    "sink-postgres": "SINK_POSTGRES_",
    "alerts": "ALERTS_",
}
"""Service directory -> environment prefix (the brief's contract)."""

DEPLOYMENTS: dict[str, str] = {**{s: s for s in SERVICES}, "consolidator": "normalizer"}
"""Deployment (and compose service) name -> the service directory whose image it runs: the
normalizer runs twice, in its normalize and consolidate roles."""


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def load_yaml_documents(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, rest = full.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    assert not pending, f"{path}: dangling line continuation"
    return result


def read_env_file(path: Path) -> dict[str, str]:
    """A docker-compose style env file: KEY=VALUE, '#' comments, optional quotes."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{number}: not KEY=VALUE"
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"{path.name}:{number}: bad name {key!r}"
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_]\w*)")


def variables(text: str) -> set[str]:
    """Names interpolated in a compose file."""
    return {m.group(1) or m.group(4) for m in _VAR.finditer(text) if m.group(0) != "$$"}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, $$ for a dollar."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, default = m.group(2), m.group(3) or ""
        if name in env and (env[name] != "" or op in (None, "-")):
            return env[name]
        return default if op in (":-", "-") else ""

    return _VAR.sub(sub, value)


def settings_class(service: str) -> type[ServiceSettings]:
    """The one ServiceSettings subclass of a service (with ingest-rest's plugin fields)."""
    package = "coinstream." + service.replace("-", "_")
    module = importlib.import_module(package + ".settings")
    factory = getattr(module, "installed_settings_class", None)
    if factory is not None:
        cls: type[ServiceSettings] = factory()
        return cls
    own = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, ServiceSettings)
        and obj.__module__ == module.__name__
    ]
    assert len(own) == 1, f"{package}.settings should define one ServiceSettings subclass"
    return own[0]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (dict, typing.Union, types.UnionType):
        return origin is dict or any(_is_mapping(a) for a in typing.get_args(annotation))
    return False


def known_setting(cls: type[BaseModel], name: str) -> bool:
    """Whether ``A__B__C`` (prefix removed) names a field path of ``cls``."""
    model: type[BaseModel] = cls
    parts = name.lower().split("__")
    for index, part in enumerate(parts):
        fields = {n: f for n, f in model.model_fields.items()}
        fields |= {f.alias.lower(): f for f in model.model_fields.values() if f.alias}
        field = fields.get(part)
        if field is None:
            return False
        last = index == len(parts) - 1
        if last:
            return True
        if _is_mapping(field.annotation):
            return True  # remaining parts are dictionary keys
        nested = _models_in(field.annotation)
        if not nested:
            return False
        model = nested[0]
    return True


def unknown_variables(
    service: str, env: dict[str, str], receiver_secrets: frozenset[str] = frozenset()
) -> list[str]:
    """Variables in ``env`` that neither the service's settings nor KafkaSettings read.

    The alerts service also reads the ``ALERTS_*`` variables its rules file's receivers name
    (``receiver_secrets``).
    """
    prefix = SERVICES[service]
    cls = settings_class(service)
    unknown = []
    for name in env:
        if name.startswith("KAFKA_"):
            ok = name.removeprefix("KAFKA_").lower() in KafkaSettings.model_fields
        elif name == "DATABASE_URL":
            ok = service in {"sink-postgres", "alerts"}
        elif name.startswith(prefix):
            ok = known_setting(cls, name.removeprefix(prefix))
            ok = ok or (service == "alerts" and name in receiver_secrets)
        else:
            ok = False
        if not ok:
            unknown.append(name)
    return unknown


def build_settings(
    service: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> BaseSettings:
    """Instantiate the service's settings from exactly ``env`` (nothing else inherited)."""
    import os

    for name in list(os.environ):
        if name.startswith(("KAFKA_", SERVICES[service])) or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_class(service)()
