"""Data stages: generation, ingestion, preparation and the histograms of what they wrote."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from jettag import config as cfg
from jettag import stages
from jettag.commands.registry import JobSettings, arg, command, path, paths

log = logging.getLogger("jettag")


@command("generate", "generate one shard of a sample", stages.generate,
         path("--output", "ROOT file to write"),
         sections={"sample": cfg.GenerationConfig, "simulation": cfg.SimulationConfig})  # fmt: skip
def generate(args: argparse.Namespace, settings: JobSettings) -> None:
    """Generate one shard of a sample with Pythia 8 + FastJet + the parametrised tracker."""
    from jettag.simulate.generate import generate_shard

    stats = generate_shard(args.sample, settings.sample, settings.simulation, settings.seed,
                           args.shard, args.output)  # fmt: skip
    log.info("generate %s/%d: %s", args.sample, args.shard, stats)


@command(
    "ingest", "ROOT/HDF5 inputs -> canonical HDF5", stages.ingest,
    path("--output"), paths("inputs", "ROOT or HDF5 files"),
    wildcard_help={"part": "the sample's part (input file or generated shard) a sharded ingest"
                           " writes; without it the inputs are all of the sample's files"},
    sections={"sample": cfg.ReadingConfig, "ingest": cfg.IngestConfig},
)  # fmt: skip
def ingest(args: argparse.Namespace, settings: JobSettings) -> None:
    """Convert a sample's ROOT/HDF5 files into the canonical HDF5 file."""
    from jettag.io.ingest import entries_before, ingest_sample

    earlier = getattr(settings, "earlier_files", [])  # a part of a sharded ingest only
    first_entry = entries_before(settings.sample, [Path(p) for p in earlier])
    stats = ingest_sample(settings.sample, args.inputs, settings.ingest, args.output,
                          args.sample, first_entry)  # fmt: skip
    part = "" if args.part is None else f" part {args.part}"
    log.info("ingest %s%s: %s", args.sample, part, stats)


@command(
    "prepare", "canonical HDF5 -> train/val/test, norm.yaml, weights.yaml", stages.prepare,
    paths("--input", "the ingested file, or the parts of a sharded ingest in order"),
    path("--output-dir"), sections={"prepare": cfg.PrepareConfig},
)  # fmt: skip
def prepare(args: argparse.Namespace, settings: JobSettings) -> None:
    """Split, derive, normalise and weight a dataset."""
    from jettag.features.prepare import prepare_dataset

    components = resample = None
    if "components" in settings.as_dict():
        components = [cfg.ComponentConfig(**c) for c in settings.components]
        if settings.resample is not None:
            resample = cfg.section(cfg.ResampleConfig, settings.resample)
    prepare_dataset(args.input, settings.prepare, settings.seed, args.output_dir,
                    settings.test_only_event_number, components, resample,
                    args.dataset)  # fmt: skip


@command(
    "sample-histograms", "validation histograms of a sample", stages.sample_histograms,
    paths("--input", "ingested (canonical) HDF5, or the parts of a sharded ingest"),
    path("--output", "JSON"),
)  # fmt: skip
def sample_histograms(args: argparse.Namespace, settings: JobSettings) -> None:
    """Per-class validation histograms of an ingested sample."""
    from jettag.evaluation.sample_histograms import sample_histograms

    result = sample_histograms(args.input, settings.classes, settings.label_variable)
    result.write(args.output)
    log.info("sample %s: jets %s, fractions %s", args.sample, result.n_jets,
             {k: round(v, 3) for k, v in result.fractions.items()})  # fmt: skip


@command(
    "input-histograms", "histograms of every model input", stages.input_histograms,
    path("--data-dir", "prepared dataset directory"),
    arg("--split", choices=["train", "val", "test"], default="train"),
    path("--output"),
)  # fmt: skip
def input_histograms(args: argparse.Namespace, settings: JobSettings) -> None:
    """Per-class histograms of every model input: raw, transformed, normalised, reweighted."""
    from jettag.evaluation.input_histograms import input_histograms

    input_histograms(args.data_dir, args.split).write(args.output)
