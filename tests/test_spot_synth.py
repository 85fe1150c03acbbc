"""End to end on a synthetic interview (`synth --long`): `spot` then `eval-spot` against its MEGC
ground truth, blinks and head drift not counted, and the `analyze --gate spot` ranges.

The generator is asked for a denser interview than its default (12 micro-expressions a minute
instead of 4) so a 40 s video holds enough of them for an F1 to mean something; everything else
(faces, amplitudes 0.5-3 px @224, 0.2-0.5 s timing, macro-expressions, 15 blinks a minute, head
tremor and drift, noise, H.264) is the generator's own.
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

from microau_gui.cli import main as cli_main
from microau_gui.spotting.files import read_candidates_csv
from microau_gui.spotting.intervals import gate_ranges

pytestmark = pytest.mark.slow

SECONDS = 40.0
FPS = 30.0


@pytest.fixture(scope="module")
def interview(tmp_path_factory):
    from microau_gui.synth.long_video import LongConfig, generate_long_videos

    out = tmp_path_factory.mktemp("interview")
    config = replace(LongConfig(), micro_per_min=12.0)
    return generate_long_videos(out / "long", videos=1, seconds=SECONDS, fps=FPS, seed=11,
                                config=config)


@pytest.fixture(scope="module")
def spotted(interview, tmp_path_factory):
    out = tmp_path_factory.mktemp("spotted")
    pred = out / "pred.csv"
    report = out / "report.json"
    video = interview.videos[0]
    assert cli_main(["spot", str(video), "--out", str(pred), "--no-progress"]) == 0
    assert cli_main(["eval-spot", "--pred", str(pred), "--gt", str(interview.sheet),
                     "--json", str(report)]) == 0
    return pred, json.loads(report.read_text())


def test_micro_expressions_are_spotted_with_f1_at_least_half(interview, spotted):
    _, report = spotted
    n_micro = sum(s.expression_type == "micro" for s in interview.samples)
    assert n_micro >= 5
    assert report["micro"]["tp"] + report["micro"]["fn"] == n_micro
    assert report["micro"]["f1"] >= 0.5, report


def test_blinks_are_not_spotted_as_micro_expressions(interview, spotted):
    pred, _ = spotted
    assert len(interview.blinks) >= 5
    rows = list(csv.DictReader(Path(pred).open()))
    micro = [(int(r["onset"]), int(r["offset"])) for r in rows if r["type"] == "micro"]
    for _, blink_on, blink_off in interview.blinks:
        for onset, offset in micro:
            assert offset < blink_on or onset > blink_off, ((onset, offset), (blink_on, blink_off))


def test_head_drift_and_noise_add_few_false_candidates(interview, spotted):
    _, report = spotted
    # Every false positive is motion no expression explains: head drift, noise, blinks.
    assert report["overall"]["precision"] >= 0.6, report


def test_gated_ranges_cover_little_and_every_micro_apex(interview, spotted):
    pred, _ = spotted
    n_frames = int(round(SECONDS * FPS))
    ranges = gate_ranges(read_candidates_csv(pred), n_frames, FPS)
    covered = sum(stop - start for start, stop in ranges)
    assert covered <= 0.2 * n_frames, (covered, n_frames)
    for sample in interview.samples:
        if sample.expression_type == "micro":
            assert any(start <= sample.apex < stop for start, stop in ranges), sample
