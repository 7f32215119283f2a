"""The configuration schema: reading it, filling its defaults, applying sample presets.

The JSON Schema in workflow/schemas/config.schema.yaml is the single source of truth for
keys, types and defaults (src/jettag/schema/ links to it so that it ships in the package).
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import yaml

from jettag.errors import ConfigError


@cache
def schema() -> dict[str, Any]:
    """The configuration JSON Schema (draft 2020-12), shipped inside the package."""
    text = resources.files("jettag").joinpath("schema/config.schema.yaml").read_text()
    # libyaml's safe loader (same safety as safe_load, 5x faster): every Snakemake job parses
    # the Snakefile, and with it this schema, twice (sbatch script and job step)
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` (only '#/$defs/name' is used in the schema)."""
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/$defs/"):
            raise ConfigError(f"unsupported schema reference {ref!r}")
        merged = dict(root["$defs"][ref.removeprefix("#/$defs/")])
        merged.update({k: v for k, v in node.items() if k != "$ref"})
        node = merged
    return node


def fill_defaults(instance: Any, node: dict[str, Any], root: dict[str, Any]) -> None:
    """Insert schema defaults into `instance` in place, recursively."""
    node = _resolve(node, root)
    if not isinstance(instance, dict):
        if isinstance(instance, list) and "items" in node:
            for item in instance:
                fill_defaults(item, node["items"], root)
        return
    properties = node.get("properties", {})
    for key, sub in properties.items():
        sub_resolved = _resolve(sub, root)
        if key not in instance and "default" in sub_resolved:
            instance[key] = copy.deepcopy(sub_resolved["default"])
        if key in instance:
            fill_defaults(instance[key], sub, root)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in properties:
                fill_defaults(value, extra, root)


def format_error(error: jsonschema.ValidationError, source: str) -> str:
    """One line naming the file, the key path and what is wrong."""
    path = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    message = error.message
    # anyOf (a branch key: one of the listed keys, or the class set's jet label): say which
    # keys exist rather than "not valid under any of the given schemas"
    listed = [e for e in error.context or () if e.validator == "enum"]
    if listed:
        message = listed[0].message
    return f"{source}: invalid config at '{path}': {message}"


@cache
def preset(name: str) -> dict[str, Any]:
    """A shipped sample preset (src/jettag/presets/<name>.yaml): branches, units, labels."""
    text = resources.files("jettag").joinpath(f"presets/{name}.yaml").read_text()
    return yaml.safe_load(text)


def apply_preset(sample: dict[str, Any]) -> None:
    """Fill a sample section from its preset, in place; the section's own keys win.

    `branches` and `labels` merge key by key (a user maps one branch differently and keeps
    the rest of the preset); every other key of the preset is a default.
    """
    if "preset" not in sample:
        return
    for key, value in preset(sample["preset"]).items():
        if key in ("branches", "labels", "units") and key in sample:
            sample[key] = {**value, **sample[key]}
        elif key not in sample:
            sample[key] = copy.deepcopy(value)


def schema_errors(config: dict[str, Any], source: str) -> list[str]:
    """One line per schema violation of a config (empty when it is valid), sorted by key."""
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    return [format_error(e, source) for e in errors]


def check_schema(config: dict[str, Any], source: str) -> None:
    """Raise a ConfigError listing every schema violation of a config."""
    errors = schema_errors(config, source)
    if errors:
        raise ConfigError("\n".join(errors))
