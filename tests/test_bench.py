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

from microau_gui.cli.bench_report import FIGURE_KEYS, TARGETS, figure, format_table, percentile

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
def test_quick_bench_writes_every_figure_of_the_schema(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "MICROAU_BENCH_QUICK_PROFILE": "smoke", "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, str(REPO / "main.py"), "bench", "--quick", "--threads", "1",
                             "--out", str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
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
            assert name.startswith("cuda_") or "_b16_" in name or "bf16" in name, name
        if "target" in entry:
            rule = TARGETS[next(k for k, t in TARGETS.items() if t.as_dict() == entry["target"])]
            assert entry["met"] == rule.met(entry["value"]), name
    # The parity of every faster mode that was measured is reported with it.
    for name, entry in figures.items():
        if name.startswith("model_") and entry["value"] is not None and not name.endswith("_auto_ms"):
            assert entry["prob_diff"] is not None and entry["parity_ok"] == (entry["prob_diff"] <= 0.02)
    assert figures["model_vitb16_b1_auto_ms"]["mode"] in ("fp32", "bf16", "int8")
    assert figures["seek_p95_ms"]["gop"] == 250
    assert figures["peak_rss_mb"]["value"] > 100
    # The table printed on stdout lists every figure too.
    assert format_table(report).count("\n") == len(FIGURE_KEYS)
    for name in FIGURE_KEYS:
        assert name in result.stdout
