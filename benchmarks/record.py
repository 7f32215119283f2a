"""Writing a benchmark's JSON result with when, where and how it was measured."""

from __future__ import annotations

import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path


def write_result(path: Path, payload: dict) -> None:
    """Write payload as JSON, preceded by the date, the machine and the command line."""
    header = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "command": " ".join(sys.argv),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**header, **payload}, indent=2) + "\n")
