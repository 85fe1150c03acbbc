"""The AU panel: live per-AU probability bars, and the selected event's AUs, emotion and notes.

Owns: `AUPanel`, `ProbabilityBar`. May import PySide6, core, session and gui.style (colours);
every edit is a `ProjectSession` call (an undoable store command).

One row per AU of the model vocabulary, plus any other AU the selected event codes: colour swatch,
code and FACS name, the model's probability for the frame on screen (greyed while the prediction
of a new frame is pending), then for the selected event: on/off, side (both / L / R) and FACS
intensity (A trace ... E maximum). Digit keys toggle the first ten rows (shown as "1" ... "0").
In blind coding mode (session.coder.blind) the probability bars and comparison values are hidden.

Per-AU timing: Alt+Shift+I / A / O set the focused AU's own onset / apex / offset at the playhead
(the others follow only as far as keeps their order), Alt+Shift+Backspace makes it span the
event again; the title lists the AUs timed apart.

Comparison traces (issue 17): with `attach_comparison`, the header gets one checkbox per other
tool's source of the open video (gui.comparison_lanes.ComparisonSources, which also switches its
dashed timeline lanes), and each AU row ends with the switched-on sources' values at the
playhead, in each source's colour and units; AUs only the sources have are listed under the
rows.

Keyboard coding (our choice where issue 16 is silent): the *focused AU* is the row last toggled
or coded (outlined; Alt+Up / Alt+Down move it). Alt+A ... Alt+E set its intensity, Alt+L / Alt+R
/ Alt+S its side (left, right, both: symmetric; Alt+B is intensity B). The quick-entry field (key C) takes a whole FACS string
such as `4+L12C+R14`, parsed by `core.aus.parse_au_string`, the parser the importers use, so any
AU of the catalogue can be coded by key; Enter replaces the selected event's AUs with it and
hands the keys back to the window (`entry_finished`), a token it cannot read is named and nothing
changes.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from microau_gui.core.au import CATALOGUE, au_info
from microau_gui.core.aus import INTENSITIES, Side, parse_au_string
from microau_gui.core.types import DECISION_THRESHOLD, FramePrediction
from microau_gui.gui import style
from microau_gui.session.annotation import digit_aus
from microau_gui.session.session import ProjectSession
from microau_gui.session.records import Event

# Emotion labels of CASME II / SAMM / CAS(ME)^3 coding sheets; the box also accepts free text.
EMOTIONS = ("happiness", "surprise", "disgust", "repression", "fear", "sadness", "anger",
            "contempt", "others")
SIDES = (("both", Side.BOTH), ("L", Side.LEFT), ("R", Side.RIGHT))


class ProbabilityBar(QWidget):
    """A horizontal bar with the percentage written on it."""

    def __init__(self, colour: tuple[int, int, int], parent: QWidget | None = None):
        super().__init__(parent)
        self.colour = QColor(*colour)
        self.value: float | None = None
        self.stale = False
        self.setMinimumWidth(70)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt virtual
        return QSize(150, 18)

    def set_value(self, value: float | None, stale: bool = False) -> None:
        self.value, self.stale = value, stale
        self.update()

    def paintEvent(self, _event):  # noqa: N802 - Qt virtual
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0.5, 2.5, -0.5, -2.5)
        colours = style.current()  # read at paint time: a theme change repaints the bar
        painter.setPen(colours.lane_line)
        painter.setBrush(colours.alternate)
        painter.drawRoundedRect(rect, 3, 3)
        if self.value is not None:
            fill = QColor(self.colour)
            fill.setAlpha(90 if self.stale else 220)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawRoundedRect(QRectF(rect.x(), rect.y(), rect.width() * self.value,
                                           rect.height()), 3, 3)
            # decision threshold tick: a coder reads "on" or "off" at a glance
            tick = QColor(colours.text)
            tick.setAlpha(90)
            painter.setPen(tick)
            x_half = rect.x() + rect.width() * DECISION_THRESHOLD
            painter.drawLine(int(x_half), int(rect.top()), int(x_half), int(rect.bottom()))
        painter.setPen(colours.subtle if self.stale else colours.text)
        text = "–" if self.value is None else f"{self.value:.0%}"
        painter.drawText(rect.adjusted(6, 0, -6, 0), Qt.AlignmentFlag.AlignVCenter
                         | Qt.AlignmentFlag.AlignRight, text)
        painter.end()


class _AURow:
    """The widgets of one AU row."""

    def __init__(self, panel: AUPanel, code: str, key_hint: str):
        info = au_info(code)
        self.code = code
        self.swatch = QLabel()
        self.swatch.setFixedSize(10, 18)
        r, g, b = info.colour
        self.swatch.setStyleSheet(f"background: rgb({r},{g},{b}); border-radius: 2px;")
        self.name = QLabel(f"<b>{code}</b> <span style='color:#9a9aa2'>{info.name}</span>")
        self.name.setToolTip(f"{info.name}: {info.action} ({info.muscle})")
        # a narrow panel cuts the FACS name instead of scrolling the controls off to the right
        self.name.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.name.setMinimumWidth(56)
        self.key = QLabel(key_hint)
        self.key.setObjectName("keyhint")
        self.key.setToolTip(f"key {key_hint} toggles {code} on the selected event" if key_hint else "")
        self.bar = ProbabilityBar(info.colour)
        self.toggle = QCheckBox()
        self.toggle.setToolTip(f"{code} coded on the selected event")
        self.side = QComboBox()
        for label, side in SIDES:
            self.side.addItem(label, side)
        self.side.setToolTip("side: both (bilateral), L (left only), R (right only)")
        self.intensity = QComboBox()
        self.intensity.addItem("–", None)
        for letter in INTENSITIES:
            self.intensity.addItem(letter, letter)
        self.intensity.setToolTip("FACS intensity: A trace, B slight, C marked, D severe, E maximum")
        for widget in (self.toggle, self.side, self.intensity):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space, digits, arrows stay shortcuts
        self.toggle.clicked.connect(lambda _checked: panel.toggle(code))
        # Qt hands the Side back as its plain letter; the store wants the Side itself.
        self.side.activated.connect(
            lambda i: panel.set_side(Side(self.side.itemData(i)), code))
        self.intensity.activated.connect(
            lambda i: panel.set_intensity(self.intensity.itemData(i), code))

        self.compare = QLabel()  # other tools' values at the playhead (attach_comparison)
        self.compare.setObjectName("compare")

    @property
    def widgets(self) -> list[QWidget]:
        return [self.key, self.swatch, self.name, self.bar, self.toggle, self.side, self.intensity,
                self.compare]


class AUPanel(QWidget):
    """Per-AU probabilities of the frame on screen and the selected event's coding."""

    entry_finished = Signal()  # the quick-entry field is done: the window takes the keys back
    focus_changed = Signal(object)  # the focused AU's code (None: none), e.g. for the heatmap

    def __init__(self, session: ProjectSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.rows: dict[str, _AURow] = {}
        self.focused_code: str | None = None
        self._focus_shown: str | None = None  # the focused code last announced
        self._prediction: FramePrediction | None = None
        self._comparison = None  # gui.comparison_lanes.ComparisonSources, once attached

        self.event_title = QLabel()
        self.event_title.setObjectName("paneltitle")
        self.event_title.setWordWrap(True)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(4, 2, 4, 2)
        self.grid.setHorizontalSpacing(6)
        self.grid.setVerticalSpacing(2)
        self.grid.setColumnStretch(3, 1)
        self.grid.setColumnStretch(2, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.grid_host)

        self.extra_au = QComboBox()
        self.extra_au.setToolTip("code an AU outside the model vocabulary on the selected event")
        self.extra_au.activated.connect(self._on_extra_au_activated)
        # Narrow by default (the window fits 1280 px): the list opens as wide as its items.
        for box in (self.extra_au,):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(8)
        self.emotion = QComboBox()
        self.emotion.setEditable(True)
        self.emotion.addItem("")
        self.emotion.addItems(EMOTIONS)
        self.emotion.lineEdit().setPlaceholderText("emotion")
        self.emotion.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.emotion.setMinimumContentsLength(8)
        self.emotion.lineEdit().editingFinished.connect(self._on_emotion_edited)
        self.emotion.activated.connect(lambda _i: self._on_emotion_edited())
        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText("note on the selected event (Enter adds it)")
        self.note_edit.returnPressed.connect(self._on_note_entered)
        add_note = QPushButton("Add note")
        add_note.clicked.connect(self._on_note_entered)
        self.notes = QListWidget()
        self.notes.setMaximumHeight(70)
        self.quick_entry = QLineEdit()
        self.quick_entry.setObjectName("quick_entry")
        self.quick_entry.setPlaceholderText("code AUs, e.g. 4+L12C+R14  (key C, Enter)")
        self.quick_entry.setToolTip(
            "FACS string for the selected event (C): + separates AUs, L/R prefix the side, A-E "
            "suffix the intensity; Enter replaces the event's AUs, Esc leaves it unchanged")
        self.quick_entry.returnPressed.connect(self.apply_quick_entry)
        # Enter in any text field of the panel hands the keys back to the window.
        self.emotion.lineEdit().returnPressed.connect(self.entry_finished)
        self.note_edit.returnPressed.connect(self.entry_finished)

        extra_row = QHBoxLayout()
        extra_row.addWidget(QLabel("Other AU"))
        extra_row.addWidget(self.extra_au, 1)
        extra_row.addWidget(QLabel("Emotion"))
        extra_row.addWidget(self.emotion, 1)
        note_row = QHBoxLayout()
        note_row.addWidget(self.note_edit, 1)
        note_row.addWidget(add_note)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.event_title)
        layout.addWidget(self.quick_entry)
        layout.addWidget(scroll, 1)
        self.compare_others = QLabel()  # AUs that only the comparison sources have
        self.compare_others.setWordWrap(True)
        self.compare_others.hide()
        layout.addWidget(self.compare_others)
        layout.addLayout(extra_row)
        layout.addLayout(note_row)
        layout.addWidget(self.notes)

        session.model_loaded.connect(lambda _m: self.rebuild())
        session.video_opened.connect(lambda _v: self.rebuild())
        session.selection_changed.connect(lambda _e: self.rebuild())
        session.numbering.changed.connect(self.rebuild)
        session.events_changed.connect(self._on_session_events_changed)
        session.prediction_made.connect(self._on_session_prediction_made)
        session.prediction_kept.connect(self._on_session_prediction_made)  # greyed: not this frame
        session.prediction_cleared.connect(self._on_session_prediction_cleared)
        session.coder.blind_changed.connect(lambda _on: self.rebuild())
        self.rebuild()

    # -- rows ----------------------------------------------------------------------------------

    def _codes(self) -> list[str]:
        codes = list(self.session.vocab)
        event = self.session.selected_event
        if event is not None:
            codes += [f"AU{a.number}" for a in event.aus if f"AU{a.number}" not in codes]
        return codes

    def rebuild(self) -> None:
        codes = self._codes()
        if list(self.rows) != codes:
            for row in self.rows.values():
                for widget in row.widgets:
                    widget.deleteLater()
            self.rows = {}
            hints = {code: digit for digit, code in digit_aus(self.session.vocab).items()}
            for r, code in enumerate(codes):
                row = _AURow(self, code, hints.get(code, ""))
                for c, widget in enumerate(row.widgets):
                    self.grid.addWidget(widget, r, c)
                self.rows[code] = row
            self.grid.setRowStretch(len(codes), 1)
            self.extra_au.clear()
            self.extra_au.addItem("add AU…", None)
            for number, info in sorted(CATALOGUE.items()):
                if info.code not in codes:
                    self.extra_au.addItem(f"{info.code} {info.name}", info.code)
        if self.focused_code not in self.rows:
            self.focused_code = None
        self._show_event(self.session.selected_event)
        self._show_probabilities()
        self._show_comparison()
        self._show_focus()
        for row in self.rows.values():  # blind coding: no model output to anchor on
            row.bar.setVisible(not self.session.coder.blind)
        self._show_comparison()

    def _show_focus(self) -> None:
        if self.focused_code != self._focus_shown:
            self._focus_shown = self.focused_code
            self.focus_changed.emit(self.focused_code)
        for code, row in self.rows.items():
            row.name.setStyleSheet("border: 1px solid #e0b040; border-radius: 2px;"
                                   if code == self.focused_code else "")

    def _show_event(self, event: Event | None) -> None:
        editable = event is not None and self.session.editable
        if event is None:
            self.event_title.setText("No event selected: mark one with <b>I</b> (onset), <b>A</b> "
                                     "(apex), <b>O</b> (offset), or pick one with <b>N</b> / "
                                     "<b>P</b>.")
        else:
            fps = self.session.fps or 1.0
            self.event_title.setText(
                f"<b>Event {event.id}</b> · frames "
                f"{self.session.frames.label(event.onset, event.apex, event.offset)} "
                f"({event.n_frames} frames, {1000 * event.n_frames / fps:.0f} ms) · {event.source}"
                + (f" · {event.coder}" if event.coder else "")
                + (" · coded blind" if event.blind else "")
                + f"<br>AUs <b>{event.aus_text or '—'}</b>"
                + "".join(f" · AU{span.number} "
                          f"{self.session.frames.label(span.onset, span.apex, span.offset)}"
                          for span in event.au_spans))
        coded = {f"AU{a.number}": a for a in event.aus} if event is not None else {}
        for code, row in self.rows.items():
            au = coded.get(code)
            for widget in (row.toggle, row.side, row.intensity):
                widget.blockSignals(True)
                widget.setEnabled(editable)
            row.toggle.setChecked(au is not None)
            row.side.setCurrentIndex([s for _, s in SIDES].index(au.side) if au else 0)
            row.intensity.setCurrentIndex(INTENSITIES.index(au.intensity) + 1
                                          if au is not None and au.intensity else 0)
            row.side.setEnabled(editable and au is not None)
            row.intensity.setEnabled(editable and au is not None)
            for widget in (row.toggle, row.side, row.intensity):
                widget.blockSignals(False)
        self.extra_au.setEnabled(editable)
        self.emotion.setEnabled(editable)
        self.emotion.blockSignals(True)
        self.emotion.setCurrentText((event.emotion or "") if event is not None else "")
        self.emotion.blockSignals(False)
        self.notes.clear()
        if event is not None and self.session.project is not None:
            for note in self.session.project.notes(event_id=event.id):
                self.notes.addItem(f"{note.created_at[:16].replace('T', ' ')}  {note.text}")

    def _show_probabilities(self) -> None:
        prediction = self._prediction
        stale = prediction is None or prediction.frame_idx != self.session.displayed_frame_idx
        probs = {}
        if prediction is not None and prediction.probs is not None:
            probs = dict(zip(prediction.vocab, (float(p) for p in prediction.probs)))
        for code, row in self.rows.items():
            row.bar.set_value(probs.get(code), stale)

    def attach_comparison(self, sources) -> None:
        """Put `sources` (a ComparisonSources) in the header and its values beside the rows."""
        self._comparison = sources
        self.layout().insertWidget(1, sources)  # under the event title
        sources.changed.connect(self._show_comparison)
        self.session.position_changed.connect(self._show_comparison)
        self._show_comparison()

    def _show_comparison(self, frame_idx: int | None = None) -> None:
        values = {}
        if (self._comparison is not None and self.session.video is not None
                and not self.session.coder.blind):  # blind: no other tool's output either
            values = self._comparison.at(self.session.frame_idx if frame_idx is None else frame_idx)
        for code, row in self.rows.items():
            found = values.get(code, [])
            row.compare.setText(" ".join(f"<span style='color:{colour}'>{short}</span>"
                                         for colour, short, _ in found if short))
            row.compare.setToolTip("\n".join(full for *_, full in found))
        others = [(au, found) for au, found in values.items() if au not in self.rows]
        self.compare_others.setText(
            "Only in the comparison traces: " + " · ".join(
                f"{au} " + " ".join(f"<span style='color:{colour}'>{short}</span>"
                                    for colour, short, _ in found if short)
                for au, found in others))
        self.compare_others.setToolTip("\n".join(full for _, found in others for *_, full in found))
        self.compare_others.setVisible(bool(others))

    # -- session -> panel ----------------------------------------------------------------------

    def _on_session_events_changed(self) -> None:
        self.rebuild()

    def _on_session_prediction_made(self, prediction: FramePrediction) -> None:
        self._prediction = prediction
        self._show_probabilities()

    def _on_session_prediction_cleared(self) -> None:
        self._prediction = None  # another model or video: the old bars mean nothing here
        self._show_probabilities()

    # -- panel -> session ----------------------------------------------------------------------

    def toggle(self, code: str) -> None:
        """Toggle `code` on the selected event; it becomes the focused AU."""
        self.focused_code = code
        self.session.toggle_au(code)
        self._show_focus()

    def set_side(self, side: Side, code: str | None = None) -> None:
        """Side of `code` (default: the focused AU) on the selected event."""
        code = code or self._focused_or_say()
        if code is not None:
            self.focused_code = code
            self.session.set_au_side(code, Side(side))
            self._show_focus()

    def set_intensity(self, intensity: str | None, code: str | None = None) -> None:
        """FACS intensity of `code` (default: the focused AU) on the selected event."""
        code = code or self._focused_or_say()
        if code is not None:
            self.focused_code = code
            self.session.set_au_intensity(code, intensity)
            self._show_focus()

    def move_focus(self, step: int) -> None:
        """Alt+Down / Alt+Up: the next / previous row becomes the focused AU."""
        codes = list(self.rows)
        if not codes:
            return
        if self.focused_code in codes:
            pos = (codes.index(self.focused_code) + step) % len(codes)
        else:
            pos = 0 if step > 0 else len(codes) - 1
        self.focused_code = codes[pos]
        self._show_focus()
        self.session.status_posted.emit(f"focused AU: {self.focused_code} "
                                        "(Alt+A..E intensity, Alt+L/R/S side)")

    def _focused_or_say(self) -> str | None:
        if self.focused_code is None:
            self.session.status_posted.emit("no focused AU: toggle one with a digit key, or pick "
                                            "one with Alt+Up / Alt+Down")
        return self.focused_code

    def move_au_boundary(self, boundary) -> None:
        """Alt+Shift+I / A / O: the focused AU's own onset / apex / offset at the playhead."""
        code = self._focused_or_say()
        if code is not None:
            self.session.move_au_boundary(code, boundary)

    def reset_au_span(self) -> None:
        """Alt+Shift+Backspace: the focused AU spans its event again."""
        code = self._focused_or_say()
        if code is not None:
            self.session.set_au_span(code, None)

    def start_quick_entry(self) -> None:
        """Key C: the field shows the selected event's AUs, selected, ready to be typed over."""
        event = self.session.selected_event
        if event is None:
            self.session.status_posted.emit("select an event first (mark one with I / A / O, "
                                            "or N / P)")
            return
        self.quick_entry.setText(event.aus_text or "")
        self.quick_entry.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.quick_entry.selectAll()

    def apply_quick_entry(self) -> bool:
        """Parse the field with the importers' AU parser and set the event's AUs to it."""
        text = self.quick_entry.text()
        parsed = parse_au_string(text)
        if not parsed.ok:
            problems = "; ".join(f"'{token}': {why}" for token, why in parsed.unparsed)
            self.session.status_posted.emit(f"AUs not changed: {problems}")
            return False
        if self.session.selected_event is None:
            self.session.status_posted.emit("select an event first (mark one with I / A / O, "
                                            "or N / P)")
            return False
        self.session.set_selected_aus(parsed.codes)
        if parsed.codes:
            self.focused_code = parsed.codes[-1].code
        self.quick_entry.clear()
        self.rebuild()
        self.entry_finished.emit()
        return True

    def _on_extra_au_activated(self, index: int) -> None:
        code = self.extra_au.itemData(index)
        self.extra_au.setCurrentIndex(0)
        if code:
            self.toggle(code)

    def _on_emotion_edited(self) -> None:
        event = self.session.selected_event
        text = self.emotion.currentText().strip() or None
        if event is not None and text != event.emotion:
            self.session.set_emotion(text)

    def _on_note_entered(self) -> None:
        text = self.note_edit.text().strip()
        if text and self.session.selected_event is not None:
            self.session.add_note(text)
            self.note_edit.clear()
