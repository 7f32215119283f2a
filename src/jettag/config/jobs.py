"""Training jobs: every training of a model is a variant of one job, derived in one place.

A model's ensemble members, its random-search trials, its transfer-learning runs, its
ablation retrainings (without a feature group) and its learning-curve points (on fewer
training jets) all run `jettag train` on a model section made by
`training_job(config, model, variant)`. The Snakefile's rerun trigger and the command that
trains read the same section (jettag.stages), which holds only what training reads: no
legend label, and the ensemble size only where it sets the K folds.

A variant is written as text in commands and rules:
  member                        the model as configured (its members differ by seed)
  search/nominal, search/<k>    random-search trial k (or the model as configured) on the
                                search's training subset
  transfer/<strategy>/<jets>    transfer.model carried to transfer.target: scratch,
                                finetune or frozen, on the first <jets> target jets
  ablation/<group>              retrained without an evaluation.feature_groups group
  learning_curve/<jets>         trained on the first <jets> training jets
  study/<study>/<point>         one point of a model-choice study (studies.<study>.points)
  snapshot/<name>               the one training of snapshot ensemble snapshot_ensembles.<name>:
                                the model on a cosine_restarts schedule, a member saved per cycle
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np

from jettag.config.schema import schema_errors
from jettag.errors import ConfigError

VARIANT_KINDS = ("member", "search", "transfer", "ablation", "learning_curve", "study", "snapshot")
TRANSFER_STRATEGIES = ("scratch", "finetune", "frozen")
NOMINAL = "nominal"
SEARCH_SALT = 0x5EA2C4  # trials' random streams, apart from every other seed use
# Keys of model, baseline and sample sections that only presentation reads.
PRESENTATION_KEYS = ("label",)


@dataclasses.dataclass(frozen=True)
class TrainingVariant:
    """Which training of a model a job is (see the module docstring for the text forms)."""

    kind: str = "member"
    trial: int | None = None  # search: None is the model as configured ('nominal')
    strategy: str | None = None  # transfer
    train_jets: int | None = None  # transfer, learning_curve
    group: str | None = None  # ablation
    study: str | None = None  # study
    point: str | None = None  # study
    ensemble: str | None = None  # snapshot: the snapshot_ensembles entry

    def __str__(self) -> str:
        if self.kind == "search":
            return f"search/{NOMINAL if self.trial is None else self.trial}"
        if self.kind == "transfer":
            return f"transfer/{self.strategy}/{self.train_jets}"
        if self.kind == "ablation":
            return f"ablation/{self.group}"
        if self.kind == "learning_curve":
            return f"learning_curve/{self.train_jets}"
        if self.kind == "study":
            return f"study/{self.study}/{self.point}"
        if self.kind == "snapshot":
            return f"snapshot/{self.ensemble}"
        return "member"

    @property
    def needs_pretrained(self) -> bool:
        """Whether the job starts from a pretrained model (transfer: finetune, frozen)."""
        return self.kind == "transfer" and self.strategy != "scratch"

    @property
    def freezes_track_encoder(self) -> bool:
        """Whether only what follows the per-track network is trained (transfer: frozen)."""
        return self.kind == "transfer" and self.strategy == "frozen"

    @property
    def saves_snapshots(self) -> bool:
        """Whether the job writes a snapshot per cosine_restarts cycle (snapshot ensembles)."""
        return self.kind == "snapshot"


def parse_variant(text: str) -> TrainingVariant:
    """A TrainingVariant from its text form; an unknown or malformed one is a ConfigError."""
    kind, _, rest = text.partition("/")
    parts = rest.split("/") if rest else []

    def number(value: str) -> int:
        if not value.isdigit() or int(value) < 1:
            raise ConfigError(f"training variant '{text}': '{value}' is not a positive integer")
        return int(value)

    if text == "member":
        return TrainingVariant()
    if kind == "search" and len(parts) == 1:
        trial = parts[0]
        if trial != NOMINAL and not trial.isdigit():
            raise ConfigError(f"training variant '{text}': trial must be '{NOMINAL}' or a number")
        return TrainingVariant("search", trial=None if trial == NOMINAL else int(trial))
    if kind == "transfer" and len(parts) == 2:
        if parts[0] not in TRANSFER_STRATEGIES:
            raise ConfigError(
                f"training variant '{text}': strategy '{parts[0]}' is not one of"
                f" {TRANSFER_STRATEGIES}"
            )
        return TrainingVariant("transfer", strategy=parts[0], train_jets=number(parts[1]))
    if kind == "ablation" and len(parts) == 1 and parts[0]:
        return TrainingVariant("ablation", group=parts[0])
    if kind == "learning_curve" and len(parts) == 1:
        return TrainingVariant("learning_curve", train_jets=number(parts[0]))
    if kind == "study" and len(parts) == 2 and all(parts):
        return TrainingVariant("study", study=parts[0], point=parts[1])
    if kind == "snapshot" and len(parts) == 1 and parts[0]:
        return TrainingVariant("snapshot", ensemble=parts[0])
    raise ConfigError(
        f"training variant '{text}' is not one of: member, search/nominal, search/<trial>,"
        " transfer/<scratch|finetune|frozen>/<jets>, ablation/<group>, learning_curve/<jets>,"
        " study/<study>/<point>, snapshot/<name>"
    )


def without_presentation(section: dict[str, Any]) -> dict[str, Any]:
    """A copy of a model, baseline or sample section without the keys only plots read."""
    return {k: copy.deepcopy(v) for k, v in section.items() if k not in PRESENTATION_KEYS}


def run_name(model: str, variant: TrainingVariant) -> str:
    """The name a job's random seed is drawn from (transfer runs have their own streams)."""
    return f"{model}_transfer" if variant.kind == "transfer" else model


def member_count(config: dict[str, Any], model: str, variant: TrainingVariant) -> int:
    """How many members (seeds) a variant has: the ensemble, the transfer seeds, else one."""
    if variant.kind == "member":
        return config["models"][model]["members"]
    if variant.kind == "transfer":
        return config["transfer"]["seeds"]
    if variant.kind == "study":
        return config["studies"][variant.study]["seeds"]
    # search trials, ablation and learning-curve points and the snapshot training share
    # member 0's seed
    return 1


def training_job(config: dict[str, Any], model: str, variant: TrainingVariant) -> dict[str, Any]:
    """The model section one training job reads, for any variant of a model's training."""
    if model not in config["models"]:
        raise ConfigError(f"model '{model}' is not in the config (have {sorted(config['models'])})")
    if variant.kind == "search":
        section = _search_job(config, model, variant.trial)
    elif variant.kind == "transfer":
        section = _transfer_job(config, model, variant)
    elif variant.kind == "study":
        section = _study_job(config, model, variant)
    elif variant.kind == "snapshot":
        section = _snapshot_job(config, model, variant.ensemble)
    else:
        section = copy.deepcopy(config["models"][model])
        if variant.kind == "ablation":
            section["track_inputs"] = list(_inputs_without(config, model, variant.group))
        elif variant.kind == "learning_curve":
            section["training"]["max_train_jets"] = variant.train_jets
            epochs = config["evaluation"]["learning_curve"]["epochs"]
            if epochs is not None:
                section["training"]["epochs"] = epochs
        elif variant.kind != "member":
            raise ConfigError(f"unknown training variant kind '{variant.kind}'")
    section.pop("test_datasets", None)  # where the model is scored, not how it is trained
    if not section["kfold"]:
        section["members"] = 1  # the ensemble size sets only the K folds: more members retrain none
    if variant.kind != "member":
        section["training"]["processes"] = 1  # one process: torchrun launches members only
    return without_presentation(section)


def _search_job(config: dict[str, Any], model: str, trial: int | None) -> dict[str, Any]:
    """A random-search trial of the searched model (None: the model as configured)."""
    search = config["search"]
    if search["model"] != model:
        raise ConfigError(f"search trial of '{model}': search.model is {search['model']!r}")
    if trial is not None and not 0 <= trial < search["trials"]:
        raise ConfigError(f"search trial {trial} outside 0..{search['trials'] - 1}")
    return trial_section(config, trial)


def _transfer_job(config: dict[str, Any], model: str, variant: TrainingVariant) -> dict[str, Any]:
    """A transfer-learning run of transfer.model onto transfer.target."""
    transfer = config["transfer"]
    if transfer["model"] != model:
        raise ConfigError(f"transfer run of '{model}': transfer.model is {transfer['model']!r}")
    return transfer_section(config, variant.strategy, variant.train_jets)


def _study_job(config: dict[str, Any], model: str, variant: TrainingVariant) -> dict[str, Any]:
    """One point of a model-choice study."""
    study = config["studies"].get(variant.study)
    if study is None:
        raise ConfigError(
            f"study '{variant.study}' is not in studies ({sorted(config['studies'])})"
        )
    if study["model"] != model:
        raise ConfigError(f"study '{variant.study}' scans '{study['model']}', not '{model}'")
    return study_section(config, variant.study, variant.point)


def _snapshot_job(config: dict[str, Any], model: str, name: str) -> dict[str, Any]:
    """The training of a snapshot ensemble."""
    ensemble = config["snapshot_ensembles"].get(name)
    if ensemble is None:
        raise ConfigError(
            f"snapshot ensemble '{name}' is not in snapshot_ensembles"
            f" ({sorted(config['snapshot_ensembles'])})"
        )
    if ensemble["model"] != model:
        raise ConfigError(f"snapshot ensemble '{name}' trains '{ensemble['model']}', not '{model}'")
    return snapshot_section(config, name)


def snapshot_section(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The model section of a snapshot ensemble's training: the model's, on cosine_restarts.

    The schedule keeps the model's warm-up and minimum factor; `set` may change any key
    after that (but a schedule other than cosine_restarts is refused by the config check).
    """
    ensemble = config["snapshot_ensembles"][name]
    section = copy.deepcopy(config["models"][ensemble["model"]])
    training = section["training"]
    training["schedule"] = {**training["schedule"], "name": "cosine_restarts",
                            "cycles": ensemble["cycles"]}  # fmt: skip
    if ensemble["epochs"] is not None:
        training["epochs"] = ensemble["epochs"]
    section = with_params(section, ensemble["set"])
    section.update(members=1, kfold=False)  # one training; its members are its snapshots
    return section


def study_point(study: dict[str, Any], name: str) -> dict[str, Any]:
    """A study's point by name."""
    for point in study["points"]:
        if point["name"] == name:
            return point
    raise ConfigError(f"study point '{name}' is not one of {[p['name'] for p in study['points']]}")


def study_section(config: dict[str, Any], study_name: str, point_name: str) -> dict[str, Any]:
    """The model section of one study point: the model's, changed as the point says."""
    study = config["studies"][study_name]
    point = study_point(study, point_name)
    section = with_params(config["models"][study["model"]], point["set"])
    for key in ("max_train_jets", "epochs"):
        if study[key] is not None:
            section["training"][key] = study[key]
    return section


def _inputs_without(config: dict[str, Any], model: str, group: str) -> tuple[str, ...]:
    """A model's track inputs less those of one feature group (ablation)."""
    groups = feature_groups(config, model)
    if group not in groups:
        raise ConfigError(f"ablation group '{group}' is not one of {sorted(groups)}")
    kept = tuple(n for n in model_track_inputs(config, model) if n not in groups[group])
    if not kept:
        raise ConfigError(f"removing '{group}' leaves {model} with no track inputs")
    return kept


def model_track_inputs(config: dict[str, Any], model: str) -> tuple[str, ...]:
    """The track inputs a model reads: its own list, else every prepared track input."""
    chosen = config["models"][model].get("track_inputs")
    return tuple(chosen or (t["name"] for t in config["prepare"]["track_inputs"]))


def feature_groups(config: dict[str, Any], model: str) -> dict[str, tuple[str, ...]]:
    """The feature groups of a model's track inputs: configured ones, else one per input."""
    inputs = model_track_inputs(config, model)
    groups = config["evaluation"]["feature_groups"] or {name: [name] for name in inputs}
    return {
        name: tuple(v for v in members if v in inputs)
        for name, members in groups.items()
        if any(v in inputs for v in members)
    }


def sample_trial(seed: int, search: dict[str, Any], trial: int) -> dict[str, Any]:
    """The hyper-parameters of one search trial, drawn from search.space (seeded per trial)."""
    rng = np.random.default_rng([seed, SEARCH_SALT, trial])
    params: dict[str, Any] = {}
    for path in sorted(search["space"]):
        ((kind, values),) = search["space"][path].items()
        if kind == "log_uniform":
            params[path] = float(np.exp(rng.uniform(np.log(values[0]), np.log(values[1]))))
        elif kind == "uniform":
            params[path] = float(rng.uniform(values[0], values[1]))
        else:
            params[path] = copy.deepcopy(values[int(rng.integers(len(values)))])
    return params


def with_params(section: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A copy of a model section with dotted paths ('training.learning_rate') set."""
    section = copy.deepcopy(section)
    for path, value in params.items():
        *parents, leaf = path.split(".")
        node = section
        for key in parents:
            if not isinstance(node.get(key), dict):
                raise ConfigError(f"'{path}' is not a path in a model section")
            node = node[key]
        node[leaf] = value
    return section


def trial_section(config: dict[str, Any], trial: int | None) -> dict[str, Any]:
    """The model section of a search trial (None: the model as configured) on the search subset."""
    search = config["search"]
    params = sample_trial(config["seed"], search, trial) if trial is not None else {}
    section = with_params(config["models"][search["model"]], params)
    section["training"]["max_train_jets"] = search["max_train_jets"]
    if search["epochs"] is not None:
        section["training"]["epochs"] = search["epochs"]
    return section


def transfer_section(config: dict[str, Any], strategy: str, train_jets: int) -> dict[str, Any]:
    """The model section of one transfer-learning job: the pretrained model's, on the target."""
    transfer = config["transfer"]
    if strategy not in TRANSFER_STRATEGIES:
        raise ConfigError(f"transfer strategy '{strategy}' is not one of {TRANSFER_STRATEGIES}")
    section = copy.deepcopy(config["models"][transfer["model"]])
    section.update(dataset=transfer["target"], members=1, kfold=False)
    training = section["training"]
    training.update(
        max_train_jets=train_jets, batch_size=transfer["batch_size"], epochs=transfer["epochs"],
        patience=transfer["patience"],
    )  # fmt: skip
    if strategy == "finetune":
        training["learning_rate"] = transfer["finetune_learning_rate"]
    elif transfer["learning_rate"] is not None:
        training["learning_rate"] = transfer["learning_rate"]
    return section


def check_training_jobs(config: dict[str, Any], source: str) -> None:
    """The searched and transferred models exist and every derived section is valid."""
    _check_search(config, source)
    _check_transfer(config, source)
    _check_studies(config, source)
    _check_snapshot_ensembles(config, source)
    for name, model in config["models"].items():
        check_schedule(model["training"]["schedule"], f"{source}: models.{name}")


def check_schedule(schedule: dict[str, Any], where: str) -> None:
    """training.schedule.cycles is given with cosine_restarts, and only there."""
    if schedule["name"] == "cosine_restarts" and "cycles" not in schedule:
        raise ConfigError(f"{where}.training.schedule.cycles is required with cosine_restarts")
    if schedule["name"] != "cosine_restarts" and "cycles" in schedule:
        raise ConfigError(
            f"{where}.training.schedule.cycles is for cosine_restarts, not '{schedule['name']}'"
        )


def _check_snapshot_ensembles(config: dict[str, Any], source: str) -> None:
    """Each snapshot ensemble compares the deep ensemble (not K-fold) of an existing model,
    and its training section is valid and on cosine_restarts."""
    for name, ensemble in config["snapshot_ensembles"].items():
        where = f"{source}: snapshot_ensembles.{name}"
        model = config["models"].get(ensemble["model"])
        if model is None:
            raise ConfigError(
                f"{where}.model '{ensemble['model']}' is not a model ({sorted(config['models'])})"
            )
        if model["kfold"]:
            raise ConfigError(
                f"{where}: models.{ensemble['model']} has kfold true; its members train on"
                " different splits, so compare a snapshot ensemble with a plain deep ensemble"
            )
        try:
            section = snapshot_section(config, name)
        except ConfigError as err:
            raise ConfigError(f"{where}.set: {err}") from None
        schedule = section["training"]["schedule"]
        if schedule["name"] != "cosine_restarts" or schedule["cycles"] != ensemble["cycles"]:
            raise ConfigError(
                f"{where}.set: the schedule of a snapshot ensemble is cosine_restarts with"
                f" `cycles` cycles (set its other keys, e.g. training.schedule.min_lr_factor)"
            )
        _check_derived(config, ensemble["model"], section, where)


def _check_derived(config: dict[str, Any], model: str, section: dict, source: str) -> None:
    """A derived model section must pass the schema as the model's own would."""
    patched = {**config, "models": {**config["models"], model: section}}
    errors = schema_errors(patched, source)
    if errors:
        raise ConfigError("\n".join(errors))


def _check_search(config: dict[str, Any], source: str) -> None:
    """The searched model exists and every trial's sampled section is a valid model section."""
    model = config["search"]["model"]
    if model is None:
        return
    if model not in config["models"]:
        raise ConfigError(
            f"{source}: search.model '{model}' is not a model ({sorted(config['models'])})"
        )
    for trial in range(config["search"]["trials"]):
        section = trial_section(config, trial)
        _check_derived(config, model, section, f"{source} (search trial {trial})")


def _check_transfer(config: dict[str, Any], source: str) -> None:
    """The transferred model and target exist, and every job's model section is valid."""
    transfer = config["transfer"]
    if transfer["model"] is None:
        return
    if transfer["model"] not in config["models"]:
        raise ConfigError(
            f"{source}: transfer.model '{transfer['model']}' is not a model"
            f" ({sorted(config['models'])})"
        )
    if transfer["target"] not in config["samples"]:
        raise ConfigError(
            f"{source}: transfer.target '{transfer['target']}' is not a sample"
            f" ({sorted(config['samples'])})"
        )
    if min(transfer["train_jets"]) < transfer["batch_size"]:
        raise ConfigError(
            f"{source}: transfer.train_jets {min(transfer['train_jets'])} is smaller than one"
            f" batch (transfer.batch_size {transfer['batch_size']})"
        )
    for strategy in transfer["strategies"]:
        section = transfer_section(config, strategy, min(transfer["train_jets"]))
        _check_derived(config, transfer["model"], section, f"{source} (transfer {strategy})")


def _check_studies(config: dict[str, Any], source: str) -> None:
    """Each study's model exists, its point names are unique and every point is valid."""
    for name, study in config["studies"].items():
        where = f"{source}: studies.{name}"
        if study["model"] not in config["models"]:
            raise ConfigError(
                f"{where}.model '{study['model']}' is not a model ({sorted(config['models'])})"
            )
        names = [p["name"] for p in study["points"]]
        if len(set(names)) != len(names):
            raise ConfigError(f"{where}.points: duplicate names {names}")
        x = study["x"]
        for point in study["points"]:
            try:
                section = study_section(config, name, point["name"])
            except ConfigError as err:
                raise ConfigError(f"{where}.points.{point['name']}: {err}") from None
            _check_derived(config, study["model"], section, f"{where}.points.{point['name']}")
            if x not in ("point", "parameters") and x not in point["set"]:
                raise ConfigError(f"{where}.x is '{x}', which point '{point['name']}' does not set")
