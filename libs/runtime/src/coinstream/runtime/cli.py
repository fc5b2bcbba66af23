"""The command line every service shares: ``--help``, ``--version``, settings, exit codes.

Each service's ``__main__`` calls ``load_settings`` first. It builds an argparse parser whose
options are the service's settings, added by pydantic-settings' own ``CliSettingsSource``
(``--log-level``, ``--kafka.bootstrap-servers``...), with every option's environment
variable in its help. ``--help`` and ``--version`` print and exit 0 before anything
connects anywhere. Values come from the options, then the environment, then the defaults.

Exit codes: 0 after a clean stop, 1 when the service fails while running, 2 for every
configuration error (a value of the wrong type, a failed semantic check, a bad option),
reported as one line ``<prog>: configuration error: <VARIABLE>=<value>: expected <form>``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, CliSettingsSource, SettingsError

from coinstream.runtime.config_errors import env_names, explain
from coinstream.runtime.errors import ConfigurationError

S = TypeVar("S", bound=BaseSettings)

EXIT_CONFIGURATION = 2
"""Exit code of a configuration error (argparse's own usage errors use it too)."""

ENV_HELP = (
    "Every option can also be set by the environment variable shown with it; options win "
    "over variables. Lists and maps are JSON in variables (INGEST_WS_BINANCE__SYMBOLS="
    "'[\"BTC-USDT\"]') and repeated or comma-separated as options."
)

AddArguments = Callable[[argparse.ArgumentParser], set[str]]
"""Adds a service's own arguments (subcommands...) and returns their ``dest`` names."""


def version_of(distribution: str) -> str:
    """The installed version of ``distribution`` (``unknown`` when run from a bare tree)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def configuration_error(prog: str, message: str) -> NoReturn:
    """Print one line to stderr and exit with ``EXIT_CONFIGURATION``."""
    print(f"{prog}: configuration error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_CONFIGURATION)


@contextlib.contextmanager
def configuration_errors(
    prog: str,
    settings_class: type[BaseModel],
    cli_values: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Iterator[None]:
    """Turn a configuration error raised inside into one line on stderr and exit 2.

    Catches pydantic's ``ValidationError``, pydantic-settings' ``SettingsError`` and
    Coinstream's ``ConfigurationError`` (the semantic checks: unknown symbols, missing
    receiver secrets, invalid rules files).
    """
    try:
        yield
    except (ValidationError, SettingsError, ConfigurationError) as exc:
        env = os.environ if environ is None else environ
        configuration_error(prog, explain(exc, settings_class, env, cli_values))


def _field_path(settings_class: type[BaseModel], dest: str) -> tuple[str, ...]:
    """The field path of an option's ``dest``; a top-level field read through validation
    aliases (``SINK_POSTGRES_DATABASE_URL``) gets the alias as its dest."""
    path = tuple(dest.split("."))
    if path[0] not in settings_class.model_fields:
        for name, field in settings_class.model_fields.items():
            alias = field.validation_alias
            choices = getattr(alias, "choices", [alias])
            if dest in choices:
                return (name, *path[1:])
    return path


def _add_argument_with_env(settings_class: type[BaseModel]) -> Callable[..., Any]:
    """``add_argument`` that appends the option's environment variable(s) to its help and
    drops option spellings that are environment names (upper-case validation aliases)."""

    def add_argument(parser: Any, *flags: str, **kwargs: Any) -> Any:
        dest = kwargs.get("dest")
        if isinstance(dest, str) and kwargs.get("help") != argparse.SUPPRESS:
            path = _field_path(settings_class, dest)
            flags = tuple(f for f in flags if not f.lstrip("-").isupper()) or flags
            names = env_names(settings_class, path)
            if names:
                kwargs["help"] = f"{kwargs.get('help') or ''} [env: {' | '.join(names)}]".strip()
        return parser.add_argument(*flags, **kwargs)

    return add_argument


def build_parser(
    settings_class: type[S],
    *,
    prog: str,
    description: str,
    distribution: str,
    add_arguments: AddArguments | None = None,
) -> tuple[argparse.ArgumentParser, CliSettingsSource[S], set[str]]:
    """The service's parser, the settings source bound to it, and the service's own dests."""
    parser = argparse.ArgumentParser(
        prog=prog,
        usage="%(prog)s [options]",
        description=textwrap.fill(description, 79),
        epilog=textwrap.fill(ENV_HELP, 79),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{prog} {version_of(distribution)}")
    own = add_arguments(parser) if add_arguments else set()
    source: CliSettingsSource[S] = CliSettingsSource(
        settings_class,
        root_parser=parser,
        cli_kebab_case=True,
        cli_avoid_json=True,
        cli_hide_none_type=True,
        cli_implicit_flags=False,
        add_argument_method=_add_argument_with_env(settings_class),
    )
    return parser, source, own


def load_settings(
    settings_class: type[S],
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    distribution: str,
    add_arguments: AddArguments | None = None,
) -> tuple[S, argparse.Namespace]:
    """Parse ``argv`` (default ``sys.argv[1:]``) and the environment into ``settings_class``.

    Returns the settings and a namespace with only the service's own arguments. ``--help``
    and ``--version`` exit 0 here; a configuration error exits 2 with one line.
    """
    parser, source, own = build_parser(
        settings_class,
        prog=prog,
        description=description,
        distribution=distribution,
        add_arguments=add_arguments,
    )
    parsed = vars(parser.parse_args(sys.argv[1:] if argv is None else list(argv)))
    cli_values = {k: v for k, v in parsed.items() if k not in own}
    with configuration_errors(prog, settings_class, cli_values):
        settings = settings_class(_cli_settings_source=source(parsed_args=cli_values))
    return settings, argparse.Namespace(**{k: v for k, v in parsed.items() if k in own})
