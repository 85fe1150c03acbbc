"""The project browser: subjects, their videos and the videos' events, with a filter.

Owns: `ProjectPanel`. May import PySide6, core and session.

The filter matches any word of a row (subject, video name, event id, AU string such as "4+7",
emotion, source, coder), case-insensitively; every word typed must match (AND). Parents of a
matching row stay visible so the match keeps its context. Double-click a video to open it;
click an event to select it (opening its video when needed) and go to its onset.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from microau_gui.session.session import ProjectSession
from microau_gui.session.records import Event, Video

KIND_ROLE = Qt.ItemDataRole.UserRole
ID_ROLE = Qt.ItemDataRole.UserRole + 1


class ProjectPanel(QWidget):
    """Subjects > videos > events of the open project."""

    def __init__(self, session: ProjectSession, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.title = QLabel("No project open")
        self.title.setObjectName("paneltitle")
        self.title.setWordWrap(True)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("filter: subject, video, AU (4+7), emotion …")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._apply_filter)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Item", "Frames", "AUs"])
        self.tree.setColumnWidth(0, 150)
        self.tree.setColumnWidth(1, 80)
        self.tree.setUniformRowHeights(True)
        self.tree.itemClicked.connect(self._on_tree_item_clicked)
        self.tree.itemDoubleClicked.connect(self._on_tree_item_double_clicked)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.filter)
        layout.addWidget(self.tree, 1)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(150)  # an import commits many batches: rebuild once
        self._refresh_timer.timeout.connect(self.refresh)

        session.project_opened.connect(lambda _p: self.refresh())
        session.project_closed.connect(self.refresh)
        session.videos_changed.connect(self._refresh_timer.start)
        session.events_changed.connect(self._refresh_timer.start)
        session.numbering.changed.connect(self._refresh_timer.start)
        session.video_opened.connect(lambda _v: self._mark_current())
        session.selection_changed.connect(lambda _e: self._mark_current())

    def refresh(self) -> None:
        self.tree.clear()
        project = self.session.project
        if project is None:
            self.title.setText("No project open")
            return
        videos = project.videos()
        events = project.events()
        read_only = f" · read-only ({project.read_only_reason})" if project.read_only else ""
        self.title.setText(f"<b>{project.path.name}</b><br>{len(videos)} videos · "
                           f"{len(events)} events{read_only}")
        by_video: dict[int, list[Event]] = {}
        for event in events:
            by_video.setdefault(event.video_id, []).append(event)
        subjects: dict[str, QTreeWidgetItem] = {}
        for video in videos:
            name = video.subject or "(no subject)"
            parent = subjects.get(name)
            if parent is None:
                parent = QTreeWidgetItem([f"subject {name}" if video.subject else name, "", ""])
                parent.setData(0, KIND_ROLE, "subject")
                self.tree.addTopLevelItem(parent)
                subjects[name] = parent
            parent.addChild(self._video_item(video, by_video.get(video.id, [])))
        self.tree.expandToDepth(0)
        self._apply_filter(self.filter.text())
        self._mark_current()

    def _video_item(self, video: Video, events: list[Event]) -> QTreeWidgetItem:
        item = QTreeWidgetItem([video.name, f"{video.n_frames} @ {video.fps:g}",
                                f"{len(events)} events"])
        item.setData(0, KIND_ROLE, "video")
        item.setData(0, ID_ROLE, video.id)
        item.setToolTip(0, str(video.path))
        for event in events:
            child = QTreeWidgetItem([
                f"E{event.id}" + (f" {event.emotion}" if event.emotion else ""),
                self.session.numbering.labels_of(video).label(event.onset, event.apex,
                                                              event.offset),
                event.aus_text or "—",
            ])
            child.setData(0, KIND_ROLE, "event")
            child.setData(0, ID_ROLE, event.id)
            child.setToolTip(0, f"{event.source} event" + (f" by {event.coder}" if event.coder else ""))
            item.addChild(child)
        return item

    def _mark_current(self) -> None:
        """Bold the open video and the selected event."""
        video_id = self.session.video.id if self.session.video is not None else None
        event_id = self.session.selected_event.id if self.session.selected_event else None
        for item in self._items():
            kind, item_id = item.data(0, KIND_ROLE), item.data(0, ID_ROLE)
            font = item.font(0)
            font.setBold((kind == "video" and item_id == video_id)
                         or (kind == "event" and item_id == event_id))
            item.setFont(0, font)
            if kind == "event" and item_id == event_id:
                self.tree.setCurrentItem(item)
        if event_id is None:  # deselected (Esc): no event row stays highlighted
            self.tree.clearSelection()
            self.tree.setCurrentItem(None)

    def _items(self):
        stack = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop()
            yield item
            stack.extend(item.child(i) for i in range(item.childCount()))

    def _apply_filter(self, text: str) -> None:
        words = text.lower().split()

        def visit(item: QTreeWidgetItem, parent_match: bool) -> bool:
            own = " ".join(item.text(c) for c in range(3)).lower() + " " + item.toolTip(0).lower()
            match = parent_match or all(w in own for w in words)
            child_match = False
            for i in range(item.childCount()):
                child_match |= visit(item.child(i), match)
            visible = match or child_match
            item.setHidden(not visible)
            if words and child_match:
                item.setExpanded(True)
            return visible

        for i in range(self.tree.topLevelItemCount()):
            visit(self.tree.topLevelItem(i), not words)

    def _on_tree_item_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        if item.data(0, KIND_ROLE) == "event":
            event_id = int(item.data(0, ID_ROLE))
            QTimer.singleShot(0, lambda: self.session.attempt(self.session.select_event, event_id))

    def _on_tree_item_double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        if item.data(0, KIND_ROLE) == "video":
            video_id = int(item.data(0, ID_ROLE))
            QTimer.singleShot(0, lambda: self.session.attempt(self.session.open_video, video_id))
