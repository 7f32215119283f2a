"""Results files: the base of their dataclasses, and reading what a file says about itself.

Each kind of results file (metrics, working points, efficiency vs pT, ...) has a dataclass
next to the code that computes it, derived from Result: the compute function returns it, the
command writes it, and the plot stages read it back and draw from it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import MappingProxyType
from typing import Self

from jettag.atomic import write_json
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


# metadata of a Result field that may be absent from the file (left out of it when None):
# `name: dict | None = dataclasses.field(default=None, metadata=OMIT_NONE)`
OMIT_NONE = MappingProxyType({"omit_none": True})


@dataclasses.dataclass
class Result:
    """Base of the dataclass of one kind of results file: its fields are the file's top-level
    JSON keys, in the file's order, so that writing one gives the same file as before.

    Values are as JSON holds them (inf and NaN are None): a producer builds its result with
    `from_dict(json_safe(...))`, so what it returns equals what a plot reads back.
    """

    def to_dict(self) -> dict:
        """The JSON object of the file."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None and field.metadata.get("omit_none"):
                continue
            out[field.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict, source: str = "") -> Self:
        """The result of a JSON object; a missing key is an InputError naming the source."""
        fields = dataclasses.fields(cls)
        required = [f.name for f in fields if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]  # fmt: skip
        missing = [name for name in required if name not in data]
        if missing:
            raise InputError(
                f"{source or 'results'}: no {missing}; not a {cls.__name__} file of this"
                " version of jettag (rerun the stage that writes it)"
            )
        return cls(**{f.name: data[f.name] for f in fields if f.name in data})

    @classmethod
    def read(cls, path: Path) -> Self:
        """Read a results file of this kind."""
        return cls.from_dict(read_results(path), str(path))

    def write(self, path: Path) -> None:
        """Write the file atomically."""
        write_json(path, self.to_dict())
