"""Atomic output: write to a temporary name beside the target, rename when complete.

A killed job then leaves either no output or a complete one, never a truncated file that
looks finished (Snakemake and analysts both trust existing files). Temporary names are
hidden (`.<target>.<random><suffix>`, the suffix ending in `.tmp` or `.tmp.<format>`); an
exception (SIGTERM included, see jettag.cli) removes them, and the temporaries that a
SIGKILL leaves behind are removed when the same target is next written.
"""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import yaml

_UMASK = os.umask(0o022)  # reading the umask means setting it: read once, put it back
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto target on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix or f"{target.suffix}.tmp"
    started = time.time()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; an output is as readable as any
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    _remove_stale_temporaries(target, suffix, started)


def temporaries(target: str | Path, suffix: str | None = None) -> list[Path]:
    """Temporary files of atomic_path(target, suffix) that exist now (a writer's or a kill's)."""
    target = Path(target)
    pattern = f".{glob.escape(target.name)}.*{glob.escape(suffix or f'{target.suffix}.tmp')}"
    return sorted(target.parent.glob(pattern))


def _remove_stale_temporaries(target: Path, suffix: str, started: float) -> None:
    """Delete temporaries of target that no writer touched since before this write began.

    Only a killed writer leaves one behind (one job writes a target at a time); their
    mtime is older than the start of the write that has just completed.
    """
    for path in temporaries(target, suffix):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < started:
                path.unlink()


def write_text(target: str | Path, text: str) -> None:
    """Atomically write a text file."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: str | Path, data: Any) -> None:
    """Atomically write standard JSON (indented, keys in order; inf and NaN become null)."""
    write_text(target, json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")


def json_safe(value: Any) -> Any:
    """Replace inf/NaN by None ('no value', honestly) and numpy scalars by Python ones."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_yaml(target: str | Path, data: Any) -> None:
    """Atomically write YAML."""
    write_text(target, yaml.safe_dump(data, sort_keys=False))
