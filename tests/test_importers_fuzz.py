"""Hypothesis fuzzing of every importer: random cells, types, merged cells and huge coordinates.

Whatever the sheet holds, an importer either returns a consistent Dataset or raises a one-line
UserError, and it reads the sheet in bounded memory (tracemalloc peak per sheet). Any other
exception, a multi-line message or a memory blow-up fails the test.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import tracemalloc
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sheet_fixtures import (
    CASME2_2019_HEADER,
    CASME3_HEADER,
    SAMM_HEADER,
    SAMM_LV_HEADER,
    SAMM_PREAMBLE,
    image_folder,
)

from microau_gui.core.errors import UserError
from microau_gui.store.importers import CSV_COLUMNS, import_dataset

MAX_PEAK_MB = 150  # python-level allocations while reading one fuzzed sheet
HEADERS = {
    "casme2": [CASME2_2019_HEADER],
    "samm": [*SAMM_PREAMBLE, SAMM_HEADER],
    "casme3": [CASME3_HEADER],
    "megc": [SAMM_LV_HEADER],
    "csv": [list(CSV_COLUMNS)],
}
SUBJECTS = ["01", "1", "006", 6, "spNO.1", "15", None, "", "sub01"]
CLIPS = ["EP01_01", "006_1_1", "a", "clip", "missing", None, "EP01_01/../../x"]


@pytest.fixture(scope="module")
def media_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz_media")
    image_folder(root / "sub01" / "EP01_01", range(1, 11))
    image_folder(root / "006" / "006_1_1", range(1, 11), pattern="006_{n:05d}.jpg")
    image_folder(root / "spNO.1" / "a" / "color", [1, 2, 3, 5, 8, 9])  # gaps
    image_folder(root / "15" / "clip", range(0, 10))
    image_folder(root / "clip", range(0, 10))
    return root


cells = st.one_of(
    st.none(),
    st.integers(-5, 12),
    st.integers(-2**63, 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["/", "?", "4+7+L10", "21", "L20+21", "ref(43)", "(R6 or R12)", "=1+1",
                     "1e400", "  ", "micro", "Macro - 1/2", "\u202e12", "x" * 300]),
    st.sampled_from(SUBJECTS),
    st.sampled_from(CLIPS),
    st.text(max_size=20),
    st.datetimes(min_value=dt.datetime(1901, 1, 1), max_value=dt.datetime(2100, 1, 1)),
)


@st.composite
def sheets(draw, kind: str):
    rows = [list(r) for r in HEADERS[kind]] if draw(st.booleans()) else []
    width = draw(st.integers(1, 14))
    for _ in range(draw(st.integers(0, 8))):
        rows.append([draw(cells) for _ in range(width)])
    merges = draw(st.lists(st.tuples(st.integers(1, 20), st.integers(1, 14),
                                     st.integers(0, 3), st.integers(0, 3)), max_size=3))
    far = draw(st.none() | st.tuples(st.integers(1, 1_048_576), st.integers(1, 16_384), cells))
    suffix = draw(st.sampled_from([".xlsx", ".xlsx", ".csv"]))
    return rows, merges, far, suffix


def _write(path: Path, rows, merges, far) -> Path:
    text = (str, int, float, bool, dt.datetime, type(None))
    if path.suffix == ".csv":
        with open(path, "w", encoding="utf-8", newline="") as handle:
            for row in rows:
                handle.write(",".join('"' + str(v).replace('"', '""') + '"' if v is not None
                                      else "" for v in row) + "\n")
        return path
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Sheet1"
    for r, row in enumerate(rows, 1):
        for c, value in enumerate(row, 1):
            if isinstance(value, str):
                value = openpyxl.cell.cell.ILLEGAL_CHARACTERS_RE.sub("", value)
            if isinstance(value, float) and value != value:
                value = None  # openpyxl cannot write NaN
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
                value = str(value)
            assert isinstance(value, text)
            sheet.cell(row=r, column=c, value=value)
    for r, c, dr, dc in merges:
        if dr or dc:
            sheet.merge_cells(start_row=r, start_column=c, end_row=r + dr, end_column=c + dc)
    if far is not None:
        r, c, value = far
        if isinstance(value, str):
            value = openpyxl.cell.cell.ILLEGAL_CHARACTERS_RE.sub("", value) or "x"
        if value is None or (isinstance(value, float) and value != value):
            value = "x"
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
            value = str(value)
        sheet.cell(row=r, column=c, value=value)
    workbook.save(path)
    return path


def _check(dataset) -> None:
    for sample in dataset.samples:
        assert 0 <= sample.onset <= sample.apex <= sample.offset
        assert sample.media_path.exists()
    assert all(i.action in ("fixed", "skipped", "noted") for i in dataset.report.issues)


@pytest.mark.parametrize("kind", ["casme2", "samm", "casme3", "megc", "csv"])
def test_importer_survives_random_sheets(kind, media_root):
    @settings(max_examples=12, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(sheet=sheets(kind))
    def fuzz(sheet):
        rows, merges, far, suffix = sheet
        with tempfile.TemporaryDirectory() as tmp:
            path = _write(Path(tmp) / f"coding{suffix}", rows, merges, far)
            tracemalloc.start()
            try:
                dataset = import_dataset(kind, path, media_root, fps=200.0)
            except UserError as err:
                assert "\n" not in str(err) and str(err), repr(err)
            else:
                _check(dataset)
            finally:
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
        assert peak < MAX_PEAK_MB * 2**20, f"peak {peak / 2**20:.0f} MB"

    fuzz()
