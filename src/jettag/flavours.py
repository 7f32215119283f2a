"""Truth labels as data: class sets read from YAML, and ATLAS's track origins.

A class set (src/jettag/class_sets/<name>.yaml, or a user's YAML file named by the config's
`class_set`) lists its classes as atlas-ftag-tools' flavours.yaml does: name, plot label,
the values of one truth variable that make the class (`label_values` of `label_variable`),
an optional one-hot branch, colour and category; then the classes a model trains on by
default and the default discriminants (a signal and its background fractions). Built in:
`ftag` (b, c, light, tau: HadronConeExclTruthLabelID), `xbb` (hbb, hcc, top, qcd:
R10TruthLabel_R22v1) and `jetclass` (JetClass's ten classes, one-hot labels).

Every module that needs a class's label values, its probability column, its colour or the
classes' order takes it from a ClassSet; no evaluation or plotting code names a flavour.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from jettag.errors import InputError

BUILT_IN_CLASS_SETS = ("ftag", "xbb", "jetclass")
FRACTION_TOLERANCE = 1e-6  # background fractions of a discriminant must add up to 1


@dataclasses.dataclass(frozen=True)
class LabelClass:
    """One class: its name, plot label, truth-label values, one-hot branch and style."""

    name: str  # class name in configs and files ("b", "hbb", "QCD")
    label: str  # legend text of jets of this class
    label_values: tuple[int, ...]  # values of the class set's label_variable
    colour: str
    category: str
    one_hot: str | None = None  # the one-hot branch of files that flag classes (JetClass)
    probability: str = ""  # puma's column suffix; "p" + name when not given

    @property
    def probability_suffix(self) -> str:
        """The predictions column suffix, e.g. 'pb', 'pu' (light), 'pQCD'."""
        return self.probability or f"p{self.name}"


@dataclasses.dataclass(frozen=True)
class ClassSet:
    """A set of classes with one truth variable, default training classes and discriminants."""

    name: str  # a built-in name or the YAML file's path
    description: str
    label_variable: str  # the jets field (canonical files) holding the truth label
    classes: dict[str, LabelClass]  # in listing order
    train_classes: tuple[str, ...]
    discriminants: dict[str, dict[str, float]]  # signal -> {background: fraction}
    lifetime_check_class: str | None = None  # tracks must skew to positive signed sd0

    def __getitem__(self, name: str) -> LabelClass:
        """The class called name; a KeyError that lists the set's classes otherwise."""
        try:
            return self.classes[name]
        except KeyError:
            raise KeyError(
                f"'{name}' is not a class of class set '{self.name}' ({list(self.classes)})"
            ) from None

    def label_values(self) -> dict[str, tuple[int, ...]]:
        """Class name -> the label_variable values that make it."""
        return {name: c.label_values for name, c in self.classes.items()}

    def canonical_value(self, name: str) -> int:
        """The label_variable value ingest writes for a class (its first value)."""
        return self[name].label_values[0]


def _class_set_text(name_or_path: str) -> tuple[str, str]:
    """(text, where) of a built-in class set or a YAML file."""
    if name_or_path in BUILT_IN_CLASS_SETS:
        text = resources.files("jettag").joinpath(f"class_sets/{name_or_path}.yaml").read_text()
        return text, f"class set '{name_or_path}'"
    path = Path(name_or_path)
    if not path.is_file():
        raise InputError(
            f"class_set '{name_or_path}' is neither a built-in class set"
            f" {list(BUILT_IN_CLASS_SETS)} nor a YAML file"
        )
    return path.read_text(), str(path)


@functools.cache
def load_class_set(name_or_path: str) -> ClassSet:
    """Read and check a class set (built-in name or YAML path); errors name the file and key."""
    text, where = _class_set_text(name_or_path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise InputError(f"{where}: not valid YAML ({err})") from err
    return class_set_from_dict(raw, name_or_path, where)


def class_set_from_dict(raw: Any, set_name: str, where: str) -> ClassSet:
    """A ClassSet from its YAML form, checked: every problem is an InputError naming the key."""

    def fail(message: str) -> InputError:
        return InputError(f"{where}: {message}")

    if not isinstance(raw, Mapping):
        raise fail("expected a mapping with label_variable, classes, discriminants")
    unknown = set(raw) - {"description", "label_variable", "train_classes", "classes",
                          "discriminants", "lifetime_check_class"}  # fmt: skip
    if unknown:
        raise fail(f"unknown keys {sorted(unknown)}")
    for key in ("label_variable", "classes"):
        if key not in raw:
            raise fail(f"missing '{key}'")
    if not isinstance(raw["label_variable"], str) or not raw["label_variable"].isidentifier():
        raise fail(f"label_variable must be a field name, got {raw['label_variable']!r}")
    classes: dict[str, LabelClass] = {}
    seen_values: dict[int, str] = {}
    fields = {f.name for f in dataclasses.fields(LabelClass)} | {"label_values"}
    for k, entry in enumerate(raw["classes"] or []):
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise fail(f"classes[{k}] must be a mapping with a name")
        name = str(entry["name"])
        extra = set(entry) - fields
        if extra:
            raise fail(f"classes[{k}] ({name}): unknown keys {sorted(extra)}")
        values = entry.get("label_values")
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise fail(f"classes[{k}] ({name}): label_values must be a list of integers")
        if name in classes:
            raise fail(f"class '{name}' is listed twice")
        for value in values:
            if value in seen_values:
                raise fail(
                    f"{raw['label_variable']} = {value} makes both '{seen_values[value]}' and"
                    f" '{name}'"
                )
            seen_values[value] = name
        classes[name] = LabelClass(
            name=name,
            label=str(entry.get("label", name)),
            label_values=tuple(values),
            colour=str(entry.get("colour", "black")),
            category=str(entry.get("category", "")),
            one_hot=entry.get("one_hot"),
            probability=str(entry.get("probability", "")),
        )
    if len(classes) < 2:
        raise fail("a class set needs at least two classes")
    train = tuple(raw.get("train_classes") or classes)
    discriminants = {
        str(signal): {str(b): float(f) for b, f in (fractions or {}).items()}
        for signal, fractions in (raw.get("discriminants") or {}).items()
    }
    if not discriminants:  # the first class against the others, equally weighted
        first, *others = train
        discriminants = {first: {b: 1.0 / len(others) for b in others}}
    check = raw.get("lifetime_check_class")
    for key, names in (
        ("train_classes", train),
        ("lifetime_check_class", [check] if check else []),
        *((f"discriminants.{s}", [s, *f]) for s, f in discriminants.items()),
    ):
        unknown = [n for n in names if n not in classes]
        if unknown:
            raise fail(f"{key}: {unknown} not among the classes {list(classes)}")
    for signal, fractions in discriminants.items():
        problem = fraction_problem(signal, fractions)
        if problem:
            raise fail(f"discriminants.{signal}: {problem}")
    return ClassSet(
        name=set_name,
        description=str(raw.get("description", set_name)),
        label_variable=raw["label_variable"],
        classes=classes,
        train_classes=train,
        discriminants=discriminants,
        lifetime_check_class=check,
    )


def fraction_problem(signal: str, fractions: Mapping[str, float]) -> str | None:
    """Why background fractions of a discriminant are not usable, or None."""
    if not fractions:
        return "no background fractions"
    if signal in fractions:
        return f"the signal '{signal}' is among its own backgrounds"
    if any(not math.isfinite(f) or f < 0 for f in fractions.values()):
        return f"fractions must be finite and >= 0, got {dict(fractions)}"
    total = math.fsum(fractions.values())
    if abs(total - 1.0) > FRACTION_TOLERANCE:
        return f"background fractions {dict(fractions)} add up to {total:g}, not 1"
    return None


FTAG = load_class_set("ftag")
# ATLAS's jet flavours: the generated sample's labels (simulate/), the default class set
FLAVOURS: dict[str, LabelClass] = FTAG.classes


def probability_column(tagger: str, name: str) -> str:
    """The predictions column of a tagger's probability of a class, e.g. 'dips_pu'.

    puma's names: `<tagger>_p<class>`, with a built-in class's own suffix ('pu' for light).
    """
    known = _builtin_class(name)
    return f"{tagger}_{known.probability_suffix if known else 'p' + name}"


def builtin_style(name: str) -> tuple[str, str] | None:
    """(colour, legend text) of a class of a built-in class set; None for other names."""
    known = _builtin_class(name)
    return (known.colour, known.label) if known else None


def _builtin_class(name: str) -> LabelClass | None:
    """The class of that name in the first built-in class set that has one."""
    for set_name in BUILT_IN_CLASS_SETS:
        known = load_class_set(set_name).classes.get(name)
        if known is not None:
            return known
    return None


# Truth origin of a track, as ATLAS's ftagTruthOriginLabel (-1: unknown or padding).
TRACK_ORIGINS: dict[int, str] = {
    0: "pile-up",
    1: "fake",
    2: "primary",
    3: "from B",
    4: "from B->C",
    5: "from C",
    6: "from tau",
    7: "other secondary",
}
