"""The model versions panel: the project's versions with their lineage and scores; roll back.

Owns: `ModelVersionsPanel`. May import PySide6 and session. Each row: the version (children
under their parent, the running one bold with a dot), its mean F1, when it was created and its
parent; the line under the list spells out the selected (else the running) version. Every
figure names what it measures (gui.figures). Checkpoints resolve as the toolbar's selector
resolves them (`ProjectSession.model_choices`).
Activating a version is `ProjectSession.select_model`: the running inference worker loads it
(no restart) and the project marks it active, so rolling back to an older version brings its
cached predictions (timeline traces, AU bars of analysed frames) back as they were.
Fine-tuned versions show their mean F1 before → after on the held-out subjects.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from microau_gui.gui.figures import f1_text, figure_scope
from microau_gui.session.session import ProjectSession

ID_ROLE = Qt.ItemDataRole.UserRole


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _score_text(metrics: dict) -> str:
    """The version's mean F1 and what it was measured on (fine-tuned: after, on its held-out
    subjects; gui.figures)."""
    after = _number(metrics.get("mean_f1"))
    return "" if after is None else f"{f1_text(after)} · {figure_scope(metrics)[0]}"


def _created_text(created_at: str, with_year: bool = False) -> str:
    """`2026-11-25T18:32:05+00:00` -> `11-25 18:32` (with the year in the details line)."""
    return created_at[0 if with_year else 5:16].replace("T", " ")


def _describe(version, parent_name: str | None, running: bool) -> str:
    """One paragraph about a version for the line under the list."""
    metrics = version.metrics
    after = _number(metrics.get("mean_f1"))
    before = _number((metrics.get("before") or {}).get("mean_f1"))
    held_out = (metrics.get("finetune") or {}).get("holdout_subjects") or []
    parts = [f"<b>{version.name}</b>" + (" (running)" if running else "")]
    parts.append(f"fine-tuned from {parent_name}" if parent_name else "no parent")
    if after is not None and before is not None:
        parts.append(f"mean F1 {f1_text(before)} → {f1_text(after)}"
                     + (f" on held-out {', '.join(map(str, held_out))}" if held_out else "")
                     + f" ({figure_scope(metrics)[1]})")
    elif after is not None:
        parts.append(f"mean F1 {f1_text(after)} {figure_scope(metrics)[1]}")
    parts.append(f"created {_created_text(version.created_at, with_year=True)}")
    return "; ".join(parts)


class ModelVersionsPanel(QWidget):
    """Versions as a lineage tree (children under their parent); Activate rolls back or forward."""

    def __init__(self, session: ProjectSession, actions: dict[str, QAction],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Version", "Mean F1 · measured on", "Created", "Parent"])
        self.tree.setIndentation(12)
        # Interactive, sized to the contents on refresh: ResizeToContents would make the
        # columns' full width the dock's minimum, and the window must fit 1280 px.
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.tree.currentItemChanged.connect(lambda _now, _before: self._show_details())
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.activate_button = QPushButton("Activate (roll back)")
        self.activate_button.setToolTip("run the selected version; its cached predictions return")
        self.activate_button.clicked.connect(self._on_activate_clicked)
        # a double-click, or by keys: Ctrl+Shift+M puts the keys on the tree, arrows choose,
        # Enter activates (both are the tree's `activated`)
        self.tree.activated.connect(lambda _index: self._on_activate_clicked())
        self.finetune_button = QPushButton("Fine-tune…")
        self.finetune_button.clicked.connect(actions["finetune"].trigger)
        note = QLabel("● running · double-click a version to activate it")
        note.setObjectName("subtle")
        note.setWordWrap(True)
        self.details = QLabel()
        self.details.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.activate_button)
        buttons.addWidget(self.finetune_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.details)
        layout.addWidget(note)
        layout.addLayout(buttons)
        session.project_opened.connect(lambda _p: self.refresh())
        session.project_closed.connect(self.refresh)
        session.models_changed.connect(self.refresh)
        session.model_loaded.connect(lambda _m: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        self.tree.clear()
        project = self.session.project
        if project is None:
            self.details.setText("")
            return
        running = self.session.model.model_version if self.session.model is not None else None
        items: dict[int, QTreeWidgetItem] = {}
        versions = project.models.list()
        names = {v.id: v.name for v in versions}
        checkpoints = {c.model_version_id: c.checkpoint for c in self.session.model_choices()}
        for version in versions:  # oldest first: parents come before children
            item = QTreeWidgetItem([("● " if version.version == running else "") + version.name,
                                    _score_text(version.metrics),
                                    _created_text(version.created_at),
                                    names.get(version.parent_id, "–")])
            item.setData(0, ID_ROLE, version.id)
            item.setToolTip(0, str(checkpoints.get(version.id, version.checkpoint)))
            item.setToolTip(1, figure_scope(version.metrics)[1])
            if version.version == running:
                font = QFont()
                font.setBold(True)
                item.setFont(0, font)
            parent = items.get(version.parent_id)
            (parent.addChild(item) if parent is not None else self.tree.addTopLevelItem(item))
            items[version.id] = item
        self.tree.expandAll()
        for column in range(self.tree.columnCount()):
            self.tree.resizeColumnToContents(column)
        self._show_details()

    def _show_details(self) -> None:
        project = self.session.project
        if project is None:
            return
        item = self.tree.currentItem()
        versions = {v.id: v for v in project.models.list()}
        running = self.session.model.model_version if self.session.model is not None else None
        version = versions.get(item.data(0, ID_ROLE)) if item is not None else None
        if version is None:
            version = next((v for v in versions.values() if v.version == running), None)
        if version is None:
            self.details.setText("")
            return
        parent = versions.get(version.parent_id)
        self.details.setText(_describe(version, parent.name if parent else None,
                                       version.version == running))

    def row_texts(self) -> list[tuple[str, ...]]:
        """Every row's cells, depth first (what the coder reads)."""
        rows = []

        def walk(item: QTreeWidgetItem) -> None:
            rows.append(tuple(item.text(c) for c in range(self.tree.columnCount())))
            for i in range(item.childCount()):
                walk(item.child(i))

        for i in range(self.tree.topLevelItemCount()):
            walk(self.tree.topLevelItem(i))
        return rows

    def item_for(self, version_id: int) -> QTreeWidgetItem | None:
        found = [item for item in self.tree.findItems("", Qt.MatchFlag.MatchContains
                                                      | Qt.MatchFlag.MatchRecursive)
                 if item.data(0, ID_ROLE) == version_id]
        return found[0] if found else None

    def activate(self, version_id: int | None) -> None:
        project = self.session.project
        if version_id is None or project is None:
            return
        # The toolbar's resolution (session.models.model_choices): a stored path that no longer
        # resolves (the demo's working copy) falls back to the checkpoint of that name in weights/.
        choice = next((c for c in self.session.model_choices() if c.model_version_id == version_id),
                      None)
        if choice is not None:
            self.session.attempt(self.session.select_model, choice)

    def _on_activate_clicked(self) -> None:
        item = self.tree.currentItem()
        if item is not None:
            self.activate(item.data(0, ID_ROLE))
