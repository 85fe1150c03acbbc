"""Per-user key bindings (a BORIS-style coding map): stored overrides, conflicts, key hints.

Owns: `user_settings`, `stored_coder`, `store_coder`, `load_keymap`, `save_key`, `reset_keymap`, `apply_keymap`, `conflicts`,
`show_key_hints`. May import PySide6 only.

The defaults are the table in gui.actions; a user's changes are stored as overrides, one per
action name, in an INI file in the user's configuration folder (`$MICROAU_CONFIG_DIR` when set,
which tests use, else Qt's AppConfigLocation). A key bound to two actions does nothing in Qt
(`activatedAmbiguously`); the window reports every such conflict instead of leaving the coder
wondering why a key went dead, and the shortcuts dialog refuses to create one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtGui import QAction, QKeySequence

KEYS_GROUP = "keys"
CODER_KEY = "coder/name"


def user_settings() -> QSettings:
    """The user's settings file (key bindings, coder name, theme)."""
    folder = os.environ.get("MICROAU_CONFIG_DIR") or QStandardPaths.writableLocation(
        QStandardPaths.StandardLocation.AppConfigLocation)
    Path(folder).mkdir(parents=True, exist_ok=True)
    return QSettings(str(Path(folder) / "microau_studio.ini"), QSettings.Format.IniFormat)


def stored_coder() -> str:
    """The coder name this user gave last ("" when never asked)."""
    return str(user_settings().value(CODER_KEY, "") or "")


def store_coder(name: str) -> None:
    settings = user_settings()
    settings.setValue(CODER_KEY, name)
    settings.sync()


def _portable(seq: QKeySequence) -> str:
    return seq.toString(QKeySequence.SequenceFormat.PortableText)


def load_keymap() -> dict[str, list[str]]:
    """Action name -> its keys (portable text), for every action the user rebound."""
    settings = user_settings()
    settings.beginGroup(KEYS_GROUP)
    keymap = {}
    for name in settings.childKeys():
        value = settings.value(name, "")
        keys = value if isinstance(value, list) else [value] if value else []
        keymap[name] = [k for k in keys if k]
    settings.endGroup()
    return keymap


def save_key(name: str, keys: list[str]) -> None:
    settings = user_settings()
    settings.setValue(f"{KEYS_GROUP}/{name}", keys)
    settings.sync()


def reset_keymap() -> None:
    settings = user_settings()
    settings.remove(KEYS_GROUP)
    settings.sync()


def apply_keymap(actions: dict[str, QAction], keymap: dict[str, list[str]]) -> None:
    """Bind the stored keys; names no longer known are ignored (an older or newer version)."""
    for name, keys in keymap.items():
        if name in actions:
            actions[name].setShortcuts([QKeySequence(k) for k in keys])
    show_key_hints(actions.values())


def conflicts(actions: Iterable[QAction]) -> dict[str, list[str]]:
    """Key (portable text) -> the labels of the two or more actions it is bound to."""
    bound: dict[str, list[str]] = {}
    for action in actions:
        label = (action.property("label") or action.text()).replace("&", "")
        for seq in action.shortcuts():
            bound.setdefault(_portable(seq), []).append(label)
    return {key: labels for key, labels in bound.items() if len(labels) > 1}


def describe_conflicts(found: dict[str, list[str]]) -> str:
    return "; ".join(f"{key} is bound to " + " and ".join(f"'{label}'" for label in labels)
                     for key, labels in sorted(found.items()))


def show_key_hints(actions: Iterable[QAction]) -> None:
    """Each action's tooltip (on tool buttons) names its keys, so the mouse teaches the keys."""
    for action in actions:
        label = (action.property("label") or action.text()).replace("&", "")
        keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText)
                         for s in action.shortcuts())
        action.setToolTip(f"{label} ({keys})" if keys else label)
