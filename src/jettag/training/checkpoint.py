"""Checkpoints: plain tensors and builtins only, written atomically, read with weights_only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from jettag.atomic import atomic_path


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically (a kill mid-write leaves the previous one intact)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint without unpickling arbitrary objects; a crafted pickle is refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a loadable jettag checkpoint ({err})") from err
