"""Every stage of jettag, declared once (registry.py), in the module of its kind.

Importing this package registers all of them; nothing heavy is imported until a command
runs (each imports the library it calls inside its function).
"""

from jettag.commands import data, evaluation, plots, studies, training  # noqa: F401 (registers)
from jettag.commands.registry import (
    STAGES,
    Stage,
    settings_digest,
    settings_json,
    stage_params,
    stage_settings,
)

__all__ = ["STAGES", "Stage", "settings_digest", "settings_json", "stage_params",
           "stage_settings"]  # fmt: skip
