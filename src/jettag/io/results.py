"""Results files: the base of their dataclasses, and the classes of the results that a
network computes.

Each kind of results file (metrics, working points, efficiency vs pT, ...) has a dataclass
derived from Result, next to the code that computes it or, when that code needs torch, here:
the compute function returns it, the command writes it, and the plot stages read it back and
draw from it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import MappingProxyType
from typing import Self

from jettag.atomic import write_json
from jettag.errors import InputError


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


# The results of the stages that run a network (learning curve, learning-rate range test,
# saliency, importance, model-choice studies, transfer learning) and the ablation's, which
# the importance figure draws too: their classes sit here, free of torch, so that their plot
# stages never load it.


@dataclasses.dataclass
class LrRangeTest(Result):
    """results/lr_finder/<model>.json: loss vs learning rate over one growing-rate pass."""

    model: str
    min_lr: float
    max_lr: float
    batch_size: int
    configured_learning_rate: float
    steps_run: int
    stopped: str
    learning_rate: list[float]
    loss: list[float | None]
    smoothed_loss: list[float]
    suggested: dict[str, float]


@dataclasses.dataclass
class LearningCurve(Result):
    """results/learning_curve/<model>.json: training and validation loss vs training-set size."""

    model: str
    points: list[dict]  # train_jets, train_loss, val_loss, best_epoch, checkpoint
    data_dir: str


@dataclasses.dataclass
class SaliencyMaps(Result):
    """results/saliency/<model>.json: mean dD/d(input) per track and input of signal jets."""

    tagger: str
    checkpoint: str
    split_file: str
    discriminant: dict
    b_efficiency: float  # the working point (a signal efficiency)
    cut: float
    n_tracks: int
    track_order: str | None
    inputs: list[str]
    transforms: dict[str, str]
    n_b_jets: int
    n_jets: dict[str, int]
    maps: dict[str, list | None]  # passing, failing
    map_errors: dict[str, list | None]


@dataclasses.dataclass
class PermutationImportance(Result):
    """results/importance/<model>.json: rejections lost when each input group is shuffled."""

    tagger: str
    checkpoint: str
    split_file: str
    discriminant: dict
    b_efficiency: float  # the working point (a signal efficiency)
    seed: int
    repeats: int
    n_jets: dict[str, int]
    nominal: dict
    groups: dict[str, dict]

    @property
    def x_label(self) -> str:
        """What the bars of the importance figure measure."""
        return "Rejection lost when the input is shuffled [%]"


@dataclasses.dataclass
class AblationSummary(Result):
    """results/ablation/<model>.json: rejections lost by retraining without each input group."""

    tagger: str
    method: str
    x_label: str
    b_efficiency: float
    discriminant: dict
    rejection_limit_cl: float
    repeats: int
    nominal: dict
    groups: dict[str, dict]
    predictions: dict[str, str]


@dataclasses.dataclass
class StudySummary(Result):
    """results/studies/<study>.json: every point of a model-choice study (mean and spread over
    seeds)."""

    study: str
    model: str
    x: str
    x_label: str
    log_x: bool
    seeds: int
    split: str
    b_efficiency: float
    discriminant: dict
    target_val_loss: float | None
    target_source: str
    points: list[dict]


@dataclasses.dataclass
class TransferSummary(Result):
    """results/transfer/<model>.json: every transfer-learning run, and the pretrained model, on
    the target sample."""

    model: str
    target: str
    data_dir: str
    b_efficiency: float
    discriminant: dict
    rejection_limit_cl: float
    n_test_jets: dict[str, int]
    n_train_jets_available: int
    pretrained: dict
    points: dict[str, list[dict]]  # strategy -> one point per training size
    runs: list[dict]


def read_importance(path: Path) -> PermutationImportance | AblationSummary:
    """A permutation-importance or an ablation file (one bar figure draws both)."""
    data = read_results(path)
    kind = AblationSummary if "method" in data else PermutationImportance
    return kind.from_dict(data, str(path))
