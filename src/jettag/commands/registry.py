"""The stage registry: each stage declared once, by `@command` on the function that runs it.

A declaration names the stage, its help text, its settings function (jettag.stages: what it
reads from the config) and its own arguments. Everything else follows from it:
- the wildcards that name one job are the settings function's parameters after `config`; the
  CLI gets one `--<wildcard>` option for each (required unless the function has a default);
- `stage_settings(stage, config, **wildcards)`, which the command and the rule's params call:
  a JobSettings, each key an attribute, the config sections the stage declares (`sections`)
  as their dataclasses, a subset of a section as its partial one; the rule's params hash its
  dict form (`as_dict`), which the settings function returns;
- the `jettag <stage>` sub-command (jettag.cli builds its parser from STAGES);
- whether the command imports torch up front (`needs_torch`, see jettag.cli).
tests/test_stage_registry.py checks that every stage has a rule and every rule's command and
params name a declared stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jettag.config import typed_section
from jettag.errors import ConfigError

Settings = dict[str, Any]
SettingsFunction = Callable[..., Settings]


class JobSettings:
    """What one job of a stage reads of the config, typed (see the module docstring)."""

    def __init__(self, source: Settings, sections: Mapping[str, type]) -> None:
        self._source = source
        self._values = {
            key: typed_section(sections[key], value) if key in sections else value
            for key, value in source.items()
        }

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"the settings of this stage hold {sorted(values)}, not '{name}';"
                             " jettag.stages says what each stage reads")  # fmt: skip

    def as_dict(self) -> Settings:
        """The dict form: what the settings function returned, and the rule's params hash."""
        return self._source

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobSettings) and other._source == self._source

    def __repr__(self) -> str:
        return f"JobSettings({self._source!r})"


Runner = Callable[[argparse.Namespace, JobSettings], None]


@dataclasses.dataclass(frozen=True)
class Argument:
    """One argparse argument of a stage: its flags (or positional name) and options."""

    flags: tuple[str, ...]
    options: dict[str, Any]

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Add the argument to a sub-command's parser."""
        parser.add_argument(*self.flags, **self.options)


def arg(*flags: str, **options: Any) -> Argument:
    """An argument, as argparse's add_argument takes it."""
    return Argument(flags, options)


def path(flag: str, help: str | None = None, **options: Any) -> Argument:
    """A file or directory: an option (`--x`, required unless given a default) or a positional."""
    if flag.startswith("--"):
        options.setdefault("required", "default" not in options)
    return Argument((flag,), {"type": Path, "help": help, **options})


def paths(flag: str, help: str | None = None, **options: Any) -> Argument:
    """One or more files: an option (`--x`, required) or a positional."""
    return path(flag, help, nargs=options.pop("nargs", "+"), **options)


@dataclasses.dataclass(frozen=True)
class Stage:
    """A pipeline stage: its command, what it reads of the config, and its arguments."""

    name: str
    help: str
    run: Runner
    settings: SettingsFunction
    arguments: tuple[Argument, ...]
    wildcard_help: dict[str, str]
    needs_torch: bool
    sections: dict[str, type]  # settings key -> the config section dataclass it is typed as

    @property
    def wildcards(self) -> tuple[str, ...]:
        """The names of the job: the settings function's parameters after `config`."""
        return tuple(list(inspect.signature(self.settings).parameters)[1:])

    def add_parser(self, subparsers: Any) -> argparse.ArgumentParser:
        """The stage's sub-command: --config, one option per wildcard, then its arguments."""
        parser = subparsers.add_parser(self.name, help=self.help, description=self.help)
        parser.add_argument("--config", type=Path, required=True, help="analysis YAML config")
        for name, param in list(inspect.signature(self.settings).parameters.items())[1:]:
            options: dict[str, Any] = {"help": self.wildcard_help.get(name)}
            if "int" in str(param.annotation):  # annotations are strings (postponed)
                options["type"] = int
            if param.default is inspect.Parameter.empty:
                options["required"] = True
            else:
                options["default"] = param.default
            parser.add_argument(f"--{name}", **options)
        for argument in self.arguments:
            argument.add_to(parser)
        parser.set_defaults(stage_entry=self)
        return parser

    def settings_of(self, config: dict[str, Any], args: argparse.Namespace) -> JobSettings:
        """The settings of the job the command line names."""
        return self.typed(self.settings(config, **{w: getattr(args, w) for w in self.wildcards}))

    def typed(self, settings: Settings) -> JobSettings:
        """Settings in their dict form, typed."""
        return JobSettings(settings, self.sections)


STAGES: dict[str, Stage] = {}


def command(
    name: str,
    help: str,
    settings: SettingsFunction,
    *arguments: Argument,
    wildcard_help: dict[str, str] | None = None,
    needs_torch: bool = False,
    sections: Mapping[str, type] | None = None,
) -> Callable[[Runner], Runner]:
    """Declare a stage whose command is the decorated function (see the module docstring)."""

    def register(run: Runner) -> Runner:
        if name in STAGES:
            raise ValueError(f"stage '{name}' declared twice")
        STAGES[name] = Stage(name, help, run, settings, arguments, dict(wildcard_help or {}),
                             needs_torch, dict(sections or {}))  # fmt: skip
        return run

    return register


def stage_settings(name: str, config: dict[str, Any], **wildcards: Any) -> JobSettings:
    """The config one job of a stage reads (jettag.stages), typed."""
    if name not in STAGES:
        raise ConfigError(f"unknown stage '{name}' (known: {sorted(STAGES)})")
    stage = STAGES[name]
    return stage.typed(stage.settings(config, **wildcards))


def settings_json(settings: Settings) -> str:
    """Canonical text of settings: key order and YAML style do not matter."""
    return json.dumps(settings, sort_keys=True)


def stage_params(name: str, config: dict[str, Any], **wildcards: Any) -> str:
    """A rule's `params.settings`: stage_settings' dict form as canonical JSON."""
    return settings_json(stage_settings(name, config, **wildcards).as_dict())


def settings_digest(settings: JobSettings) -> str:
    """SHA-256 of the canonical JSON of a job's settings (logged by every command)."""
    return hashlib.sha256(settings_json(settings.as_dict()).encode()).hexdigest()
