"""The spotting studies: the spotter on fresh synthetic interviews, with seeds and provenance.

Owns: `SpotStudy`, `SPOT_STUDIES`, `run_spot_study`, `pooled_f1_bootstrap`. May import every
layer (it drives `synth` and `spotting`); the command is `cli/cmd_experiment.py`, beside the AU
detection studies of `cli/experiments.py`.

A spotting study generates its interviews itself (`synth.generate_long_videos`, one set per data
seed, seeds no test uses), spots every video once per optical-flow method with the spotter's
defaults (`spotting.SpotConfig`), and scores the candidates exactly as `eval-spot` does: both
files through `spotting.files.read_event_table`, then `spotting.intervals.evaluate_spotting` in
its two modes ("corrected": one-to-one; "strs": the MEGC STRS tool's counting). It also scores
what `analyze --gate spot` would analyse: the ranges of `spotting.GATE_CONFIG`'s candidates
(`spotting.gate_ranges`), as the fraction of frames they cover and how many ground-truth micro
apexes fall inside them.

The spotter has no training seed: its result is fixed by the video. So the spread is over data
seeds (mean +- std of the pooled F1 of each data set) and over videos: a 95 % CI from a
bootstrap that redraws the videos of every data set with replacement and pools the counts again.
Two flow methods are compared on the same draw (paired). Nothing is tuned here: the spotter's
settings were chosen on other videos (seeds 101-104 and 201-206, see `spotting.signals`) before
the study's data seeds were fixed.

Speed is not reported as a result: the study may share the CPU with other work, and `bench`
measures spotting speed (`spot_fps`). The seconds per video are kept for orientation only.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from microau_gui.cli.experiments import code_version_now, subset
from microau_gui.cli.reports import cpu_model, write_json
from microau_gui.core.errors import UserError

MODES = ("corrected", "strs")
KINDS = ("overall", "micro", "macro")


@dataclass(frozen=True)
class SpotStudy:
    name: str
    description: str
    data_seeds: tuple[int, ...]
    videos: int  # per data seed
    seconds: float  # per video
    flows: tuple[str, ...]  # `face.motion.FLOW_METHODS`; the first is the spotter's default
    micro_per_min: float = 12.0  # denser than the generator's 4, so every video holds enough
    fps: float = 30.0

    def reduced(self, data_seeds=None) -> "SpotStudy":
        return replace(self, data_seeds=subset(self.name, data_seeds, self.data_seeds, "data-seeds"))


SPOT_STUDIES: dict[str, SpotStudy] = {s.name: s for s in (
    SpotStudy("smoke-spotting", "the spotting study's plumbing at the smallest size (a test runs it)",
              data_seeds=(3001,), videos=2, seconds=6.0, flows=("dis-fine", "farneback")),
    SpotStudy("spotting", "the spotter (MEGC intervals, IoU >= 0.5) on fresh synthetic 60-s "
              "interviews, 12 micro-expressions a minute, with the default DIS flow against "
              "Farneback, and the ranges `analyze --gate spot` would analyse",
              data_seeds=(3001, 3002), videos=6, seconds=60.0, flows=("dis-fine", "farneback")),
)}


def _f1(counts: np.ndarray) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN) of counts (..., 3) = (tp, fp, fn); 0 where nothing was counted."""
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def pooled_f1_bootstrap(counts: dict[str, np.ndarray], groups: np.ndarray, n_boot: int = 2000,
                        seed: int = 0) -> dict:
    """Pooled F1 of each method and of each pair's difference, with 95 % bootstrap CIs.

    counts: method -> (n_videos, 3) tp, fp, fn per video, the same videos in the same order for
    every method. groups: each video's data seed; the bootstrap redraws videos with replacement
    within each group (as many as it has), and every method is scored on the same draw.
    Returns {"f1": {method: {"value", "ci95"}}, "differences": [{"a", "b", "value", "ci95"}]}.
    """
    rng = np.random.default_rng(seed)
    methods = list(counts)
    draws = np.concatenate([
        rng.choice(np.flatnonzero(groups == g), size=(n_boot, int(np.sum(groups == g))))
        for g in np.unique(groups)], axis=1)  # (n_boot, n_videos) video indices
    boot = {m: _f1(counts[m][draws].sum(axis=1)) for m in methods}
    point = {m: float(_f1(counts[m].sum(axis=0))) for m in methods}

    def ci(values: np.ndarray) -> list[float]:
        return [round(float(v), 4) for v in np.percentile(values, [2.5, 97.5])]

    out = {"f1": {m: {"value": round(point[m], 4), "ci95": ci(boot[m])} for m in methods},
           "differences": []}
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            out["differences"].append({"a": a, "b": b, "value": round(point[a] - point[b], 4),
                                       "ci95": ci(boot[a] - boot[b])})
    return out


def _interviews(study: SpotStudy, data_seed: int, work: Path) -> tuple[Path, list[Path]]:
    """Generate (once) the interviews of `data_seed`: (MEGC sheet, videos)."""
    from microau_gui.synth import LongConfig, generate_long_videos

    root = work / (f"long-{study.videos}x{study.seconds:g}s-{study.micro_per_min:g}pm-"
                   f"{study.fps:g}fps-seed{data_seed}")
    done = root / "complete.json"  # written last: a half-made set is made again
    if not done.is_file():
        if root.exists():  # an interrupted generation of our own work folder
            shutil.rmtree(root)
        config = replace(LongConfig(), micro_per_min=study.micro_per_min)
        made = generate_long_videos(root, videos=study.videos, seconds=study.seconds, fps=study.fps,
                                    seed=data_seed, config=config)
        write_json(done, {"sheet": made.sheet.relative_to(root).as_posix(),
                          "videos": [p.relative_to(root).as_posix() for p in made.videos]})
    listing = json.loads(done.read_text(encoding="utf-8"))
    return root / listing["sheet"], [root / name for name in listing["videos"]]


def _video_counts(truth: dict, pred: dict, video: str) -> dict:
    """{mode: {kind: [tp, fp, fn]}} of one video, as `eval-spot` scores it."""
    from microau_gui.spotting.intervals import evaluate_spotting

    out = {}
    for mode in MODES:
        scored = evaluate_spotting({video: pred.get(video, [])}, {video: truth.get(video, [])},
                                   mode=mode).as_dict()
        out[mode] = {kind: [scored[kind]["tp"], scored[kind]["fp"], scored[kind]["fn"]] for kind in KINDS}
    return out


def run_spot_study(name: str, out: Path | str, work: Path | str, *, data_seeds=None,
                   log=print) -> dict:
    """Run spotting study `name`, writing its report to `out` (JSON); returns the report."""
    from microau_gui.spotting.files import match_video_keys, read_event_table, write_candidates_csv
    from microau_gui.spotting.intervals import gate_ranges
    from microau_gui.spotting.signals import SignalConfig
    from microau_gui.spotting.spotter import GATE_CONFIG, SpotConfig, find_candidates, spot_media
    from microau_gui.training.comparison import mean_std

    defined = SPOT_STUDIES[name]
    study = defined.reduced(data_seeds)
    out, work = Path(out), Path(work)
    if not out.parent.is_dir():
        raise UserError(f"{out.parent}: folder does not exist; choose another output path")
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report: dict = {
        "study": study.name, "description": study.description, "complete": False,
        "code_version": code_version_now(), "machine": {"cpu": cpu_model()},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": f"python main.py experiment run {study.name}",
        "data": {"generator": "microau_gui.synth.generate_long_videos", "seeds": list(study.data_seeds),
                 "videos_per_seed": study.videos, "seconds_per_video": study.seconds,
                 "fps": study.fps, "micro_per_min": study.micro_per_min,
                 "other_settings": "the generator's defaults (synth.LongConfig)"},
        "spotting": {"config": asdict(SpotConfig()), "flows": list(study.flows),
                     "gate": {"min_z": GATE_CONFIG.min_z, "margin_s": 0.2}, "min_iou": 0.5},
        "held_out": "nothing tuned: the spotter's settings were chosen on other videos (seeds "
                    "101-104, 201-206) before these data seeds were fixed",
        "videos": [],
    }
    if study != defined:
        report["reduced"] = {"defined": {"data_seeds": list(defined.data_seeds)},
                             "ran": {"data_seeds": list(study.data_seeds)},
                             "note": "a reduced run of the study: not the study's full report"}
        report["command"] += f" --data-seeds {','.join(map(str, study.data_seeds))}"
    counts = {(flow, mode, kind): [] for flow in study.flows for mode in MODES for kind in KINDS}
    groups = []
    for data_seed in study.data_seeds:
        sheet, videos = _interviews(study, data_seed, work)
        truth_table = read_event_table(sheet)
        truth = truth_table.typed_intervals()
        apexes = {}
        for event, kind in zip(truth_table.events, truth_table.kinds):
            if kind == "micro":
                apexes.setdefault(event.video, []).append(event.apex)
        for video in videos:
            groups.append(data_seed)
            key = match_video_keys(truth, [video.stem])(video.stem)
            for flow in study.flows:
                config = SpotConfig(signal=SignalConfig(flow_method=flow))
                spotted = spot_media(video, config)
                pred_csv = write_candidates_csv(video.with_suffix(f".{flow}.csv"), video.stem,
                                                spotted.candidates)
                pred = {key: v for v in read_event_table(pred_csv).typed_intervals().values()}
                scored = _video_counts(truth, pred, key)
                for mode in MODES:
                    for kind in KINDS:
                        counts[flow, mode, kind].append(scored[mode][kind])
                n_frames = spotted.signals.n_frames
                ranges = gate_ranges(find_candidates(spotted.signals, GATE_CONFIG), n_frames, study.fps)
                micro_apexes = apexes.get(key, [])
                covered = sum(any(a <= apex < b for a, b in ranges) for apex in micro_apexes)
                report["videos"].append({
                    "data_seed": data_seed, "video": video.name, "flow": flow, "n_frames": n_frames,
                    "seconds": round(spotted.seconds, 1), **scored,
                    "gate": {"frames": sum(b - a for a, b in ranges), "micro_apexes": len(micro_apexes),
                             "micro_apexes_covered": covered}})
                micro = scored["corrected"]["micro"]
                log(f"{flow} data {data_seed} {video.name}: micro tp {micro[0]} fp {micro[1]} "
                    f"fn {micro[2]} ({spotted.seconds:.0f} s)")
        write_json(out, report)
    groups_arr = np.array(groups)
    results: dict = {}
    for mode in MODES:
        for kind in KINDS:
            arrays = {flow: np.array(counts[flow, mode, kind], dtype=float) for flow in study.flows}
            boot = pooled_f1_bootstrap(arrays, groups_arr)
            for flow in study.flows:
                per_seed = [float(_f1(arrays[flow][groups_arr == s].sum(axis=0))) for s in study.data_seeds]
                total = arrays[flow].sum(axis=0).astype(int).tolist()
                results.setdefault(flow, {}).setdefault(mode, {})[kind] = {
                    "pooled_f1": boot["f1"][flow]["value"], "ci95": boot["f1"][flow]["ci95"],
                    "over_data_seeds": mean_std(per_seed), "tp": total[0], "fp": total[1], "fn": total[2]}
            report.setdefault("comparisons", []).extend(
                {"mode": mode, "kind": kind, **d} for d in boot["differences"])
    for flow in study.flows:
        rows = [v for v in report["videos"] if v["flow"] == flow]
        frames = sum(v["gate"]["frames"] for v in rows)
        results[flow]["gate"] = {
            "fraction_of_frames": round(frames / max(1, sum(v["n_frames"] for v in rows)), 4),
            "micro_apexes_covered": sum(v["gate"]["micro_apexes_covered"] for v in rows),
            "micro_apexes": sum(v["gate"]["micro_apexes"] for v in rows)}
    report["results"] = results
    report["ci"] = ("95 % bootstrap over videos, redrawn within each data seed, 2000 draws; "
                    "differences are paired (both flows scored on the same draw)")
    report["complete"] = True
    report["seconds"] = round(time.perf_counter() - started, 1)
    write_json(out, report)
    return report
