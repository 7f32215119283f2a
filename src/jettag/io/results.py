"""Reading what a results JSON file says about itself."""

from __future__ import annotations

import json
from pathlib import Path

from jettag.errors import InputError


def results_owner(path: Path, key: str = "tagger") -> str:
    """The tagger (key "tagger") or model (key "model") whose results a JSON file holds."""
    data = read_results(path)
    if key not in data:
        raise InputError(f"{path}: no '{key}' key; is it a results file of jettag?")
    return str(data[key])


def read_results(path: Path) -> dict:
    """A results JSON file as a dict."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read results JSON ({err})") from err
