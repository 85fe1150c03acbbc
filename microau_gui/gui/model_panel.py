"""The model controls: selector, device badge, model-card dialog, and the honesty banner.

Owns: `ModelBar`, `ModelBanner`, `ModelCardDialog`, `banner_lines` and the banner texts. May import
PySide6, session (ModelChoice, ModelLoaded) and `model.card` (torch-free); never torch.

The banner says, above everything else, when the predictions should not be trusted on real faces:
the bundled demo model (trained on synthetic micro-movements) or a backbone running without
pretrained weights (`Predictor.pretrained_loaded` False).
"""

from __future__ import annotations

import html
import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from microau_gui.core.errors import split_details
from microau_gui.gui.figures import figure_scope
from microau_gui.session.messages import ModelLoaded
from microau_gui.session.models import ModelChoice
from microau_gui.session.session import ProjectSession

DEMO_TEXT = ("DEMO MODEL — trained on synthetic micro-movements, not for real faces. Train on real "
             "data with `python main.py train --dataset KIND:SHEET:ROOT ...` and pick it in the "
             "model selector.")
DEMO_BACKBONE_TEXT = ("No pretrained backbone: its tiny ViT was trained from scratch, without CLIP "
                      "pretraining.")
NO_PRETRAINED_TEXT = ("NO PRETRAINED BACKBONE — this model's CLIP backbone did not start from "
                      "pretrained weights; unless it was trained on plenty of real data its "
                      "predictions are unreliable. Retrain with `--pretrained openai`.")
UNTRAINED_TEXT = ("NO PRETRAINED BACKBONE, NOT TRAINED — this model runs on random weights; its "
                  "predictions mean nothing. Train one with `python main.py train ...`.")


def banner_lines(loaded: ModelLoaded) -> tuple[list[str], str]:
    """(lines, kind) of the warning a model deserves; kind "demo" (amber) or "error" (red)."""
    if loaded.is_demo:
        return [DEMO_TEXT] + ([] if loaded.pretrained_loaded else [DEMO_BACKBONE_TEXT]), "demo"
    if loaded.pretrained_loaded:
        return [], "demo"
    trained = bool(loaded.card.training_settings or loaded.card.metrics)
    return [NO_PRETRAINED_TEXT if trained else UNTRAINED_TEXT], "error"


class ModelBar(QWidget):
    """Model selector, device badge (CPU/CUDA) and a button opening the model card."""

    def __init__(self, session: ProjectSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.choices: list[ModelChoice] = []
        self.selector = QComboBox()
        self.selector.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.selector.setMinimumContentsLength(14)
        self.selector.setToolTip("model versions of this project and checkpoints in weights/")
        self.selector.activated.connect(self._on_selector_activated)
        self.device = QLabel("no model")
        self.device.setObjectName("badge")
        self.device.setToolTip("where the model runs")
        self.card_button = QPushButton("Card")
        self.card_button.setToolTip("model card: vocabulary, training data, metrics (Ctrl+M)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Model"))
        layout.addWidget(self.selector)
        layout.addWidget(self.device)
        layout.addWidget(self.card_button)
        session.project_opened.connect(lambda _p: self.refresh())
        session.models_changed.connect(self.refresh)
        session.model_loaded.connect(self._on_session_model_loaded)
        session.model_unloaded.connect(self._on_session_model_unloaded)
        self.refresh()

    def refresh(self) -> None:
        self.choices = self.session.model_choices()
        self.selector.blockSignals(True)
        self.selector.clear()
        for choice in self.choices:
            self.selector.addItem(choice.label if choice.available
                                  else f"{choice.label} — checkpoint missing")
        if not self.choices:
            self.selector.addItem("no model (run make demo-assets)")
        loaded = self.session.model
        versions = [c.version for c in self.choices]
        if loaded is not None and loaded.model_version in versions:
            self.selector.setCurrentIndex(versions.index(loaded.model_version))
        self.selector.blockSignals(False)

    def _on_selector_activated(self, index: int) -> None:
        if 0 <= index < len(self.choices):
            choice = self.choices[index]
            if self.session.model is None or choice.version != self.session.model.model_version:
                self.session.attempt(self.session.select_model, choice)

    def _on_session_model_loaded(self, loaded: ModelLoaded) -> None:
        self.device.setText(loaded.device.upper())
        self.device.setToolTip(f"runs on {loaded.device.upper()} in {loaded.speed_mode}: "
                               f"{loaded.speed_summary}")
        self.device.setProperty("kind", "cuda" if loaded.device == "cuda" else "cpu")
        self.device.style().polish(self.device)
        self.refresh()

    def _on_session_model_unloaded(self, _why: str) -> None:
        self.device.setText("no model")


# The banner keeps its own dark strip in both themes (gui.style); its links take the strip's text
# colour, not the palette's link colour (dark blue on the light theme: unreadable on the strip).
BANNER_LINK = "color: #ffffff; text-decoration: underline;"


class ModelBanner(QLabel):
    """A full-width warning strip; hidden when the model deserves no warning.

    Folded to one line (the warning's first sentence and a "details" link) so it costs the video
    one text line on a 1280x720 screen; the link unfolds the whole text and "less" folds it."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("banner")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.linkActivated.connect(self._on_link_activated)
        # the folded line may be cut at the right edge rather than widen the window
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.lines: list[str] = []
        self.expanded = False
        self.hide()

    @property
    def full_text(self) -> str:
        return "\n".join(self.lines)

    def show_for(self, loaded: ModelLoaded | None, unloaded_reason: str | None = None) -> None:
        if loaded is not None:
            lines, kind = banner_lines(loaded)
        else:
            # an internal error's details unfold under "(details)", never on the folded line
            sentence, details = split_details(unloaded_reason or "")
            lines = ["NO MODEL — " + sentence] + details.splitlines() if sentence else []
            kind = "error"
        self.setProperty("kind", kind)
        self.style().polish(self)
        self.lines = lines
        self.setToolTip(self.full_text)
        self._render()
        self.setVisible(bool(lines))

    def set_expanded(self, expanded: bool) -> None:
        self.expanded = expanded
        self._render()

    def _render(self) -> None:
        if not self.lines:
            self.setText("")
            return
        if self.expanded:
            self.setWordWrap(True)
            body = "<br>".join(html.escape(line) for line in self.lines)
            self.setText(f"{body} &nbsp;<a href='less' style='{BANNER_LINK}'>less</a>")
            return
        self.setWordWrap(False)
        first = self.lines[0]
        cut = first.find(". ")
        headline = first if cut < 0 else first[:cut + 1]
        label, dash, rest = headline.partition(" — ")
        # the link right after the label, so a narrow window cuts the sentence, not the link
        self.setText(f"<b>{html.escape(label)}</b> <a href='details' style='{BANNER_LINK}'>"
                     "(details)</a>"
                     + (f" — {html.escape(rest)}" if dash else ""))

    def _on_link_activated(self, link: str) -> None:
        self.set_expanded(link == "details")


class ModelCardDialog(QDialog):
    """The loaded model's card: identity, intended use, vocabulary, per-AU metrics, raw JSON."""

    def __init__(self, loaded: ModelLoaded, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Model card — {loaded.model_version}")
        self.resize(720, 620)
        card = loaded.card.to_dict()
        facts = [
            ("Version", loaded.model_version),
            ("Checkpoint", str(loaded.checkpoint)),
            ("Device", loaded.device.upper()),
            ("Speed mode", f"{loaded.speed_mode} ({loaded.speed_summary})"),
            ("Pretrained backbone", "yes" if loaded.pretrained_loaded else "NO (random weights)"),
            ("Demo model", "yes (synthetic training data)" if loaded.is_demo else "no"),
            ("AU vocabulary", " ".join(loaded.vocab)),
        ]
        for key in ("intended_use", "parent", "created", "training_data_hash", "input_mode",
                    "backbone"):
            if key in card and not isinstance(card[key], (dict, list)):
                facts.append((key.replace("_", " ").capitalize(), str(card[key])))
        header = QLabel("<br>".join(f"<b>{k}</b>: {v}" for k, v in facts))
        header.setWordWrap(True)
        header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(header)
        per_au = _per_au_metrics(card)
        if per_au:
            columns = sorted({k for row in per_au.values() for k in row})
            table = QTableWidget(len(per_au), len(columns) + 1)
            table.setHorizontalHeaderLabels(["AU"] + columns)
            for r, (code, row) in enumerate(per_au.items()):
                table.setItem(r, 0, QTableWidgetItem(code))
                for c, column in enumerate(columns):
                    value = row.get(column)
                    text = f"{value:.3f}" if isinstance(value, float) else str(value or "")
                    table.setItem(r, c + 1, QTableWidgetItem(text))
            table.verticalHeader().hide()
            metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
            scope = QLabel(f"<b>Per-AU metrics</b> (from the model card), measured "
                           f"{figure_scope(metrics)[1]}")
            scope.setWordWrap(True)
            layout.addWidget(scope)
            layout.addWidget(table, 1)
        raw = QPlainTextEdit(json.dumps(card, indent=2, sort_keys=True, default=str))
        raw.setReadOnly(True)
        layout.addWidget(QLabel("<b>Raw model card</b>"))
        layout.addWidget(raw, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


def _per_au_metrics(card: dict) -> dict[str, dict]:
    """The card's per-AU metrics table wherever it keeps one ("metrics": {"per_au": ...})."""
    for holder in (card, card.get("metrics") if isinstance(card.get("metrics"), dict) else {}):
        per_au = holder.get("per_au") if isinstance(holder, dict) else None
        if isinstance(per_au, dict) and all(isinstance(v, dict) for v in per_au.values()):
            return per_au
    return {}
