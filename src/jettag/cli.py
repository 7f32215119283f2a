"""`jettag <stage> ...`: one thin command per pipeline stage, explicit inputs and outputs.

Every Snakemake rule runs one of these; `snakemake -p` prints the exact line to rerun a
stage by hand. The stages are declared once, in jettag.commands: this module builds the
parser from that registry, loads and validates the config, hands a stage only the settings
it reads (the same mapping the rule's params hold) and turns errors and SIGTERM into exit
codes. It imports neither torch nor the stages' libraries at load time: each command
imports what it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from jettag import config as cfg
from jettag.commands import STAGES, settings_digest
from jettag.errors import ConfigError, InputError, TrainingInterruptedError
from jettag.signals import on_sigterm, sigterm_deferred

log = logging.getLogger("jettag")


def check_config(config_path: Path) -> None:
    """Validate a config against the schema and the input files; print it with every default."""
    from jettag.io.inspect import config_report

    sys.stdout.write(config_report(cfg.load_config(config_path)))


def _parser() -> argparse.ArgumentParser:
    """The argument parser: check-config, then one sub-command per declared stage."""
    parser = argparse.ArgumentParser(prog="jettag", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="stage", required=True)
    help_text = "validate a config and print it with defaults"
    check = sub.add_parser("check-config", help=help_text, description=help_text)
    check.add_argument("--config", type=Path, required=True, help="analysis YAML config")
    check.set_defaults(stage_entry=None)
    kinds = ["data", "training", "evaluation", "studies", "plots"]  # the help lists them so
    for stage in sorted(
        STAGES.values(), key=lambda s: kinds.index(s.run.__module__.split(".")[-1])
    ):
        stage.add_parser(sub)
    return parser


class TerminatedError(BaseException):
    """SIGTERM arrived: unwind (a BaseException, so no `except Exception` swallows it)."""


_SIGTERM_SEEN = threading.Event()


def _raise_terminated(signum: int, frame: object) -> None:
    """SIGTERM handler: raise once, so that temporary outputs are removed on the way out."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup
    _SIGTERM_SEEN.set()
    raise TerminatedError(f"signal {signum}")


def _run(args: argparse.Namespace) -> None:
    """Load the config, take the stage's settings from it and run the stage."""
    stage = args.stage_entry
    if stage is None:
        check_config(args.config)
        return
    if stage.needs_torch:
        # a SIGTERM during torch's native initialisation would abort, not unwind
        with sigterm_deferred(), contextlib.suppress(ImportError):
            import torch  # noqa: F401
    settings = stage.settings_of(cfg.load_config(args.config), args)
    # the rule's params hold the same settings: the digest ties a log to them
    log.info("%s settings sha256:%s", args.stage, settings_digest(settings))
    stage.run(args, settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `jettag` command."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    start = time.perf_counter()
    _SIGTERM_SEEN.clear()
    try:
        # without a handler SIGTERM ends Python at once and leaves the temporaries of atomic
        # writes behind; raising unwinds and removes them (training installs its own flag)
        with on_sigterm(_raise_terminated):
            try:
                _run(args)
            except (ConfigError, InputError) as err:
                print(f"jettag {args.stage}: error: {err}", file=sys.stderr)
                return 2
            except TrainingInterruptedError as err:
                print(f"jettag {args.stage}: interrupted: {err}", file=sys.stderr)
                return 128 + signal.SIGTERM
    except BaseException as err:
        # extension code may turn the handler's exception into its own: pybind11 raises
        # "ImportError: initialization failed" when SIGTERM lands while pythia8mc is imported
        if not (isinstance(err, TerminatedError) or _SIGTERM_SEEN.is_set()):
            raise
        print(f"jettag {args.stage}: terminated by SIGTERM; no partial output is left,"
              " rerun the same command", file=sys.stderr)  # fmt: skip
        return 128 + signal.SIGTERM
    log.info("%s finished in %.1f s", args.stage, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
