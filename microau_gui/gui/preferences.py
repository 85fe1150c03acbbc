"""The view preferences a user keeps between sessions: theme, font scale, frame numbering.

Owns: `ViewPreferences`, `load_preferences`, `save_preferences`. May import PySide6 and gui.keymap
(whose `user_settings` is the one per-user settings file) and session.numbering values.

Stored in the user's settings file beside the key bindings and the coder name (`view/theme`,
`view/font_scale`, `view/numbering`); a value that is missing or not understood falls back to
the default (theme: follow the system; scale 1.0; numbering: dataset numbers, as exported).
"""

from __future__ import annotations

from dataclasses import dataclass

from microau_gui.gui.keymap import user_settings
from microau_gui.gui.style import FONT_SCALES, Theme
from microau_gui.session.numbering import Numbering


@dataclass(frozen=True)
class ViewPreferences:
    theme: Theme = Theme.SYSTEM
    font_scale: float = 1.0
    numbering: Numbering = Numbering.DATASET


def load_preferences() -> ViewPreferences:
    settings = user_settings()
    default = ViewPreferences()
    try:
        theme = Theme(str(settings.value("view/theme", default.theme.value)))
    except ValueError:
        theme = default.theme
    try:
        numbering = Numbering(str(settings.value("view/numbering", default.numbering.value)))
    except ValueError:
        numbering = default.numbering
    try:
        scale = float(settings.value("view/font_scale", default.font_scale))
    except (TypeError, ValueError):
        scale = default.font_scale
    if not min(FONT_SCALES) <= scale <= max(FONT_SCALES):
        scale = default.font_scale
    return ViewPreferences(theme, scale, numbering)


def save_preferences(prefs: ViewPreferences) -> None:
    settings = user_settings()
    settings.setValue("view/theme", prefs.theme.value)
    settings.setValue("view/font_scale", prefs.font_scale)
    settings.setValue("view/numbering", prefs.numbering.value)
    settings.sync()
