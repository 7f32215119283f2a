"""Atomic output: write to a temporary name beside the target, rename when complete.

A killed job then leaves either no output or a complete one, never a truncated file that
looks finished (Snakemake and analysts both trust existing files).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto target on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=suffix or f"{target.suffix}.tmp"
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(target: str | Path, text: str) -> None:
    """Atomically write a text file."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: str | Path, data: Any) -> None:
    """Atomically write JSON (indented, keys in insertion order)."""
    write_text(target, json.dumps(data, indent=2) + "\n")


def write_yaml(target: str | Path, data: Any) -> None:
    """Atomically write YAML."""
    write_text(target, yaml.safe_dump(data, sort_keys=False))
