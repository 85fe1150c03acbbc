"""Hostile and sloppy input to the store: huge-coordinate sheets, formulas in exports, bad JSON.

Each test here failed before the reliability pass (issue #15): memory blow-ups, live formulas,
tracebacks, or files left behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import openpyxl
import pytest
from test_store_fixtures import small_project

from microau_gui.store.export import export_casme2
from microau_gui.store.importers import KINDS
from microau_gui.store.importers.table import read_tables

ROOT = Path(__file__).resolve().parents[1]
MAX_RSS_MB = 300

# Runs in a child so its peak RSS is its own (VmHWM, Linux); a 2 GB address-space cap makes the unfixed reader
# fail fast instead of swapping the machine.
_CHILD = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    from microau_gui.core.errors import UserError
    from microau_gui.store.importers import import_dataset
    sheet, media = sys.argv[1], sys.argv[2]
    for kind in sys.argv[3:]:
        try:
            dataset = import_dataset(kind, sheet, media)
            print(kind, "ok", len(dataset.samples))
        except UserError as err:
            print(kind, "error", str(err).replace("\\n", " "))
    # VmHWM is this process image's own peak; ru_maxrss would carry over the forking parent's.
    hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    print("peak_mb", int(hwm.split()[1]) / 1024)
""")


def _run_importers(sheet: Path, media: Path) -> tuple[dict[str, str], float]:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(sheet), str(media), *KINDS],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
             "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    outcomes = {line.split()[0]: line for line in lines[:-1]}
    return outcomes, float(lines[-1].split()[1])


def _one_far_cell(path: Path) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Sheet1"
    sheet.append(["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame"])
    sheet["XFD1048576"] = "x"
    workbook.save(path)
    return path


def test_one_cell_at_xfd1048576_is_refused_in_bounded_memory_by_every_importer(tmp_path):
    sheet = _one_far_cell(tmp_path / "hostile.xlsx")
    assert sheet.stat().st_size < 10_000
    (tmp_path / "media").mkdir()
    outcomes, peak_mb = _run_importers(sheet, tmp_path / "media")
    assert set(outcomes) == set(KINDS)
    for kind, line in outcomes.items():
        assert "error" in line and "column 16384" in line, line
    assert peak_mb < MAX_RSS_MB, f"peak RSS {peak_mb:.0f} MB"


def test_a_false_dimension_claim_costs_nothing_and_data_still_imports(tmp_path):
    """A sheet that declares A1:XFD1048576 but holds a small table is read as the small table."""
    path = tmp_path / "claims.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for r in range(5):
        sheet.append([f"r{r}", r, None, "x"])
    workbook.save(path)
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "big.xlsx", "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b'<dimension ref="A1:D5"', b'<dimension ref="A1:XFD1048576"')
                assert b"XFD1048576" in data
            dst.writestr(item, data)
    (table,) = read_tables(tmp_path / "big.xlsx")
    assert [n for n, _ in table.rows] == [1, 2, 3, 4, 5]
    assert table.rows[1][1] == ("r1", 1, None, "x")


def test_rows_of_data_past_the_column_limit_are_one_line_errors(tmp_path):
    from microau_gui.core.errors import UserError

    rows = [["Subject", "Filename"] + [None] * 300 + ["far"]]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(",".join("" if v is None else v for v in r) for r in rows) + "\n")
    with pytest.raises(UserError, match="column 303"):
        read_tables(path)
    huge_field = tmp_path / "field.csv"
    huge_field.write_text('a,"' + "x" * 200_000 + '"\n')
    with pytest.raises(UserError, match="could not read field.csv"):
        read_tables(huge_field)


FORMULAS = ('=HYPERLINK("http://evil.example","click")', "=1+1", "+SUM(A1:A2)", "@cmd")


def test_xlsx_export_writes_formulas_as_text_and_round_trips(tmp_path, astronaut_path):
    project = small_project(tmp_path, astronaut_path)
    events = project.events()
    for event, text in zip(events, FORMULAS):
        project.update_event(event.id, emotion=text, objective_class=text)
    out = tmp_path / "export.xlsx"
    export_casme2(project, out)
    with zipfile.ZipFile(out) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml
    (table,) = read_tables(out)
    emotions = {cells[8] for _, cells in table.rows[1:]}
    assert set(FORMULAS[:len(events)]) <= emotions
    workbook = openpyxl.load_workbook(out)  # as Excel would see it: no cell is a formula
    assert all(c.data_type != "f" for row in workbook.active.iter_rows() for c in row)
    project.close()


def test_sheets_past_the_size_bounds_are_refused_before_they_are_read(tmp_path):
    from microau_gui.core.errors import UserError
    from microau_gui.store.importers import table

    big = tmp_path / "big.csv"
    with open(big, "w") as handle:
        handle.truncate(table.MAX_CSV_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(UserError, match="MB, more than a coding sheet needs"):
        read_tables(big)
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", b"<" + b"a" * table.MAX_UNPACKED_BYTES + b">")
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(UserError, match="unpacks to"):
        read_tables(bomb)
