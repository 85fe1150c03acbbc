"""View > Theme, View > Frame numbering and text size (Ctrl+ / Ctrl- / Ctrl+0): the window's
view preferences, applied at once and stored per user (gui.preferences).

Owns: `ViewMenu`. May import PySide6, pyqtgraph (through gui.style) and the gui modules it
restyles, and session.numbering values.

The frame numbering is the session's (`session.numbering`): every view that shows a frame
number listens to it. The theme and the font scale are the application's (gui.style); after
either changes, the window's plots are restyled (`style.restyle_plots`) and the timeline redraws
its labels. With the theme "system", a change of the platform's colour scheme while the window
is open is followed too (`QStyleHints.colorSchemeChanged`).
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication
from PySide6.QtWidgets import QApplication, QMainWindow, QMenu

from microau_gui.gui import style
from microau_gui.gui.preferences import ViewPreferences, load_preferences, save_preferences
from microau_gui.session.numbering import Numbering

THEME_TITLES = {style.Theme.SYSTEM: "Follow the system", style.Theme.DARK: "Dark",
                style.Theme.LIGHT: "Light"}


class ViewMenu(QObject):
    """Holds the window's view preferences and the menu entries that change them."""

    def __init__(self, window: QMainWindow):
        super().__init__(window)
        self.window = window
        self.prefs: ViewPreferences = load_preferences()
        self.theme_actions: dict[style.Theme, QAction] = {}
        self.numbering_actions: dict[Numbering, QAction] = {}
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(self._on_color_scheme_changed)

    def install(self, view_menu: QMenu) -> None:
        """Add the Theme and Frame numbering submenus to the View menu."""
        view_menu.addSeparator()
        themes = view_menu.addMenu("&Theme")
        group = QActionGroup(self)
        for theme, title in THEME_TITLES.items():
            action = themes.addAction(title)
            action.setCheckable(True)
            action.setChecked(theme is self.prefs.theme)
            action.triggered.connect(lambda _c=False, t=theme: self.set_theme(t))
            group.addAction(action)
            self.theme_actions[theme] = action
        numberings = view_menu.addMenu("Frame &numbering")
        group = QActionGroup(self)
        for numbering in Numbering:
            action = numberings.addAction(numbering.title)
            action.setCheckable(True)
            action.setChecked(numbering is self.prefs.numbering)
            action.triggered.connect(lambda _c=False, n=numbering: self.set_numbering(n))
            group.addAction(action)
            self.numbering_actions[numbering] = action

    def apply(self) -> None:
        """Put the stored preferences into effect (at start-up)."""
        self.window.session.numbering.set_numbering(self.prefs.numbering)
        self._restyle()

    def set_theme(self, theme: style.Theme | str) -> None:
        self._store(theme=style.Theme(theme))
        if self.theme_actions:
            self.theme_actions[self.prefs.theme].setChecked(True)
        self._restyle()

    def set_numbering(self, numbering: Numbering | str) -> None:
        self._store(numbering=Numbering(numbering))
        if self.numbering_actions:
            self.numbering_actions[self.prefs.numbering].setChecked(True)
        self.window.session.numbering.set_numbering(self.prefs.numbering)

    def scale_font(self, step: int) -> None:
        """+1 larger, -1 smaller, 0 back to normal."""
        self._store(font_scale=style.step_font_scale(self.prefs.font_scale, step))
        self._restyle()
        self.window.statusBar().showMessage(
            f"text size {round(100 * self.prefs.font_scale)} % (Ctrl+0 resets)", 4000)

    def _store(self, **changes) -> None:
        self.prefs = dataclasses.replace(self.prefs, **changes)
        save_preferences(self.prefs)

    def _on_color_scheme_changed(self, _scheme) -> None:
        if self.prefs.theme is style.Theme.SYSTEM:
            self._restyle()

    def _restyle(self) -> None:
        app = QApplication.instance()
        style.apply_style(app, self.prefs.theme, self.prefs.font_scale)
        window = self.window
        style.restyle_plots(window, skip=(window.video_view, window.crop_view))
        window.timeline.restyle()
        window.dependency_view.restyle()
