"""Data stages: generation, ingestion, preparation and the histograms of what they wrote."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from jettag import config as cfg
from jettag import stages
from jettag.commands.registry import Settings, arg, command, path, paths

log = logging.getLogger("jettag")


@command("generate", "generate one shard of a sample", stages.generate,
         path("--output", "ROOT file to write"))  # fmt: skip
def generate(args: argparse.Namespace, settings: Settings) -> None:
    """Generate one shard of a sample with Pythia 8 + FastJet + the parametrised tracker."""
    from jettag.simulate.generate import generate_shard

    sample = cfg.section(cfg.GenerationConfig, settings["sample"])
    simulation = cfg.section(cfg.SimulationConfig, settings["simulation"])
    stats = generate_shard(args.sample, sample, simulation, settings["seed"], args.shard,
                           args.output)  # fmt: skip
    log.info("generate %s/%d: %s", args.sample, args.shard, stats)


@command(
    "ingest", "ROOT/HDF5 inputs -> canonical HDF5", stages.ingest,
    path("--output"), paths("inputs", "ROOT or HDF5 files"),
    wildcard_help={"part": "the sample's part (input file or generated shard) a sharded ingest"
                           " writes; without it the inputs are all of the sample's files"},
)  # fmt: skip
def ingest(args: argparse.Namespace, settings: Settings) -> None:
    """Convert a sample's ROOT/HDF5 files into the canonical HDF5 file."""
    from jettag.io.ingest import entries_before, ingest_sample

    sample = cfg.section(cfg.ReadingConfig, settings["sample"])
    ingest = cfg.section(cfg.IngestConfig, settings["ingest"])
    first_entry = entries_before(sample, [Path(p) for p in settings.get("earlier_files", [])])
    stats = ingest_sample(sample, args.inputs, ingest, args.output, args.sample, first_entry)
    part = "" if args.part is None else f" part {args.part}"
    log.info("ingest %s%s: %s", args.sample, part, stats)


@command(
    "prepare", "canonical HDF5 -> train/val/test, norm.yaml, weights.yaml", stages.prepare,
    paths("--input", "the ingested file, or the parts of a sharded ingest in order"),
    path("--output-dir"),
)  # fmt: skip
def prepare(args: argparse.Namespace, settings: Settings) -> None:
    """Split, derive, normalise and weight a dataset."""
    from jettag.features.prepare import prepare_dataset

    prepare = cfg.section(cfg.PrepareConfig, settings["prepare"])
    prepare_dataset(
        args.input, prepare, settings["seed"], args.output_dir, settings["test_only_event_number"]
    )


@command(
    "sample-histograms", "validation histograms of a sample", stages.sample_histograms,
    paths("--input", "ingested (canonical) HDF5, or the parts of a sharded ingest"),
    path("--output", "JSON"),
)  # fmt: skip
def sample_histograms(args: argparse.Namespace, settings: Settings) -> None:
    """Per-class validation histograms of an ingested sample."""
    from jettag.evaluation.sample_histograms import sample_histograms

    result = sample_histograms(args.input, settings["classes"], settings["label_variable"])
    result.write(args.output)
    log.info("sample %s: jets %s, fractions %s", args.sample, result.n_jets,
             {k: round(v, 3) for k, v in result.fractions.items()})  # fmt: skip


@command(
    "input-histograms", "histograms of every model input", stages.input_histograms,
    path("--data-dir", "prepared dataset directory"),
    arg("--split", choices=["train", "val", "test"], default="train"),
    path("--output"),
)  # fmt: skip
def input_histograms(args: argparse.Namespace, settings: Settings) -> None:
    """Per-class histograms of every model input: raw, transformed, normalised, reweighted."""
    from jettag.evaluation.input_histograms import input_histograms

    input_histograms(args.data_dir, args.split).write(args.output)
