"""Writing the commands' JSON reports (`--json`, the `analyze` sidecar, `bench --out`).

Owns: `write_json`. May import core.
"""

from __future__ import annotations

import json
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
