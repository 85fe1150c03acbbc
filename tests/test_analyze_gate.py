"""`analyze --gate spot`: the model runs only around spotted candidates, yet every ground-truth
micro-expression apex of a synthetic interview gets a row, with at most 20% of frames analysed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_inference_fixtures import save_tiny_checkpoint

from microau_gui.cli import main


@pytest.mark.slow
def test_gated_analysis_covers_every_micro_apex_with_a_fifth_of_the_frames(tmp_path):
    from dataclasses import replace

    from microau_gui.synth.long_video import LongConfig, generate_long_videos

    # 8 micro-expressions a minute (twice the default) so "every apex" covers several events
    config = replace(LongConfig(), micro_per_min=8.0)
    synth = generate_long_videos(tmp_path / "long_ds", videos=1, seconds=30.0, seed=0, config=config)
    video = synth.videos[0]
    apexes = [s.apex for s in synth.samples if s.expression_type == "micro"]
    assert len(apexes) >= 3, "the synthetic interview should hold several micro-expressions"
    checkpoint = save_tiny_checkpoint(tmp_path / "weights" / "flow-tiny", "flow")
    out = tmp_path / "gated.csv"
    assert main(["analyze", str(video), "--model", str(checkpoint), "--gate", "spot",
                 "--speed", "fp32", "--no-progress", "--out", str(out)]) == 0
    with open(out, newline="") as handle:
        frames = [int(row["frame_idx"]) for row in csv.DictReader(handle)]
    sidecar = json.loads(Path(f"{out}.json").read_text())
    n_frames = sidecar["media"]["n_frames"]
    assert frames == sorted(set(frames))
    assert all(apex in frames for apex in apexes), (apexes, sidecar["gate"])
    assert len(frames) <= 0.2 * n_frames
    # Rows are exactly the frames of the gate ranges.
    gated = [f for start, stop in sidecar["gate"]["ranges"] for f in range(start, stop)]
    assert frames == gated
    # The sidecar says how the gate was spotted, so a run can be repeated the same way.
    from microau_gui.spotting.spotter import GATE_CONFIG

    assert sidecar["gate"]["spot_flow_method"] == GATE_CONFIG.signal.flow_method
