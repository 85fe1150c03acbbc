"""Where the program keeps its files: the installation's weights, user data and caches.

Owns: `install_root`, `weights_dir`, `data_dir`, `cache_dir`, `proxy_dir`, `PROXY_DIR_ENV`.
Imports nothing of ours (standard library only).

User folders follow the XDG base-directory convention, read at call time so a test or a user
can point them elsewhere: data in `$XDG_DATA_HOME/microau_studio` (~/.local/share by default),
caches in `$XDG_CACHE_HOME/microau_studio/<kind>` (~/.cache by default). An empty variable
counts as unset, as the convention says. Seek proxies may be put elsewhere (a larger disk) with
`$MICROAU_PROXY_DIR`.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "microau_studio"
PROXY_DIR_ENV = "MICROAU_PROXY_DIR"


def _xdg(variable: str, default: Path) -> Path:
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser() if value else default


def install_root() -> Path:
    """The folder holding the package, `weights/` and `assets/` (a source checkout or an
    editable install)."""
    return Path(__file__).resolve().parent.parent.parent


def weights_dir() -> Path:
    """The installation's `weights/` folder (checkpoints and their model cards)."""
    return install_root() / "weights"


def data_dir() -> Path:
    """`$XDG_DATA_HOME/microau_studio`: projects made for media opened directly, the demo copy."""
    return _xdg("XDG_DATA_HOME", Path.home() / ".local" / "share") / APP_NAME


def cache_dir(kind: str) -> Path:
    """`$XDG_CACHE_HOME/microau_studio/<kind>` ("pairs", "tokens", "proxies" ...)."""
    return _xdg("XDG_CACHE_HOME", Path.home() / ".cache") / APP_NAME / kind


def proxy_dir() -> Path:
    """Where seek proxies live: `$MICROAU_PROXY_DIR` if set, else the "proxies" cache."""
    return _xdg(PROXY_DIR_ENV, cache_dir("proxies"))
