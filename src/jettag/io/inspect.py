"""Checks of a config against its input files before any job runs (names and types only).

`jettag check-config` and the Snakefile call `check_input_files`: each file of a sample read
from ROOT/HDF5 is opened for its schema, every missing field is reported at once with the
config key to set, and model inputs or auxiliary tasks that a sample cannot provide are
errors naming the key to remove (never a constant input, never a NaN loss column).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from jettag import config as cfg
from jettag.errors import ConfigError, InputError

if TYPE_CHECKING:
    from jettag.io.readers import SampleLayout


def sample_layouts(config: dict[str, Any], name: str) -> dict[str, SampleLayout]:
    """The layout of each existing input file of a file-based sample (none if generated)."""
    sample = cfg.sample_config(config, name)
    if sample.source == "generate":
        return {}
    from jettag.io.readers import sample_layout  # uproot and awkward: only for file samples

    reading = cfg.section(cfg.ReadingConfig, cfg.reading_settings(config, name))
    return {path: sample_layout(Path(path), reading, name) for path in sample.files
            if Path(path).exists()}  # fmt: skip


def check_input_files(config: dict[str, Any]) -> dict[str, dict[str, SampleLayout]]:
    """Every file-based sample's layouts; raise one error listing every problem found."""
    problems, layouts = [], {}
    for name in config["samples"]:
        try:
            layouts[name] = sample_layouts(config, name)
        except InputError as err:
            problems.append(str(err))
            continue
        absent = set().union(*(set(lay.plan.absent) for lay in layouts[name].values()))
        problems += _unprovided_inputs(config, name, absent)
    if problems:
        raise ConfigError("\n".join(problems))
    return layouts


def _unprovided_inputs(config: dict[str, Any], sample: str, absent: set[str]) -> list[str]:
    """Errors for prepare inputs and model tasks that need a field the sample lacks."""
    problems = []
    users = [m for m, section in config["models"].items() if section["dataset"] == sample]
    transfer = config["transfer"]
    if transfer["model"] is not None and transfer["target"] == sample:
        users.append(transfer["model"])
    if not users:
        return problems
    for group, prefix in (("track_inputs", "trk_"), ("jet_inputs", "jet_")):
        names = [i["name"] for i in config["prepare"][group]]
        missing = [n for n in names if f"{prefix}{n}" in absent]
        if missing:
            problems.append(
                f"prepare.{group} {missing}: sample '{sample}' does not provide them (not in its"
                f" files, not derivable); remove them from prepare.{group}, or map their"
                f" branches in samples.{sample}.branches"
            )
    if "trk_ftagTruthOriginLabel" in absent:
        for model in users:
            if config["models"][model]["training"]["track_origin_weight"] > 0:
                problems.append(
                    f"models.{model}.training.track_origin_weight > 0 needs track truth origins,"
                    f" which sample '{sample}' does not provide: set it to 0, or map"
                    f" samples.{sample}.branches.trk_ftagTruthOriginLabel"
                )
    return problems


def config_report(config: dict[str, Any]) -> str:
    """A validated config as YAML with every default, then what each input file provides.

    For samples read from files, the fields each file provides follow as YAML comments: what
    is read (with units), derived (and from what) and absent. The files are checked first:
    a sample that cannot be read raises before anything is written.
    """
    import yaml

    layouts = check_input_files(config)
    lines = [yaml.safe_dump(config, sort_keys=False)]
    for name, files in layouts.items():
        sample = cfg.section(cfg.ReadingConfig, cfg.reading_settings(config, name))
        for path, layout in files.items():
            lines.append(f"# sample {name}, {path}:\n")
            lines.extend(f"#   {line}\n" for line in layout.describe(sample))
    return "".join(lines)
