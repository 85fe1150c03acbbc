"""The main window: composes the views and panels around one ProjectSession and wires them.

Owns: `MainWindow`. May import PySide6, pyqtgraph, the gui modules and session. Holds no
annotation state and no undo history (both live in the session); each panel lives in its own
module and is placed here as a dock, so later panels (fine-tuning curves, suggestion and spotting
queues, agreement view) are added with `add_panel` without touching the others.

Layout: toolbar (model, overlays, reference) and the model banner on top; the video view with the
transport bar in the centre; docks: project browser (the model versions in a tab beside it) and
face crop (left, the reference view in a tab beside it), AU panel and dependency
view (right, the review queue in a tab beside the dependency view), timeline (bottom, the
inter-coder agreement view in a tab beside it, hidden until Review > Inter-coder agreement, and
the event table in another tab, Ctrl+T).

Blind coding mode (View > Blind coding mode, Ctrl+Shift+B; `set_blind`): the AU bars, the
heatmap on the video, the face crop, the AU dependencies, the review queue, the comparison
traces (lanes and AU-panel values), the model traces and candidates of the timeline and the other
coders' tiers are hidden, the review keys are disabled, and the status bar says "BLIND"; events marked meanwhile are
stored as coded blind (session.coder).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from microau_gui.core.errors import UserError, split_details
from microau_gui.core.types import MIN_EXPRESSION_S, FramePrediction
from microau_gui.gui.actions import MENUS, build_actions
from microau_gui.gui.agreement_panel import AgreementPanel
from microau_gui.gui.comparison_lanes import ComparisonLanes, ComparisonSources
from microau_gui.gui.au_panel import AUPanel
from microau_gui.gui.crop_view import FaceCropView
from microau_gui.gui.dependency_view import DependencyView
from microau_gui.gui.dialogs import ImportDialog, JobStrip, ShortcutsDialog
from microau_gui.gui.event_table import EventTablePanel
from microau_gui.gui.finetune_dialog import FinetuneDialog
from microau_gui.gui.formats_menu import install_format_menus
from microau_gui.gui.keymap import (
    apply_keymap,
    conflicts,
    describe_conflicts,
    load_keymap,
    store_coder,
    stored_coder,
)
from microau_gui.gui.model_panel import ModelBanner, ModelBar, ModelCardDialog
from microau_gui.gui.model_versions_panel import ModelVersionsPanel
from microau_gui.gui.overlay_bar import HEATMAP_AUTO, HEATMAP_MAX, OverlayBar
from microau_gui.gui.overlays import TOP_AU
from microau_gui.gui.project_panel import ProjectPanel
from microau_gui.gui.reference_view import ReferenceView
from microau_gui.gui.review_queue_panel import ReviewQueuePanel
from microau_gui.gui.timeline_view import TimelineView
from microau_gui.gui.transport import TransportBar
from microau_gui.gui.video_view import VideoView
from microau_gui.gui.view_menu import ViewMenu
from microau_gui.session.annotation import digit_aus
from microau_gui.session.messages import FrameLoaded, ModelLoaded
from microau_gui.session.playback import speed_label
from microau_gui.session.session import ProjectSession

COMPACT_WIDTH_PX = 1500  # narrower windows tab the side docks (see _size_docks)


def initial_size_px() -> tuple[int, int]:
    """1600x1000, or the screen's available area when smaller (a 1280x720 or 1366x768 laptop)."""
    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return 1600, 1000
    available = screen.availableGeometry()
    return min(1600, available.width()), min(1000, available.height())
MEDIA_FILTER = "Projects and videos (*.maus *.mp4 *.avi *.mov *.mkv *.m4v *.webm);;All files (*)"


class MainWindow(QMainWindow):
    def __init__(self, session: ProjectSession):
        super().__init__()
        self.session = session
        self.setWindowTitle("MicroAU Studio")
        self.resize(*initial_size_px())
        self.actions = build_actions(self)
        apply_keymap(self.actions, load_keymap())
        for name in ("heatmap", "regions", "face_box", "hud"):
            self.actions[name].setChecked(True)
        self.actions["play"].setIconText("Play ▶")
        self._unloaded_reason: str | None = None
        self._docks_sized = False
        self._error_box: QMessageBox | None = None

        self.banner = ModelBanner()
        self.video_view = VideoView()
        self.transport = TransportBar(session, self.actions)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.video_view, 1)
        layout.addWidget(self.transport)
        self.setCentralWidget(central)

        self.model_bar = ModelBar(session)
        self.model_bar.card_button.clicked.connect(self.show_model_card)
        self.overlay_bar = OverlayBar(session, self.actions)
        self.overlay_bar.changed.connect(self.sync_overlays)
        toolbar = QToolBar("Model and overlays")
        toolbar.setObjectName("main_toolbar")
        toolbar.setMovable(False)
        toolbar.addWidget(self.model_bar)
        toolbar.addSeparator()
        toolbar.addWidget(self.overlay_bar)
        self.addToolBar(toolbar)

        self.project_panel = ProjectPanel(session)
        self.crop_view = FaceCropView()
        self.crop_view.frame_label = lambda frame_idx: session.frames.label(frame_idx)
        self.video_view.frame_label = self.crop_view.frame_label
        self.au_panel = AUPanel(session)
        self.dependency_view = DependencyView(session)
        self.timeline = TimelineView(session)
        self.docks: dict[str, QDockWidget] = {}
        self.add_panel("project", "Project", self.project_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.add_panel("crop", "Face crop (stabilised)", self.crop_view,
                       Qt.DockWidgetArea.LeftDockWidgetArea)
        # The reference view sits in a tab behind the face crop: both are crops of the face.
        self.reference_view = ReferenceView(session)
        self.add_panel("reference", "Reference frame", self.reference_view,
                       Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tabifyDockWidget(self.docks["crop"], self.docks["reference"])
        self.docks["crop"].raise_()
        self.add_panel("aus", "Action units", self.au_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.add_panel("dependencies", "AU dependencies", self.dependency_view,
                       Qt.DockWidgetArea.RightDockWidgetArea)
        self.add_panel("timeline", "Timeline", self.timeline, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.review_panel = ReviewQueuePanel(session, self.actions)
        self.add_panel("review", "Review queue", self.review_panel,
                       Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.docks["dependencies"], self.docks["review"])
        self.docks["dependencies"].raise_()
        self.agreement_panel = AgreementPanel(session)
        self.add_panel("agreement", "Inter-coder agreement", self.agreement_panel,
                       Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.docks["timeline"], self.docks["agreement"])
        self.docks["agreement"].hide()
        self.event_table = EventTablePanel(session)
        self.add_panel("events", "Event table", self.event_table,
                       Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.docks["timeline"], self.docks["events"])
        self.docks["timeline"].raise_()
        self.versions_panel = ModelVersionsPanel(session, self.actions)
        self.add_panel("versions", "Model versions", self.versions_panel,
                       Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tabifyDockWidget(self.docks["project"], self.docks["versions"])
        self.docks["project"].raise_()
        # Other tools' AU traces beside the model's (File > Import), toggled per source in the
        # AU panel's header, their values at the playhead beside each AU row.
        self.interchange = session.interchange
        self.comparison_lanes = ComparisonLanes(self.timeline, self.interchange)
        self.comparison_sources = ComparisonSources(self.interchange, self.comparison_lanes)
        self.au_panel.attach_comparison(self.comparison_sources)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.view = ViewMenu(self)  # theme, text size, frame numbering (stored per user)
        self._build_menus()
        install_format_menus(self)
        self.job_strip = JobStrip()
        self.job_strip.cancel.clicked.connect(self.session.cancel_analysis)
        self.statusBar().addPermanentWidget(self.job_strip)
        self.proxy_strip = JobStrip()  # the seek proxy of a long-GOP video, built meanwhile
        self.proxy_strip.cancel.clicked.connect(self.session.proxies.close)
        self.statusBar().addPermanentWidget(self.proxy_strip)
        self.distill_strip = JobStrip()  # Model > Distil a student…, trained meanwhile
        self.distill_strip.cancel.clicked.connect(self.session.cancel_distillation)
        self.statusBar().addPermanentWidget(self.distill_strip)
        self._connect_session()
        self.au_panel.entry_finished.connect(self.return_focus)
        # The default heatmap follows the AU under the mouse, else the focused AU.
        self.video_view.au_hovered.connect(lambda _code: self.sync_overlays())
        self.au_panel.focus_changed.connect(lambda _code: self.sync_overlays())
        self.transport.frame_box.editingFinished.connect(self.return_focus)
        self.video_view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.sync_overlays()
        self._update_hud()
        self.report_key_conflicts()
        self.coder_label = QLabel()
        self.coder_label.setToolTip("the coder written on every event and note you create "
                                    "(File > Switch coder, Ctrl+Shift+U)")
        self.statusBar().addPermanentWidget(self.coder_label)
        session.coder.changed.connect(self._on_coder_changed)
        session.coder.set_name(stored_coder())
        self._on_coder_changed(session.coder.name)
        self.blind_label = QLabel()
        self.blind_label.setObjectName("blind_label")
        self.blind_label.setToolTip("blind coding mode: the model and the other coders are "
                                    "hidden; events you mark are stored as coded blind "
                                    "(View > Blind coding mode, Ctrl+Shift+B)")
        self.statusBar().addPermanentWidget(self.blind_label)
        self._blind_hidden_docks: list[str] = []
        self._build_coder_tiers_menu()
        session.events_changed.connect(self._build_coder_tiers_menu)
        session.coder.changed.connect(lambda _name: self._build_coder_tiers_menu())
        self.view.apply()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt virtual
        super().showEvent(event)
        if not self._docks_sized:  # sizes apply once the window has its real geometry
            self._docks_sized = True
            self._size_docks()
            # Before the docks were tabbed they stood in one column and stretched the window
            # past a 720-px screen (1280x864 under Xvfb at 1280x720): fit it to the screen again.
            fit_w, fit_h = initial_size_px()
            if self.width() > fit_w or self.height() > fit_h:
                self.resize(min(self.width(), fit_w), min(self.height(), fit_h))
                self._size_docks()

    def _size_docks(self) -> None:
        width = self.width()
        if width < COMPACT_WIDTH_PX:  # a laptop screen: each side column is one tab group
            self.tabifyDockWidget(self.docks["project"], self.docks["crop"])
            self.tabifyDockWidget(self.docks["project"], self.docks["reference"])
            self.tabifyDockWidget(self.docks["aus"], self.docks["dependencies"])
            self.tabifyDockWidget(self.docks["aus"], self.docks["review"])
            self.docks["project"].raise_()
            self.docks["aus"].raise_()
        self.resizeDocks([self.docks["project"], self.docks["aus"]],
                         [int(width * 0.16), int(width * 0.31)], Qt.Orientation.Horizontal)
        height = self.height()
        self.resizeDocks([self.docks["project"], self.docks["crop"]],
                         [int(height * 0.45), int(height * 0.4)], Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["aus"], self.docks["dependencies"]],
                         [int(height * 0.5), int(height * 0.35)], Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["timeline"]], [int(height * 0.33)], Qt.Orientation.Vertical)

    # -- composition ---------------------------------------------------------------------------

    def add_panel(self, name: str, title: str, widget: QWidget,
                  area: Qt.DockWidgetArea) -> QDockWidget:
        """Dock a panel; its show/hide toggle goes into the View menu."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{name}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        self.docks[name] = dock
        return dock

    def _build_menus(self) -> None:
        # File has a mnemonic (Alt+F) so File > Import / Export are reachable by keys; the other
        # menus' first letters are window shortcuts already (Alt+A, Alt+E, Alt+R ...).
        menus = {name: self.menuBar().addMenu("&File" if name == "File" else name)
                 for name in MENUS}
        for name, action in self.actions.items():
            menu = action.property("menu")
            # Undo and Redo are put first in Edit below, in that order (adding them here too
            # listed Redo above Undo)
            if (menu in menus and not name.startswith("toggle_au_")
                    and name not in ("undo", "redo")):
                menus[menu].addAction(action)
        digits = menus["Annotate"].addMenu("Toggle AU (digit keys)")
        for name, action in self.actions.items():
            if name.startswith("toggle_au_"):
                digits.addAction(action)
        self.view.install(menus["View"])
        menus["View"].addSeparator()
        for dock in self.docks.values():
            menus["View"].addAction(dock.toggleViewAction())
        menus["Edit"].insertActions(menus["Edit"].actions()[0] if menus["Edit"].actions() else None,
                                    [self.actions["undo"], self.actions["redo"]])

    def _connect_session(self) -> None:
        s = self.session
        s.frame_loaded.connect(self._on_session_frame_loaded)
        s.prediction_made.connect(self._on_session_prediction_made)
        s.prediction_kept.connect(self._on_session_prediction_made)  # drawn faded by the views
        s.prediction_cleared.connect(self._on_session_prediction_cleared)
        s.model_loaded.connect(self._on_session_model_loaded)
        s.model_unloaded.connect(self._on_session_model_unloaded)
        s.project_opened.connect(lambda _p: self._update_title())
        s.video_opened.connect(self._on_session_video_opened)
        s.position_changed.connect(lambda _f: self._update_hud())
        s.numbering.changed.connect(self._update_hud)
        s.reference_changed.connect(lambda _p, _r: self._update_hud())
        s.playing_changed.connect(self._on_session_playing_changed)
        s.speed_changed.connect(lambda _s: self._update_hud())
        s.loop_changed.connect(self._on_session_loop_changed)
        s.status_posted.connect(lambda text: self.statusBar().showMessage(text, 8000))
        s.failed.connect(self.show_error)
        s.analysis_progressed.connect(self.job_strip.show_progress)
        s.analysis_finished.connect(self.job_strip.finish)
        s.models.distillation.progressed.connect(self.distill_strip.show_progress)
        s.models.distillation.finished.connect(self.distill_strip.finish)
        s.models.distillation.finished.connect(self._on_distillation_finished)
        s.proxies.progressed.connect(self.proxy_strip.show_progress)
        s.proxies.finished.connect(self.proxy_strip.finish)
        s.review.spotting_finished.connect(
            lambda done: None if done.cancelled else self.show_panel("review"))

    # -- session -> window ---------------------------------------------------------------------

    def _on_session_frame_loaded(self, loaded: FrameLoaded) -> None:
        self.video_view.set_frame(loaded)
        self.crop_view.set_frame(loaded)
        self._update_hud()

    def _on_session_prediction_made(self, prediction: FramePrediction) -> None:
        self.video_view.set_prediction(prediction)
        self.crop_view.set_prediction(prediction)
        self._update_hud()

    def _on_session_prediction_cleared(self) -> None:
        self.video_view.set_prediction(None)
        self.crop_view.set_prediction(None)
        self._update_hud()

    def _on_session_model_loaded(self, loaded: ModelLoaded) -> None:
        self._unloaded_reason = None
        self.banner.show_for(loaded)
        self.overlay_bar.set_vocab(loaded.vocab)
        self.crop_view.crop_size_px = self.session.crop_size_px()
        mapping = digit_aus(loaded.vocab)
        for digit, code in mapping.items():
            self.actions[f"toggle_au_{digit}"].setText(f"Toggle {code}")
        self._update_title()
        self._update_hud()

    def _on_session_model_unloaded(self, why: str) -> None:
        self._unloaded_reason = why
        self.banner.show_for(self.session.model, why)
        self._update_title()
        self._update_hud()

    def _on_session_video_opened(self, _video) -> None:
        self.video_view.show_placeholder(None)
        self._update_title()

    def _on_session_playing_changed(self, playing: bool) -> None:
        self.actions["play"].setIconText("Pause ❚❚" if playing else "Play ▶")
        self._update_hud()

    def _on_session_loop_changed(self, on: bool) -> None:
        self.actions["loop"].setChecked(on)
        self._update_hud()

    def _update_title(self) -> None:
        parts = ["MicroAU Studio"]
        if self.session.project is not None:
            parts.append(self.session.project.path.name)
        if self.session.video is not None:
            parts.append(self.session.video.name)
        title = " — ".join(parts)
        model = self.session.model
        if model is not None and not model.pretrained_loaded:
            title += "  [NO PRETRAINED BACKBONE]"
        if model is not None and model.is_demo:
            title += "  [DEMO MODEL]"
        self.setWindowTitle(title)

    def _update_hud(self) -> None:
        s = self.session
        if s.video is None:
            self.video_view.set_hud(["no video open"])
            return
        shown = s.displayed_frame_idx
        frames = s.frames
        lines = [
            f"frame {frames.label(shown) if shown is not None else '…'} / "
            f"{frames.label(s.n_frames - 1)}   {frames.timecode(shown or 0)}   {s.fps:g} fps",
            # The reference of the frame on screen (while playing, the playhead runs ahead of it).
            f"ref {frames.label(s.reference_idx(shown))} ({s.reference_policy.value})",
        ]
        model = s.model
        if model is None:
            lines.append("model: none" + (" (see banner)" if self._unloaded_reason else " (loading…)"))
        else:
            lines.append(f"model {model.model_version} · {model.device.upper()} {model.speed_mode}"
                         + (" · DEMO" if model.is_demo else ""))
            pred, drawn = s.prediction, s.shown_prediction
            if pred is not None and pred.frame_idx == shown:
                lines.append("prediction ✓" if pred.face_found else "prediction: no face found")
            elif drawn is not None:
                lines.append(f"prediction: frame {frames.label(drawn.frame_idx)}'s, faded "
                             "(this one pending)")
            else:
                lines.append("prediction: running…")
        if s.playing:
            lines.append(f"▶ {speed_label(s.speed)}" + (" ⟲ loop" if s.looping else ""))
        elif s.looping:
            lines.append("⟲ loop on")
        self.video_view.set_hud(lines)

    # -- window commands (called by gui.actions) -----------------------------------------------

    def run_guarded(self, run) -> None:
        """Run an action; a UserError becomes a message box instead of an exception."""
        try:
            run(self)
        except UserError as err:
            self.show_error(str(err))

    def show_error(self, message: str) -> None:
        """One non-blocking message box; later failures are appended to it while it is open.

        An internal error (core.errors.internal_error_text) shows its sentence; the exception
        and traceback sit behind the box's "Show Details..." button, never in the text."""
        sentence, details = split_details(message)
        sentence = sentence[:1].upper() + sentence[1:]
        self.statusBar().showMessage(sentence, 10000)
        box = self._error_box
        if box is not None and box.isVisible():
            if sentence not in box.text():
                box.setText(box.text() + "\n\n" + sentence)
            if details and details not in box.detailedText():
                box.setDetailedText("\n\n".join(d for d in (box.detailedText(), details) if d))
            return
        box = QMessageBox(QMessageBox.Icon.Warning, "MicroAU Studio", sentence,
                          QMessageBox.StandardButton.Ok, self)
        if details:
            box.setDetailedText(details)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._error_box = box
        box.finished.connect(self._on_error_box_finished)
        box.show()

    def _on_error_box_finished(self, _result: int) -> None:
        self._error_box = None

    def sync_overlays(self) -> None:
        state = self.overlay_bar.state()
        state["heatmap_au"] = self.heatmap_au()
        if self.session.coder.blind:  # nothing of the model on the video
            state = {**state, "heatmap": False}
        self.video_view.set_overlays(**state)
        self.crop_view.set_style(state["heatmap"], state["heatmap_opacity"], state["heatmap_au"])

    def heatmap_au(self) -> str | None:
        """The heatmap's AU for the views: a code, None (the maximum over AUs) or TOP_AU."""
        choice = self.overlay_bar.state()["heatmap_au"]
        if choice == HEATMAP_MAX:
            return None
        if choice == HEATMAP_AUTO:
            return self.video_view.hovered_au or self.au_panel.focused_code or TOP_AU
        return choice

    def cycle_heatmap_au(self, step: int) -> None:
        self.overlay_bar.cycle_au(step)

    def report_key_conflicts(self) -> str:
        """One status line naming every key bound twice (such a key does nothing in Qt)."""
        found = conflicts(self.actions.values())
        text = (f"key conflicts: {describe_conflicts(found)} (Help > Shortcuts rebinds keys)"
                if found else "")
        if text:
            self.statusBar().showMessage(text, 15000)
        return text

    def _on_coder_changed(self, name: str) -> None:
        self.coder_label.setText(f"coder: {name}" if name else "coder: (not set)")

    # blind coding: what could anchor the coder
    BLIND_DOCKS = ("crop", "dependencies", "review", "versions")
    BLIND_ACTIONS = ("heatmap", "review_next", "review_previous", "review_accept",
                     "review_reject", "spot_video", "suggest", "heatmap_next_au", "model_card")

    def set_blind(self, on: bool) -> None:
        """Switch blind coding mode (see the module docstring for what it hides)."""
        self.session.coder.set_blind(on)
        self.actions["blind"].setChecked(on)
        if on:
            self._blind_hidden_docks = [n for n in self.BLIND_DOCKS
                                        if not self.docks[n].isHidden()]
            for name in self._blind_hidden_docks:
                self.docks[name].hide()
        else:
            for name in self._blind_hidden_docks:
                self.docks[name].show()
            self._blind_hidden_docks = []
        for name in self.BLIND_ACTIONS:
            self.actions[name].setEnabled(not on)
        for name in self.BLIND_DOCKS:
            self.docks[name].toggleViewAction().setEnabled(not on)
        self.timeline.set_blind(on)
        self.comparison_lanes.blind = on
        self.comparison_lanes.refresh()
        self.sync_overlays()
        self.blind_label.setText("BLIND coding: model and other coders hidden" if on else "")
        self.blind_label.setStyleSheet("color: #ffb040; font-weight: bold;" if on else "")
        self.statusBar().showMessage(
            "blind coding on: events you mark now are stored as coded blind" if on
            else "blind coding off: the model and the other coders are shown again", 8000)
        self._build_coder_tiers_menu()

    def _build_coder_tiers_menu(self) -> None:
        """View > Coder tiers: one check per other coder of the video (the tier is shown)."""
        menu = getattr(self, "_coder_tiers_menu", None)
        if menu is None:
            view = next(a.menu() for a in self.menuBar().actions()
                        if a.menu() is not None and a.text().replace("&", "") == "View")
            menu = self._coder_tiers_menu = view.addMenu("Coder tiers")
            menu.setObjectName("menu_coder_tiers")
        menu.clear()
        coders = self.timeline.coders()
        if not coders:
            menu.addAction("(no other coder in this video)").setEnabled(False)
        for coder in coders:
            action = menu.addAction(coder or "(no coder name)")
            action.setObjectName(f"tier_{coder}")
            action.setCheckable(True)
            action.setChecked(coder not in self.timeline.hidden_coders)
            action.setEnabled(not self.session.coder.blind)
            action.toggled.connect(lambda on, c=coder: self.timeline.set_coder_visible(c, on))

    def show_event_table(self) -> None:
        """Ctrl+T: the event table, with the keys (Enter jumps, Delete deletes the rows)."""
        self.show_panel("events")
        self.event_table.table.setFocus(Qt.FocusReason.ShortcutFocusReason)
        if self.event_table.table.rowCount() and not self.event_table.selected_event_ids():
            self.event_table.table.selectRow(0)

    def delete_events(self) -> None:
        """Delete: the event table's selected rows while it has the keys, else the selected
        event."""
        if self.event_table.table.hasFocus() and self.event_table.selected_event_ids():
            self.event_table.delete_selected()
        else:
            self.session.delete_selected_event()

    def ask_coder(self) -> QInputDialog:
        """File > Switch coder: a non-modal question; OK stores the name for this user."""
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Coder")
        dialog.setLabelText("Your name or initials, written on every event and note you create "
                            "(inter-coder agreement compares coders by it):")
        dialog.setTextValue(self.session.coder.name)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.textValueSelected.connect(self.set_coder)
        dialog.open()
        return dialog

    def _on_distillation_finished(self, done) -> None:
        self.statusBar().showMessage(done.summary, 10000)

    def ask_student_name(self) -> QInputDialog:
        """Model > Distil a student…: a non-modal question for the student's name; OK starts the
        distillation in the background (progress and Cancel in the status bar)."""
        if self.session.model is None:
            raise UserError("wait for the model to load: it is the teacher the student learns from")
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Distil a student")
        dialog.setLabelText(f"The loaded model ({self.session.model.model_version}) teaches a tiny\n"
                            "student on this video and on synthetic clips. The student then draws\n"
                            "the dense traces; the teacher runs at event apexes and on the paused\n"
                            "frame. Progress and Cancel appear in the status bar.\n\n"
                            "Name of the student (saved in the weights folder):")
        dialog.setTextValue(f"{self.session.model.card.name}-student")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.textValueSelected.connect(
            lambda name: self.run_guarded(lambda w: w.session.distil_student(name)))
        dialog.open()
        return dialog

    def set_coder(self, name: str) -> None:
        self.session.coder.set_name(name)
        store_coder(self.session.coder.name)
        self.statusBar().showMessage(f"coding as {self.session.coder.name or '(no name)'}", 6000)
        self.return_focus()

    def return_focus(self) -> None:
        """Give the keys back to the window: after Ctrl+G + Enter, quick entry or Esc, Space,
        I/A/O and the digits act at once instead of typing into a field."""
        self.video_view.setFocus(Qt.FocusReason.OtherFocusReason)

    def cancel(self) -> None:
        """Esc: leave a text field if one has the keys, else cancel the mark or deselect."""
        focused = QApplication.focusWidget()
        if isinstance(focused, (QLineEdit, QAbstractSpinBox)):
            if focused is self.au_panel.quick_entry:
                focused.clear()
            self.return_focus()
            return
        self.session.cancel_mark()

    def toggle_digit(self, digit: str) -> None:
        """Digit keys: toggle the digit's AU (session.annotation.digit_aus); it becomes the
        focused AU for the side and intensity keys."""
        code = digit_aus(self.session.vocab).get(digit)
        if code is not None:
            self.au_panel.toggle(code)

    def focus_frame_box(self) -> None:
        self.transport.frame_box.setFocus()
        self.transport.frame_box.selectAll()

    def use_fixed_reference(self) -> None:
        self.session.set_reference_policy("fixed", fixed_idx=self.session.frame_idx)
        self.overlay_bar.reference.setCurrentIndex(self.overlay_bar.reference.findData("fixed"))
        self.statusBar().showMessage(
            f"reference fixed at frame {self.session.frames.label(self.session.frame_idx)}", 6000)

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video or project", "", MEDIA_FILTER)
        if path:
            self.session.open_path(path)

    def add_video_dialog(self) -> None:
        """File > Add video to this project: another video (another subject, for agreement
        and fine-tuning across subjects) in the open project, opened at once."""
        if self.session.project is None:
            raise UserError("open a project or video first; the video is added to its project")
        path, _ = QFileDialog.getOpenFileName(self, "Add a video to this project", "",
                                              MEDIA_FILTER)
        if path:
            self.session.add_video(path)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open image folder (one clip)")
        if path:
            self.session.open_path(path)

    def relink_dialog(self) -> None:
        """File > Relink video…: the video whose media is missing (asked when several are; the
        open one when none is), then its new file or folder (`ProjectSession.relink_video`)."""
        videos = self.session.missing_videos() or (
            [self.session.video] if self.session.video is not None else [])
        if not videos:
            raise UserError("open a project first; relinking points one of its videos at its media")
        video = videos[0]
        if len(videos) > 1:
            names = [f"{v.name}  ({v.path})" for v in videos]
            name, ok = QInputDialog.getItem(self, "Relink video", "Media missing for:", names, 0,
                                            False)
            if not ok:
                return
            video = videos[names.index(name)]
        if video.path.suffix:
            path, _ = QFileDialog.getOpenFileName(self, f"New place of {video.name}", "",
                                                  MEDIA_FILTER)
        else:
            path = QFileDialog.getExistingDirectory(self, f"New place of {video.name} (image folder)")
        if path:
            self.session.relink_video(video.id, path)

    def show_panel(self, name: str, focus: QWidget | None = None) -> None:
        """Show and raise a dock; `focus`: the widget of it that gets the keys."""
        self.docks[name].show()
        self.docks[name].raise_()
        if focus is not None:
            focus.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def spot_video(self) -> None:
        self.session.review.spot_video()
        self.show_panel("review")

    def accept_review_item(self) -> QMessageBox | None:
        """Y: accept the review item; one that would add an event shorter than the shortest
        plausible expression (core.types.MIN_EXPRESSION_S) asks first, since it would enter
        the fine-tune set as a real expression. Returns the question box when it asks."""
        review = self.session.review
        queue = review.queue
        if queue.current is None or not queue.items:
            review.accept()
            return None
        item = queue.items[queue.current]
        fps = self.session.fps or 0.0
        n_frames = item.offset - item.onset + 1
        if item.event_id is not None or fps <= 0 or n_frames / fps >= MIN_EXPRESSION_S:
            review.accept()
            return None
        box = QMessageBox(
            QMessageBox.Icon.Question, "Accept a very short event?",
            f"This adds an event of {n_frames} frame{'s' if n_frames > 1 else ''} "
            f"({1000 * n_frames / fps:.0f} ms), shorter than the shortest plausible expression "
            f"({1000 * MIN_EXPRESSION_S:.0f} ms). It would enter the fine-tune set as a real "
            "expression. Accept it anyway?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        yes = box.button(QMessageBox.StandardButton.Yes)
        box.buttonClicked.connect(lambda button: review.accept() if button is yes else None)
        box.open()
        return box

    def suggest_review(self) -> None:
        self.session.review.suggest()
        self.show_panel("review")

    def import_dialog(self) -> None:
        dialog = ImportDialog(self.session, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def analyze_video(self) -> None:
        self.session.analyze_video()
        self.statusBar().showMessage("analysing the video in the background; the timeline fills "
                                     "in as it goes", 6000)

    def show_model_card(self) -> None:
        if self.session.model is None:
            raise UserError("no model is loaded yet")
        dialog = ModelCardDialog(self.session.model, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def show_finetune_dialog(self) -> FinetuneDialog:
        if self.session.model is None or self.session.project is None:
            raise UserError("open a project and wait for its model to load before fine-tuning")
        for dialog in self.findChildren(FinetuneDialog):
            if dialog.isVisible():  # one at a time: it may be training
                dialog.raise_()
                dialog.activateWindow()
                return dialog
        dialog = FinetuneDialog(self.session, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()  # not modal: the coder keeps working while it trains
        return dialog

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self.findChildren(QAction), self.session.vocab, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def show_about(self) -> None:
        QMessageBox.about(self, "About MicroAU Studio",
                          "MicroAU Studio: micro-expression action-unit review, annotation and "
                          "Micro-AU CLIP fine-tuning.")

    def show_placeholder(self, text: str) -> None:
        self.video_view.show_placeholder(text)
        self.video_view.set_hud([])

    # -- shutdown ------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt virtual
        """Stop playback and every worker and join their threads before the window goes."""
        self.session.close()
        event.accept()

