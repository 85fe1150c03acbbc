"""`python main.py bench`: the JSON report has every key of its schema, and bad input is one line.

The full `bench --quick` runs in a child process with `MICROAU_BENCH_QUICK_PROFILE=smoke`, the
test suite's smaller quick profile (same sections and keys, minimal sizes) so it stays near two
minutes on a loaded 2-core machine. Timing targets are never asserted: only that each figure is
reported with its unit, and its target with a met flag that agrees with the value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from microau_gui.cli.bench_report import FIGURE_KEYS, MODEL_MODES, TARGETS, figure, format_table, percentile

REPO = Path(__file__).resolve().parent.parent


def test_a_target_is_marked_met_or_missed_from_the_value():
    assert figure(40.0, "ms", "gui_p95_ms")["met"] is False
    assert figure(12.5, "fps", "analyze_fps_vit")["met"] is True
    assert figure(None, "MB", "peak_rss_mb")["met"] is None
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile(range(101), 95) == 95.0


def test_bad_output_folder_is_a_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "main.py"), "bench", "--quick",
                             "--out", str(tmp_path / "missing" / "b.json")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: --out")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_quick_bench_writes_every_figure_of_the_schema(tmp_path, speed_memory_in_tmp):
    out = tmp_path / "bench.json"
    env = {**os.environ, "MICROAU_BENCH_QUICK_PROFILE": "smoke", "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, str(REPO / "main.py"), "bench", "--quick", "--threads", "1",
                             "--out", str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    # Its analyze runs raced with a memory of their own: the user's remembered modes were
    # neither read nor written.
    assert not speed_memory_in_tmp.exists()
    report = json.loads(out.read_text())
    assert set(report) >= {"machine", "profile", "figures"}
    machine = report["machine"]
    for key in ("cpu", "logical_cores", "flags", "ram_gb", "torch", "torch_threads", "cuda"):
        assert key in machine
    assert set(machine["flags"]) >= {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
    assert report["profile"]["name"] == "smoke"
    figures = report["figures"]
    assert list(figures) == list(FIGURE_KEYS)
    for name, entry in figures.items():
        assert "value" in entry and entry.get("unit"), name
        if entry["value"] is None:
            # Only the CUDA section (no GPU here) or a batch size the quick profile leaves out
            # may be unmeasured, and it must say why.
            assert entry.get("skipped"), f"{name} was not measured: {entry}"
            assert (name.startswith(("cuda_", "runtimes_vitb16")) or "_b16_" in name
                    or "bf16" in name), name
        if "target" in entry:
            rule = TARGETS[next(k for k, t in TARGETS.items() if t.as_dict() == entry["target"])]
            assert entry["met"] == rule.met(entry["value"]), name
    # The parity of every faster mode that was measured is reported with it.
    for name, entry in figures.items():
        if (name.startswith("model_") and name.endswith("_ms") and entry["value"] is not None
                and not name.endswith("_auto_ms")):
            assert entry["prob_diff"] is not None and entry["parity_ok"] == (entry["prob_diff"] <= 0.02)
    assert figures["model_vitb16_b1_auto_ms"]["mode"] in MODEL_MODES
    assert report["chosen_modes"]["vitb16_b1"] == figures["model_vitb16_b1_auto_ms"]["mode"]
    assert "avx2" in machine["isa_flags"] or "avx2" not in machine["flags"] or not machine["flags"]["avx2"]
    # The roofline: GEMM throughput per dtype in this run, and every model figure against it.
    assert figures["gemm_fp32_gflops"]["value"] > 0 and figures["gemm_int8_gops"]["n"] > 0
    for name, entry in figures.items():
        if name.startswith("model_") and name.endswith("_ms") and entry["value"] is not None:
            assert entry["gflop_per_frame"] > 0 and entry["achieved_gflops"] > 0, name
            assert 0 < entry["roofline_fraction"] == pytest.approx(
                entry["achieved_gflops"] / max(figures[k]["value"] or 0 for k in
                                               ("gemm_fp32_gflops", "gemm_bf16_gflops", "gemm_int8_gops")),
                rel=0.01), name
    assert figures["model_vitb16_b1_roofline_fraction"]["value"] == pytest.approx(
        figures["model_vitb16_b1_auto_ms"]["roofline_fraction"], rel=1e-3)
    # The gated run's bound at this run's GEMM roofline is computed from the run's own figures.
    gated = figures["analyze_gated_vitb16_x_realtime"]
    assert gated["bound_x_realtime"] > 0 and gated["bound_dtype"] in ("fp32", "bf16", "int8")
    assert "at the GEMM roofline" in format_table(report)
    assert figures["seek_p95_ms"]["gop"] == 250
    assert figures["peak_rss_mb"]["value"] > 100
    # The corpus engine with 1 and 2 local Ray workers on the same videos, and the ratio of the two.
    assert figures["corpus_1w_fps"]["n_frames"] == figures["corpus_2w_fps"]["n_frames"] > 0
    assert figures["corpus_scaling_efficiency"]["value"] == pytest.approx(
        figures["corpus_2w_fps"]["value"] / (2 * figures["corpus_1w_fps"]["value"]), rel=0.01)
    # The table printed on stdout lists every figure too.
    assert format_table(report).count("\n") == len(FIGURE_KEYS)
    for name in FIGURE_KEYS:
        assert name in result.stdout


def test_model_flops_count_every_matrix_product_of_the_backbone():
    import torch

    from microau_gui.cli.bench_roofline import model_gflop_per_frame
    from microau_gui.inference.speed import sample_batch
    from microau_gui.model.config import TINY_OPEN_CLIP_CFG, MicroAUConfig
    from microau_gui.model.network import MicroAUCLIP

    torch.manual_seed(0)
    model = MicroAUCLIP(MicroAUConfig.tiny(input_mode="flow"), load_pretrained=False, text_tower=False).eval()
    vision = TINY_OPEN_CLIP_CFG["vision_cfg"]
    width, grid = vision["width"], vision["image_size"] // vision["patch_size"]
    tokens, hidden = grid * grid + 1, int(width * vision["mlp_ratio"])
    per_block = (2 * tokens * 4 * width * width  # q, k, v and output projections
                 + 4 * tokens * tokens * width  # scores and weighted values
                 + 2 * tokens * 2 * width * hidden)  # MLP
    patch_embedding = 2 * grid * grid * width * 3 * vision["patch_size"] ** 2
    backbone = vision["layers"] * per_block + patch_embedding
    one = model_gflop_per_frame(model, sample_batch(model, 1), 1) * 1e9
    two = model_gflop_per_frame(model, sample_batch(model, 2), 2) * 1e9
    # The backbone is all of it but the heads (PTA, GDA, the detection head: a few percent).
    assert backbone <= one <= 1.2 * backbone
    # Per frame, whatever the batch, but for the few products done once per batch (the text side).
    assert 0 <= one - two <= 0.02 * one
    # Counting leaves the fast attention paths as they were.
    assert torch.backends.mha.get_fastpath_enabled()


def test_roofline_gemm_figures_and_model_fractions():
    from microau_gui.cli.bench_roofline import Roofline, measure_roofline, roofline_figures, with_roofline

    roofline = measure_roofline(128, (1,), repeats=1)
    figures = roofline_figures(roofline, figure, skipped=lambda unit, why: figure(None, unit, skipped=why))
    assert set(figures) == {"gemm_fp32_gflops", "gemm_bf16_gflops", "gemm_int8_gops"}
    for entry in figures.values():
        assert (entry["value"] or 0) > 0 or entry["skipped"]
    assert figures["gemm_fp32_gflops"]["value"] > 0 and roofline.best_gflops >= roofline.gflops["fp32"]

    fixed = Roofline(gflops={"fp32": 100.0, "int8": 200.0})
    entry = with_roofline(figure(50.0, "ms/frame"), 4.0, fixed)  # 4 GFLOP in 50 ms: 80 GFLOP/s
    assert entry["achieved_gflops"] == 80.0 and entry["roofline_fraction"] == 0.4
    assert entry["roofline_dtype"] == "int8"
    assert with_roofline(figure(None, "ms/frame", skipped="quick"), 4.0, fixed)["value"] is None


def test_the_gated_runs_bound_is_its_start_plus_its_frames_at_the_best_gemm_throughput():
    from microau_gui.cli.bench_roofline import Roofline, gated_bound

    gated = {**figure(1.5, "x real time"), "video_s": 600.0, "n_gated_frames": 2000, "spot_load_start_s": 60.0}
    roofline = Roofline(gflops={"fp32": 200.0, "bf16": 400.0})
    # 2000 frames x 36 GFLOP at bf16's 400 GFLOP/s = 180 s, plus the measured 60 s: 600 / 240.
    assert gated_bound(gated, 36.0, roofline) == {
        "bound_x_realtime": 2.5, "bound_model_s": 180.0, "bound_dtype": "bf16", "bound_gflops": 400.0,
        "bound_gflop_per_frame": 36.0}
    roofline.gflops["int8"] = 800.0  # the best dtype, whichever it is
    assert gated_bound(gated, 36.0, roofline)["bound_x_realtime"] == pytest.approx(600 / (60 + 90), abs=1e-3)
    assert gated_bound(gated, None, roofline)["bound_x_realtime"] is None
    assert "FLOP count" in gated_bound(gated, None, roofline)["bound_why"]
    assert gated_bound(gated, 36.0, Roofline())["bound_x_realtime"] is None
    unmeasured = figure(None, "x real time", skipped="--only")
    assert gated_bound(unmeasured, 36.0, roofline)["bound_why"] == "the gated run was not measured"


def test_an_analyze_only_run_measures_the_roofline_and_flops_its_bound_needs(tmp_path):
    from microau_gui.cli.cmd_bench import SMOKE, _Bench

    bench = _Bench(SMOKE, tmp_path)  # no model section ran: no GEMM figures, no FLOP count
    gated = {**figure(1.0, "x real time"), "video_s": 600.0, "n_gated_frames": 1000, "spot_load_start_s": 50.0}
    bound = bench._gated_bound(gated)
    assert bound["bound_dtype"] in ("fp32", "bf16", "int8") and bound["bound_model_s"] > 0
    # ViT-B-16 with our heads is 34-36 GFLOP a frame (counted); 1000 frames at the measured rate.
    assert 30 < bound["bound_gflop_per_frame"] < 40 and bound["bound_gflops"] > 0
    assert bound["bound_model_s"] == pytest.approx(1000 * bound["bound_gflop_per_frame"] / bound["bound_gflops"],
                                                   rel=1e-2)
    assert bound["bound_x_realtime"] == pytest.approx(600 / (50 + bound["bound_model_s"]), rel=1e-2)


def test_the_gated_runs_bound_takes_the_rate_and_flops_an_earlier_section_measured(tmp_path):
    from microau_gui.cli.cmd_bench import SMOKE, _Bench

    bench = _Bench(SMOKE, tmp_path)
    bench.figures = {"gemm_fp32_gflops": figure(100.0, "GFLOP/s"),
                     "runtimes_vitb16_b8_ms": {**figure(200.0, "ms/frame"), "gflop_per_frame": 35.0}}
    gated = {**figure(1.0, "x real time"), "video_s": 600.0, "n_gated_frames": 1000, "spot_load_start_s": 50.0}
    bound = bench._gated_bound(gated)
    # Neither measured again nor a checkpoint built: 1000 frames x 35 GFLOP at 100 GFLOP/s.
    assert bound["bound_gflops"] == 100.0 and bound["bound_gflop_per_frame"] == 35.0
    assert bound["bound_model_s"] == 350.0 and not (tmp_path / "weights-vitb16").exists()


def test_pair_preparation_reports_the_f1_each_flow_study_measured(tmp_path):
    """The bench puts each committed flow study's F1 beside the flows' cost: DIS refined to full
    resolution (flow-fine) and DIS ultrafast (flow), each against Farneback on the same runs; a
    missing or damaged report reads as None, never as a figure."""
    from microau_gui.cli.bench_media import FLOW_STUDIES, flow_f1

    committed = flow_f1()
    assert set(committed) == set(FLOW_STUDIES)
    fine = committed["flow-fine"]
    assert fine["study"] == "docs/experiments/flow-fine.json" and fine["complete"] is True
    assert fine["dis-fine"]["n"] == fine["full"]["n"] == 6
    assert fine["dis-fine"]["mean"] < fine["full"]["mean"]  # the study's finding (-0.040)
    assert committed["flow"]["dis"]["mean"] < committed["flow"]["full"]["mean"]

    (tmp_path / "flow.json").write_text('{"variants": {"full": {"mean_f1": "high"}}}')
    (tmp_path / "flow-fine.json").write_bytes((REPO / "docs" / "experiments" / "flow-fine.json").read_bytes()[:100])
    assert flow_f1(tmp_path) == {"flow": None, "flow-fine": None}
    assert flow_f1(tmp_path / "absent") == {"flow": None, "flow-fine": None}
