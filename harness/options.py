"""Harness options: one pydantic-settings class per harness, read from its own env prefix
(BENCH_*, FAULTS_*, ONLINE_*), turned into command-line options whose `--help` shows the env
name and the value in force. The one way a harness reads its environment defaults.
"""

from __future__ import annotations

import argparse
import types
import typing
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict


class EnvOptions(BaseSettings):
    """Base of a harness's options; subclasses set `env_prefix` and describe every field."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_ignore_empty=True)


def _scalar(annotation: Any) -> Any:
    """int for `int`, `int | None` and `Optional[int]`; the type argparse converts to."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def options_parser(prog: str, description: str | None,
                   options: EnvOptions) -> argparse.ArgumentParser:
    """A parser for `python -m <prog>` holding every field of `options` (more may be added)."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser, options)
    return parser


def add_options(parser: argparse.ArgumentParser, options: EnvOptions) -> None:
    """One `--field-name` per field of `options`, defaulting to its value (env, else default)."""
    prefix = str(options.model_config.get("env_prefix", ""))
    for name, field in type(options).model_fields.items():
        flag = "--" + name.replace("_", "-")
        value = getattr(options, name)
        text = f"{field.description or name} (env {(prefix + name).upper()}"
        if _scalar(field.annotation) is bool:
            parser.add_argument(flag, action="store_true", default=value,
                                help=text + "=1)")
        else:
            parser.add_argument(flag, type=_scalar(field.annotation), default=value,
                                help=text + ", now %(default)s)")
