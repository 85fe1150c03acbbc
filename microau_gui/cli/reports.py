"""Writing the commands' JSON reports (`--json`, the `analyze` sidecar, `bench --out`).

Owns: `write_json` and `cpu_model` (the CPU a report was measured on). May import core.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

from microau_gui.core.errors import UserError
from microau_gui.core.files import write_atomically


def write_json(path: Path | str, payload: dict) -> None:
    """Write `payload` as indented JSON, renamed into place (never a half-written report);
    UserError naming the path when it cannot be written."""
    path = Path(path).expanduser()
    text = json.dumps(payload, indent=2) + "\n"
    try:
        write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}; choose another path") from None


def cpu_model() -> str:
    """The CPU's model name as lscpu shows it, for every report that states a figure."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
