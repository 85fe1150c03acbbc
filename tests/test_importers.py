"""Dataset importers on sheets written in each real layout (tests/sheet_fixtures.py), with their quirks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sheet_fixtures import (
    casme2_sheet,
    casme3_sheet,
    image_folder,
    megc_casme_sq_sheet,
    samm_lv_sheet,
    samm_sheet,
    write_csv,
    write_xlsx,
)

from microau_gui.core.aus import AUCode, Side
from microau_gui.core.errors import UserError
from microau_gui.media import frame_index, open_media, write_video
from microau_gui.store.importers import import_dataset, scan_image_folder


def by_row(dataset):
    return {s.row: s for s in dataset.samples}


def issues_of(dataset, row):
    return [str(i) for i in dataset.report.issues if i.row == row]


@pytest.fixture()
def casme2_root(tmp_path) -> Path:
    root = tmp_path / "CASME2_RAW_selected"
    image_folder(root / "sub01" / "EP02_01f", range(46, 86))  # img46.jpg ... img85.jpg
    image_folder(root / "sub02" / "EP09_04", range(1, 31))
    image_folder(root / "sub17" / "EP15_03", range(100, 140))
    return root


CASME2_ROWS = [
    # subject as text, AU string with side, apex '/'
    ("01", "EP02_01f", 59, "/", 77, "4+7+L10", "disgust", "IV"),
    # subject as a number, AU as a number cell
    (2, "EP09_04", 3, 10, 25, 12, "happiness", 1),
    # 2014-style unknown AUs
    ("17", "EP15_03", 101, 110, 125, "?", "others", "VII"),
    # the clip folder is missing
    ("02", "EP01_11f", 5, 9, 20, 14, "repression", "VI"),
]


@pytest.mark.parametrize("layout,suffix", [("2014", ".xlsx"), ("2019", ".xlsx"), ("2019", ".csv")])
def test_casme2_both_layouts(tmp_path, casme2_root, layout, suffix):
    sheet = casme2_sheet(tmp_path / f"CASME2-coding-{layout}{suffix}", CASME2_ROWS, layout)
    dataset = import_dataset("casme2", sheet, casme2_root)
    assert dataset.kind == "casme2" and dataset.report.n_rows == 4
    assert dataset.subjects == ("01", "02", "17")
    rows = by_row(dataset)
    assert sorted(rows) == [2, 3, 4]

    first = rows[2]
    assert (first.subject, first.clip) == ("01", "EP02_01f")
    assert first.media_path == casme2_root.absolute() / "sub01" / "EP02_01f"
    # Sheet numbers 59..77 in a folder starting at img46: frame_idx 13..31, apex the middle.
    assert (first.onset, first.apex, first.offset) == (13, 22, 31)
    assert (first.onset_number, first.apex_number, first.offset_number) == (59, None, 77)
    assert first.aus == (AUCode(4), AUCode(7), AUCode(10, Side.LEFT))
    assert first.emotion == "disgust"
    assert any("apex is '/'" in i and "middle frame 68" in i for i in issues_of(dataset, 2))

    second = rows[3]
    assert second.subject == "02"  # the number 2 becomes the folder id
    assert (second.onset, second.apex, second.offset) == (2, 9, 24)
    assert second.aus == (AUCode(12),)

    unknown = rows[4]
    assert unknown.aus == ()
    assert any("'?'" in i and "unknown" in i for i in issues_of(dataset, 4))

    assert any("skipped" in i and "sub02/EP01_11f is missing" in i for i in issues_of(dataset, 5))
    expected_classes = {2: "IV", 3: "1", 4: "VII"} if layout == "2019" else {2: None, 3: None, 4: None}
    assert {r: s.objective_class for r, s in rows.items()} == expected_classes
    assert all(s.expression_type == "micro" for s in dataset.samples)


def test_casme2_row_problems_are_fixed_or_skipped_with_reasons(tmp_path, casme2_root):
    rows = [
        ("01", "EP02_01f", 50, 90, 60, "1+2", "surprise", "V"),  # apex outside the clip
        ("01", "EP02_01f", 51, 70, 61, "1+2", "surprise", "V"),  # apex after offset
        ("01", "EP02_01f", 70, 72, 60, "1+2", "surprise", "V"),  # offset before onset
        ("01", "EP02_01f", 40, 50, 60, "1+2", "surprise", "V"),  # onset not in the clip (starts at 46)
        ("01", "EP02_01f", "x", 50, 60, "1+2", "surprise", "V"),  # onset not a number
        ("01", "EP02_01f", 52, 55, 62, "AU4 + R12C + blink", "others", "VII"),  # one unknown token
        (None, "EP02_01f", 50, 55, 60, "4", "others", "VII"),  # no subject
        ("01", "EP02_01f", 50, 52, 60, "1+2", "surprise", "V"),  # repeats the row with onset 50..60
    ]
    dataset = import_dataset("casme2", casme2_sheet(tmp_path / "c.xlsx", rows), casme2_root)
    samples = by_row(dataset)
    assert sorted(samples) == [2, 3, 7]
    assert (samples[2].onset, samples[2].apex, samples[2].offset) == (4, 9, 14)
    assert (samples[3].onset, samples[3].apex, samples[3].offset) == (5, 10, 15)
    assert samples[3].apex_number == 56  # the number of the frame actually used
    assert samples[7].aus == (AUCode(4), AUCode(12, Side.RIGHT, "C"))
    assert any("not in sub01/EP02_01f (frames 46-85)" in i for i in issues_of(dataset, 2))
    assert any("outside onset 51 - offset 61" in i for i in issues_of(dataset, 3))
    assert issues_of(dataset, 4) == ["row 4: skipped: offset frame 60 comes before onset frame 70"]
    assert issues_of(dataset, 5) == ["row 5: skipped: onset frame 40 is not in sub01/EP02_01f (frames 46-85)"]
    assert issues_of(dataset, 6) == ["row 6: skipped: onset 'x' is not a frame number"]
    assert any("kept in the cell text: 'blink'" in i for i in issues_of(dataset, 7))
    assert issues_of(dataset, 8) == ["row 8: skipped: no subject"]
    assert issues_of(dataset, 9) == ["row 9: skipped: repeats row 2 (same subject, clip, onset and offset)"]
    assert dataset.report.n_rows == 8
    assert len(dataset.report.skipped) == 5


def test_samm_preamble_sheet_and_au_strings(tmp_path):
    root = tmp_path / "SAMM"
    image_folder(root / "006" / "006_1_2", range(5550, 5600), pattern="006_{n:05d}.jpg")
    image_folder(root / "011" / "011_2_3", range(1, 61), pattern="011_{n:04d}.jpg")
    rows = [
        (6, "006_1_2", 5562, 5575, 5590, "A12B+ref(43)", "Happiness", 1),
        (11, "011_2_3", 10, 25, 40, "(R6 or R12)+7B", "Other", 7),
        (7, "007_3_1", 10, 20, 30, "4", "Anger", 2),  # no such clip
    ]
    sheet = samm_sheet(tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx", rows)
    dataset = import_dataset("samm", sheet, root)
    samples = by_row(dataset)
    header_row = 14  # 13 preamble rows, then the header
    first, second = samples[header_row + 1], samples[header_row + 2]
    assert (first.subject, first.clip, first.onset, first.apex, first.offset) == ("006", "006_1_2", 12, 25, 40)
    assert first.aus == (AUCode(12, intensity="B", asymmetric=True), AUCode(43, uncertain=True))
    assert (first.emotion, first.objective_class) == ("Happiness", "1")
    assert second.subject == "011"
    assert set(second.aus) == {AUCode(6, Side.RIGHT, uncertain=True), AUCode(12, Side.RIGHT, uncertain=True),
                               AUCode(7, intensity="B")}
    assert issues_of(dataset, header_row + 3) == [
        f"row {header_row + 3}: skipped: clip folder 007/007_3_1 is missing from {root.absolute()}"]
    assert dataset.report.n_rows == 3  # the preamble and the other sheet are not rows


def test_casme3_all_text_cells_and_colour_folder(tmp_path):
    root = tmp_path / "part_A"
    image_folder(root / "spNO.1" / "a" / "color", range(300, 420))
    image_folder(root / "spNO.1" / "a" / "depth", range(300, 420), pattern="{n}.png")
    image_folder(root / "spNO.2" / "f" / "color", range(1, 100))
    rows = [
        ("spNO.1", "a", 355, 361, 370, "L1+L2", "surprise", "surprise"),
        ("spNO.2", "F", 10, 14, 22, "4+7", "disgust", "disgust"),  # folder is 'f'
        ("spNO.9", "a", 10, 14, 22, "4", "others", "others"),
    ]
    dataset = import_dataset("casme3", casme3_sheet(tmp_path / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", rows), root)
    samples = by_row(dataset)
    first = samples[2]
    assert first.media_path == root.absolute() / "spNO.1" / "a" / "color"
    assert (first.onset, first.apex, first.offset) == (55, 61, 70)
    assert (first.onset_number, first.offset_number) == (355, 370)
    assert first.aus == (AUCode(1, Side.LEFT), AUCode(2, Side.LEFT))
    assert (first.objective_class, first.emotion) == ("surprise", "surprise")
    assert samples[3].clip == "F" and samples[3].media_path.parent.name == "f"
    assert any("'F' found as 'f'" in i for i in issues_of(dataset, 3))
    assert any("subject folder spNO.9 is missing" in i for i in issues_of(dataset, 4))


def test_megc_casme_sq_sheet_without_header(tmp_path):
    root = tmp_path / "rawpic"
    image_folder(root / "s15" / "15_0101", range(1, 200))
    image_folder(root / "s16" / "16_0505", range(1, 300))
    rows = [
        (15, "15_0101", 20, 25, 31, "12", "happy", "micro-expression", "happy"),
        (15, "15_0101", 60, 90, 140, "6+12", "happy", "macro-expression", "happy"),
        (16, "16_0505", 100, 130, 0, "4", "negative", "macro-expression", "sad"),  # offset 0: not coded
        (16, "16_0505", 200, 205, 210, "14", "others", "", ""),  # no type: from the duration
    ]
    sheet = megc_casme_sq_sheet(tmp_path / "CAS(ME)^2code_final(Updated).xlsx", rows)
    dataset = import_dataset("megc", sheet, root, fps=30)
    samples = by_row(dataset)
    assert sorted(samples) == [1, 2, 3, 4]  # no header: data starts on row 1
    assert [samples[r].expression_type for r in (1, 2, 3, 4)] == ["micro", "macro", "macro", "micro"]
    assert samples[1].media_path == root.absolute() / "s15" / "15_0101"
    assert (samples[1].onset, samples[1].offset) == (19, 30)
    assert samples[3].offset == samples[3].apex == 129
    assert any("offset 0 (not coded)" in i for i in issues_of(dataset, 3))
    assert any("micro from its duration 0.37 s at 30 fps" in i for i in issues_of(dataset, 4))
    # Without a frame rate an untyped row on an image folder cannot be typed: skipped, said why.
    without_fps = import_dataset("megc", sheet, root)
    assert any("--fps" in i for i in issues_of(without_fps, 4)) and 4 not in by_row(without_fps)


def test_megc_samm_lv_sheet_on_videos(tmp_path):
    root = tmp_path / "SAMM_longvideos"
    rng = np.random.default_rng(0)
    write_video(root / "006_1.mp4", [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(60)],
                fps=50, codec="mjpeg")
    rows = [
        (6, "006_1_1", 10, 14, 20, "Micro - 1/2", "12"),
        (6, "006_1_2", 30, 38, 55, "Macro", "6+12"),
        (6, "006_1_3", 50, 55, 70, "Macro", "4"),  # past the end of the video
    ]
    sheet = samm_lv_sheet(tmp_path / "SAMM_LongVideos_V2_Release.xlsx", rows)
    dataset = import_dataset("megc", sheet, root, frame_index=frame_index)
    samples = by_row(dataset)
    first_data_row = 11  # 9 preamble rows and the header
    micro, macro = samples[first_data_row], samples[first_data_row + 1]
    assert micro.media_path == root.absolute() / "006_1.mp4"
    assert (micro.onset, micro.apex, micro.offset, micro.expression_type) == (10, 14, 20, "micro")
    assert (macro.clip, macro.expression_type, macro.aus) == ("006_1_2", "macro", (AUCode(6), AUCode(12)))
    assert any("offset frame 70 is not in 006_1.mp4 (frames 0-59)" in i for i in issues_of(dataset, first_data_row + 2))
    # Videos need the media layer's frame counter; without it the rows say so instead of guessing.
    blind = import_dataset("megc", sheet, root)
    assert blind.samples == ()
    assert all("frame_index" in i.reason for i in blind.report.skipped)


def test_own_csv(tmp_path):
    root = tmp_path / "media"
    image_folder(root / "01" / "clipA", range(0, 50), pattern="frame_{n:04d}.png")
    write_video(root / "long" / "talk.avi",
                [np.full((16, 16, 3), k, np.uint8) for k in range(40)], fps=25, codec="mjpeg")
    rows = [
        ["subject", "clip", "onset", "apex", "offset", "media", "aus", "emotion", "objective_class", "expression_type"],
        ["01", "clipA", 5, "", 15, "", "1+2", "surprise", "V", "micro"],
        ["02", "talk", 3, 8, 30, "long/talk.avi", "6+12", "happiness", "", "macro"],
        ["03", "gone", 1, 2, 3, "nowhere/gone.mp4", "4", "", "", ""],
    ]
    dataset = import_dataset("csv", write_csv(tmp_path / "labels.csv", rows), root, frame_index=frame_index)
    samples = by_row(dataset)
    assert (samples[2].media_path, samples[2].onset, samples[2].apex, samples[2].offset) == (
        root.absolute() / "01" / "clipA", 5, 10, 15)
    assert samples[3].media_path == root.absolute() / "long" / "talk.avi"
    assert (samples[3].onset, samples[3].apex, samples[3].offset, samples[3].expression_type) == (3, 8, 30, "macro")
    assert any("no apex frame" in i for i in issues_of(dataset, 2))
    assert issues_of(dataset, 4) == [f"row 4: skipped: media nowhere/gone.mp4 is missing from {root.absolute()}"]


def test_folder_listing_matches_the_media_layer(tmp_path):
    folder = image_folder(tmp_path / "clip", [1, 2, 9, 10, 11, 100], pattern="img{n}.jpg")
    image_folder(folder, [5], pattern="x{n}_img7.jpg")  # the LAST integer is the frame number
    (folder / "notes.txt").write_text("ignored")
    (folder / ".hidden3.jpg").write_bytes(b"")
    with open_media(folder) as source:
        assert scan_image_folder(folder).frame_numbers == source.frame_numbers == (1, 2, 9, 10, 11, 100, 7)
        assert frame_index(folder).frame_numbers == source.frame_numbers
        assert frame_index(folder).fps is None


def test_sheet_and_media_root_errors(tmp_path, casme2_root):
    sheet = casme2_sheet(tmp_path / "c.xlsx", CASME2_ROWS)
    cases = [
        (("casme2", tmp_path / "missing.xlsx", casme2_root), "does not exist"),
        (("casme2", sheet, tmp_path / "no_media"), "media folder .* does not exist"),
        (("smic", sheet, casme2_root), "unknown dataset kind"),
    ]
    old_excel = tmp_path / "CASME2-coding-20140508.xls"
    old_excel.write_bytes(b"\xd0\xcf\x11\xe0 old excel")
    cases.append((("casme2", old_excel, casme2_root), "save it as .xlsx or .csv"))
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 half a zip")
    cases.append((("casme2", broken, casme2_root), "could not read broken.xlsx"))
    unrelated = write_xlsx(tmp_path / "budget.xlsx", {"Sheet1": [["Item", "Cost"], ["chair", 12]]})
    cases.append((("casme2", unrelated, casme2_root), "does not look like a CASME II coding file"))
    for args, message in cases:
        with pytest.raises(UserError, match=message) as err:
            import_dataset(*args)
        assert "\n" not in str(err.value)

    # A CASME II sheet read as SAMM: its columns are still found, but SAMM's three-digit subject
    # folders are not there, so every row is skipped with the folder it looked for.
    dataset = import_dataset("samm", sheet, casme2_root)
    assert dataset.samples == () and dataset.report.n_rows == len(CASME2_ROWS)
    assert [(i.row, i.action) for i in dataset.report.issues] == [(2, "skipped"), (3, "skipped"),
                                                                 (4, "skipped"), (5, "skipped")]
    assert issues_of(dataset, 2) == [
        f"row 2: skipped: clip folder 001/EP02_01f is missing from {casme2_root.absolute()}"]
    assert "clip folder 017/EP15_03 is missing" in issues_of(dataset, 4)[0]


def test_progress_is_reported_and_can_cancel(tmp_path, casme2_root):
    sheet = casme2_sheet(tmp_path / "c.xlsx", CASME2_ROWS)
    seen = []
    import_dataset("casme2", sheet, casme2_root, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]

    class Cancelled(Exception):
        pass

    def cancel(done, total):
        if done == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        import_dataset("casme2", sheet, casme2_root, progress=cancel)
