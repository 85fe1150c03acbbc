"""The start-up race's winner, remembered per model version and machine.

Owns: `memory_file`, `machine_signature`, `memory_key`, `recall_mode`, `remember_mode`,
`MEMORY_ENV`. May import core and inference.speed (no torch model code, no Qt, no store).

Why: the predictions cache keeps each row's numeric class (fp32, int8, bf16, openvino-bf16;
`store.predictions`), and an analysis takes only rows of its own class. The "auto" race is timed,
so on a busy machine two starts of one model can pick different approximate modes, and the
second then finds none of the first one's cached rows (a rolled-back model was recomputed from
scratch). So the first race's winner is written down and later "auto" starts of the same model
version, on the same machine, at the same batch size, use it without racing: one machine keeps
one arithmetic per model, and CLI and window find each other's rows. An explicit `--speed`
is never affected; `bench` races afresh (its model section races directly, and its analyze
runs get a memory file of their own in the bench's work folder). Deleting the file (or setting `MICROAU_SPEED_MEMORY`
to another path) makes the next start race again.

The machine signature is what decides which modes are fast and exact here: CPU model and flags
(from /proc/cpuinfo where it exists), the CPU cores this process may use (`core.cores`: under
taskset, one core races differently from two), torch version and the modes this install offers. A corrupt or foreign file is ignored (and replaced on the next write), never an error:
it only saves a race.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

import torch
from pydantic import TypeAdapter, ValidationError

from microau_gui.core.cores import usable_cores
from microau_gui.core.files import write_atomically
from microau_gui.core.paths import cache_dir
from microau_gui.inference.speed import SPEED_MODES, supported_modes

MEMORY_ENV = "MICROAU_SPEED_MEMORY"
_MAX_ENTRIES = 256  # a bound on the file: the oldest entries go first


def memory_file() -> Path:
    """`$MICROAU_SPEED_MEMORY`, else `$XDG_CACHE_HOME/microau_studio/speed/choices.json`."""
    override = os.environ.get(MEMORY_ENV)
    return Path(override) if override else cache_dir("speed") / "choices.json"


def _cpu_description() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            lines = [line for line in handle if line.startswith(("model name", "flags"))]
        return "".join(sorted(set(lines)))  # one line each: the cores repeat them
    except OSError:
        return platform.processor() or platform.machine()


def machine_signature(device: torch.device | str) -> str:
    """A short digest of what decides the race on this machine for `device`."""
    device = torch.device(device)
    parts = [_cpu_description(), str(usable_cores()), torch.__version__, device.type,
             ",".join(supported_modes(device))]
    if device.type == "cuda":
        parts.append(torch.cuda.get_device_name(device))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def memory_key(model_version: str, device: torch.device | str, batch_size: int) -> str:
    return f"{model_version}|{machine_signature(device)}|batch {int(batch_size)}"


_ENTRIES = TypeAdapter(dict[str, str])  # the file's schema: a damaged one is read as empty


def _read() -> dict[str, str]:
    try:
        data = _ENTRIES.validate_json(memory_file().read_bytes())
    except (OSError, ValidationError):
        return {}
    return {k: v for k, v in data.items() if v in SPEED_MODES}


def recall_mode(key: str) -> str | None:
    """The mode an earlier race chose for `key`, or None."""
    return _read().get(key)


def remember_mode(key: str, mode: str) -> None:
    """Write `mode` down for `key` (atomic replace; two writers at once lose one entry at worst,
    which only costs a race). A cache folder that cannot be written is ignored."""
    entries = _read()
    entries.pop(key, None)
    entries[key] = mode
    kept = dict(list(entries.items())[-_MAX_ENTRIES:])
    try:
        memory_file().parent.mkdir(parents=True, exist_ok=True)
        write_atomically(memory_file(), lambda tmp: tmp.write_text(json.dumps(kept, indent=1),
                                                                   encoding="utf-8"))
    except OSError:
        pass
