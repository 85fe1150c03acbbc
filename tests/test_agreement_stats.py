"""Agreement that holds for rare AUs: Krippendorff's alpha, Gwet's AC1, Fleiss' kappa, bootstrap
CIs, against values computed by hand (and alpha against the `krippendorff` package)."""

from __future__ import annotations

import csv
import math

import krippendorff
import numpy as np
import pytest

from microau_gui.cli import main as cli_main
from microau_gui.spotting.agreement import CodedEvent, binary_agreement, compare_coders, compare_many


def _two_coders(n11: int, n10: int, n01: int, n00: int) -> np.ndarray:
    a = [1] * n11 + [1] * n10 + [0] * n01 + [0] * n00
    b = [1] * n11 + [0] * n10 + [1] * n01 + [0] * n00
    return np.array([a, b], bool)  # (2, n)


def test_two_coders_rare_au_by_hand():
    # 10 frames: both mark 1, only A marks 1, 8 neither. p_o = 0.9.
    stats = binary_agreement([_two_coders(1, 1, 0, 8)], n_boot=10)
    # Cohen: p_e = 0.2 * 0.1 + 0.8 * 0.9 = 0.74 -> 0.16 / 0.26.
    assert stats["kappa"] == pytest.approx(0.16 / 0.26)
    # Gwet: pi = 0.15, p_e = 2 * 0.15 * 0.85 = 0.255 -> 0.645 / 0.745.
    assert stats["ac1"] == pytest.approx(0.645 / 0.745)
    # Krippendorff (nominal): N = 20 values, 3 ones, 17 zeros, 1 disagreeing unit:
    # 1 - 19 * 1 / (17 * 3) = 32 / 51.
    assert stats["alpha"] == pytest.approx(32 / 51)


def test_ac1_holds_where_kappa_collapses():
    # 1000 frames, the AU is rare: each coder marks 10 frames, 5 of them the same.
    stats = binary_agreement([_two_coders(5, 5, 5, 985)], n_boot=10)
    # p_o = 0.99; Cohen p_e = 0.01^2 + 0.99^2 = 0.9802 -> kappa = 0.0098 / 0.0198 ~ 0.49;
    # AC1 p_e = 2 * 0.01 * 0.99 = 0.0198 -> AC1 = 0.9702 / 0.9802 ~ 0.99.
    assert stats["kappa"] == pytest.approx(0.0098 / 0.0198)
    assert stats["ac1"] == pytest.approx(0.9702 / 0.9802)
    assert stats["ac1"] > 0.98 > 0.5 > stats["kappa"]


def test_three_coders_by_hand_and_alpha_matches_the_package():
    # Units with k of 3 coders marking: 3, 0, 0, 0, 1, 2, 0, 0.
    marks = np.array([[1, 0, 0, 0, 1, 1, 0, 0],
                      [1, 0, 0, 0, 0, 1, 0, 0],
                      [1, 0, 0, 0, 0, 0, 0, 0]], bool)
    stats = binary_agreement([marks], n_boot=10)
    # P_i = 1 for k in {0, 3}, 1/3 for k in {1, 2}: mean 5/6. p1 = 6/24 = 1/4.
    # Fleiss: p_e = 1/16 + 9/16 = 5/8 -> (5/6 - 5/8) / (3/8) = 5/9.
    assert stats["kappa"] == pytest.approx(5 / 9)
    # AC1: p_e = 2 * 1/4 * 3/4 = 3/8 -> (5/6 - 3/8) / (5/8) = 11/15.
    assert stats["ac1"] == pytest.approx(11 / 15)
    # Alpha: N = 24, n_1 = 6, n_0 = 18, o_01 = (1*2 + 2*1) / 2 = 2 -> 1 - 23 * 2 / 108 = 62/108.
    assert stats["alpha"] == pytest.approx(62 / 108)
    assert krippendorff.alpha(reliability_data=marks.astype(float),
                              level_of_measurement="nominal") == pytest.approx(62 / 108)


def test_bootstrap_ci_brackets_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(3)
    truth = rng.random(2000) < 0.1
    other = truth ^ (rng.random(2000) < 0.03)
    marks = [np.stack([truth[:1000], other[:1000]]), np.stack([truth[1000:], other[1000:]])]
    first = binary_agreement(marks, block_frames=50, n_boot=300)
    again = binary_agreement(marks, block_frames=50, n_boot=300)
    for name in ("kappa", "alpha", "ac1"):
        low, high = first[f"{name}_ci"]
        assert low < first[name] < high and high - low < 0.3
        assert first[f"{name}_ci"] == again[f"{name}_ci"]


def test_constant_codes_are_undefined_not_perfect():
    stats = binary_agreement([np.zeros((2, 30), bool)], n_boot=10)
    assert all(math.isnan(stats[name]) for name in ("kappa", "alpha", "ac1"))
    assert all(math.isnan(v) for v in stats["ac1_ci"])


def _ev(video, onset, offset, *aus):
    return CodedEvent(video=video, onset=onset, offset=offset, aus=frozenset(aus))


def test_compare_coders_reports_alpha_and_ac1_per_au():
    a = [_ev("v", 0, 1, "AU12")]
    b = [_ev("v", 0, 0, "AU12")]
    result = compare_coders(a, b, n_frames={"v": 10}, n_boot=50)
    au12 = result.per_au[0]
    # The hand case above: n11 = 1, n10 = 1, n00 = 8.
    assert au12.kappa == pytest.approx(0.16 / 0.26)
    assert au12.alpha == pytest.approx(32 / 51) and au12.ac1 == pytest.approx(0.645 / 0.745)


def test_compare_many_three_coders():
    coders = [[_ev("v", 0, 0, "AU4"), _ev("v", 4, 5, "AU4")],
              [_ev("v", 0, 0, "AU4"), _ev("v", 5, 5, "AU4")],
              [_ev("v", 0, 0, "AU4")]]
    (au4,) = compare_many(coders, n_frames={"v": 8}, n_boot=20)
    assert au4.fleiss_kappa == pytest.approx(5 / 9) and au4.ac1 == pytest.approx(11 / 15)
    assert au4.alpha == pytest.approx(62 / 108) and au4.frames_marked == (3, 2, 1)


def test_agreement_cli_writes_alpha_ac1_and_fleiss(tmp_path):
    header = "video,onset,offset,aus\n"
    paths = []
    for name, rows in (("a", "v.mp4,0,0,4\nv.mp4,4,5,4\n"), ("b", "v.mp4,0,0,4\nv.mp4,5,5,4\n"),
                       ("c", "v.mp4,0,0,4\n")):
        path = tmp_path / f"{name}.csv"
        path.write_text(header + rows, encoding="utf-8")
        paths.append(str(path))
    out = tmp_path / "agree.csv"
    assert cli_main(["agreement", paths[0], paths[1], "--out", str(out), "--n-frames", "8",
                     "--more", paths[2], "--bootstrap", "50"]) == 0
    rows = {(r["measure"], r["au"]): r["value"] for r in csv.DictReader(out.open())}
    assert float(rows[("fleiss_kappa", "AU4")]) == pytest.approx(5 / 9, abs=1e-5)
    assert float(rows[("all_coders_ac1", "AU4")]) == pytest.approx(11 / 15, abs=1e-5)
    # A vs B: n11 = 2 (frames 0, 5), n10 = 1 (frame 4), n00 = 5. p_o = 7/8, pi = 5/16.
    pi = 5 / 16
    assert float(rows[("gwet_ac1", "AU4")]) == pytest.approx((7 / 8 - 2 * pi * (1 - pi)) / (1 - 2 * pi * (1 - pi)), abs=1e-5)
    assert ("krippendorff_alpha_ci_low", "AU4") in rows
