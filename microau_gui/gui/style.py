"""The window's look: a dark or a light Fusion palette, a small style sheet (HUD, banner, badges,
panel titles), font scaling, and the plots' colours.

Owns: `Theme`, `Colours`, `DARK`, `LIGHT`, `resolve_theme`, `apply_style`, `current`,
`restyle_plots`, `FONT_SCALES`, `step_font_scale`. May import PySide6 and pyqtgraph only.

Theme "system" follows the colour scheme Qt reports (`QStyleHints.colorScheme`, Qt >= 6.5);
where the platform reports none (Qt says Unknown, e.g. a bare X server) it is dark, since video
tools are dark so that the frame stands out. The video and the face crop keep a dark surround in
both themes for the same reason; everything else (panels, docks, timeline, ruler, matrices,
curves) follows the theme.

Font scaling (Ctrl+ / Ctrl- / Ctrl+0) scales the application font, the style sheet's pixel
sizes and the plots' tick fonts together, in the steps of `FONT_SCALES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

BASE_FONT_PT = 10
FONT_SCALES = (0.8, 0.9, 1.0, 1.1, 1.25, 1.4, 1.6, 1.8)


class Theme(str, Enum):
    SYSTEM = "system"
    DARK = "dark"
    LIGHT = "light"


@dataclass(frozen=True)
class Colours:
    """One theme's colours: the Qt palette roles and what the plots draw with."""

    name: str  # "dark" | "light"
    window: QColor
    text: QColor
    base: QColor
    alternate: QColor
    button: QColor
    highlight: QColor
    disabled_text: QColor
    subtle: QColor  # secondary text
    plot_background: QColor
    plot_text: QColor
    lane_line: QColor  # lane separators in the timeline
    label: QColor  # event labels on the timeline
    separator: str  # style-sheet colour of dock separators and toolbar lines
    dock_title: str


DARK = Colours("dark", QColor(32, 32, 36), QColor(230, 230, 234), QColor(24, 24, 28),
               QColor(36, 36, 42), QColor(44, 44, 50), QColor(61, 90, 128), QColor(110, 110, 118),
               QColor(154, 154, 162), QColor(24, 24, 28), QColor(200, 200, 205),
               QColor(70, 70, 78), QColor(235, 235, 240), "#2a2a30", "#26262c")
LIGHT = Colours("light", QColor(239, 239, 242), QColor(28, 28, 32), QColor(255, 255, 255),
                QColor(245, 245, 248), QColor(228, 228, 233), QColor(76, 126, 196),
                QColor(150, 150, 156), QColor(96, 96, 104), QColor(252, 252, 253),
                QColor(40, 40, 46), QColor(196, 196, 204), QColor(20, 20, 26), "#c8c8d0",
                "#dcdce2")

_STYLE_SHEET = """
QMainWindow::separator {{ background: {separator}; width: 4px; height: 4px; }}
QDockWidget {{ font-weight: bold; }}
QDockWidget::title {{ background: {dock_title}; padding: 4px 8px; }}
QLabel#hud {{
    background: rgba(0, 0, 0, 165); color: #f2f2f2; border-radius: 4px; padding: 5px 8px;
    font-family: "DejaVu Sans Mono", monospace; font-size: {hud_px}px;
}}
QLabel#placeholder {{ color: #d8d8dc; font-size: {placeholder_px}px; }}
QLabel#banner {{ padding: 6px 10px; font-weight: bold; border-radius: 0px; }}
QLabel#banner[kind="demo"] {{ background: #5c4a12; color: #ffe9a8; }}
QLabel#banner[kind="error"] {{ background: #6b1f1f; color: #ffd6d6; }}
QLabel#badge {{ padding: 2px 8px; border-radius: 8px; background: #3a3a42; color: #e0e0e0;
               font-weight: bold; }}
QLabel#badge[kind="cuda"] {{ background: #1f5f2f; color: #d6ffd9; }}
QLabel#badge[kind="cpu"] {{ background: #2f4a6b; color: #dbe9ff; }}
QLabel#paneltitle {{ color: {text}; padding: 2px 0 4px 0; }}
QLabel#subtle {{ color: {subtle}; }}
QLabel#keyhint {{ color: {subtle}; font-family: "DejaVu Sans Mono", monospace; min-width: 10px; }}
QLabel#mono {{ font-family: "DejaVu Sans Mono", monospace; }}
QToolBar {{ spacing: 6px; padding: 3px; border-bottom: 1px solid {separator}; }}
QToolButton:checked {{ background: {highlight}; color: #ffffff; border-radius: 3px; }}
"""

_current = DARK
_font_scale = 1.0


def current() -> Colours:
    """The colours of the theme applied last (dark before any)."""
    return _current


def font_scale() -> float:
    return _font_scale


def resolve_theme(theme: Theme | str) -> Colours:
    """The colours a theme choice stands for; "system" asks Qt for the scheme in use."""
    theme = Theme(theme)
    if theme is Theme.LIGHT:
        return LIGHT
    if theme is Theme.DARK:
        return DARK
    hints = QGuiApplication.styleHints()
    scheme = hints.colorScheme() if hasattr(hints, "colorScheme") else Qt.ColorScheme.Unknown
    return LIGHT if scheme == Qt.ColorScheme.Light else DARK


def step_font_scale(scale: float, step: int) -> float:
    """The next scale of FONT_SCALES up (+1) or down (-1) from `scale`; 0 resets to 1.0."""
    if step == 0:
        return 1.0
    nearest = min(range(len(FONT_SCALES)), key=lambda i: abs(FONT_SCALES[i] - scale))
    return FONT_SCALES[max(0, min(len(FONT_SCALES) - 1, nearest + step))]


def apply_style(app: QApplication, theme: Theme | str = Theme.SYSTEM,
                scale: float = 1.0) -> Colours:
    """Palette, font and style sheet of the whole application; returns the colours used."""
    global _current, _font_scale
    colours = resolve_theme(theme)
    _current, _font_scale = colours, float(scale)
    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: colours.window,
        QPalette.ColorRole.WindowText: colours.text,
        QPalette.ColorRole.Base: colours.base,
        QPalette.ColorRole.AlternateBase: colours.alternate,
        QPalette.ColorRole.ToolTipBase: colours.button,
        QPalette.ColorRole.ToolTipText: colours.text,
        QPalette.ColorRole.Text: colours.text,
        QPalette.ColorRole.Button: colours.button,
        QPalette.ColorRole.ButtonText: colours.text,
        QPalette.ColorRole.Highlight: colours.highlight,
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.PlaceholderText: colours.subtle,
        QPalette.ColorRole.Link: QColor(120, 170, 255) if colours is DARK else QColor(30, 90, 190),
    }
    for role, colour in roles.items():
        palette.setColor(role, colour)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, colours.disabled_text)
    app.setPalette(palette)
    app.setFont(QFont("DejaVu Sans", round(BASE_FONT_PT * scale)))
    app.setStyleSheet(_STYLE_SHEET.format(
        separator=colours.separator, dock_title=colours.dock_title, text=colours.text.name(),
        subtle=colours.subtle.name(), highlight=colours.highlight.name(),
        hud_px=round(12 * scale), placeholder_px=round(17 * scale)))
    return colours


def tick_font(pt: int = 8) -> QFont:
    """A plot's tick font at the current font scale."""
    return QFont("DejaVu Sans", max(6, round(pt * _font_scale)))


def restyle_plots(root: QWidget, skip: tuple[QWidget, ...] = ()) -> None:
    """Give every pyqtgraph view under `root` (except those inside `skip`: the video and the
    crop, which stay dark) the current theme's background, axis colours and tick font."""
    colours = _current
    for view in root.findChildren(pg.GraphicsView):
        if any(view is s or s.isAncestorOf(view) for s in skip):
            continue
        view.setBackground(colours.plot_background)
        for item in view.scene().items():
            if isinstance(item, pg.AxisItem):
                item.setTextPen(colours.plot_text)
                if item.pen().style() != Qt.PenStyle.NoPen:  # an axis drawn invisible stays so
                    item.setPen(pg.mkPen(colours.plot_text))
                if not hasattr(item, "base_tick_pt"):  # the size its view chose, before scaling
                    font = item.style.get("tickFont")
                    item.base_tick_pt = 8 if font is None else font.pointSize()
                item.setTickFont(tick_font(item.base_tick_pt))
            elif isinstance(item, pg.LabelItem):
                item.setText(item.text, color=colours.plot_text.name())
