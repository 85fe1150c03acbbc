"""The committed experiments: named studies on fresh synthetic data, with seeds and provenance.

Owns: `Study`, `STUDIES`, `run_study`, and what every kind of study shares: `ClipStudy`,
`subset` (a reduced study's seeds), `code_version_now`, `clip_dataset`. May import every layer
(it drives `synth` and `training`, which may not import each other); the command is
`cli/cmd_experiment.py`.

A study generates its synthetic data sets itself (one per data seed, `synth.generate_clips`,
seeds no test uses), prepares their pairs, and for every variant of the model and every
training seed runs leave-one-subject-out on the same folds; the baselines (flow-SVM,
all-positive) run once per data set (they have no training seed that changes them; flow-SVM's
LinearSVC seed is 0). The JSON report states the data seeds and sizes, the training seeds and
settings, every variant's config, the code version (git commit, and whether the tree had
uncommitted changes), the CPU, and the wall time; results are mean +- std over all (data seed,
training seed) runs, with per-run values, and every variant is compared with each baseline (and
each ablation with the full model) by `training.comparison.paired_comparison`.

Choices made on data, and how they were held out: none is tuned on held-out subjects. The
threshold is 0.5 for every method (`training.metrics`) unless a study also asks for nested
thresholds: then every method is scored a second time ("NAME nested") with per-AU thresholds
chosen, for each outer fold, by an inner leave-one-subject-out over that fold's training
subjects only (`training.thresholds`), from the same outer models. The settings are the `train`
defaults unless a study names them, and the studies' data seeds (1001, 1002, ...) were fixed
before any run. A variant that changes a choice (balanced sampling, flow measured at the model's
crop) is reported as its own row, never picked after the fact. A reduced run (`--data-seeds`,
`--train-seeds`, `--variants`) says so under `"reduced"` and goes to `NAME-reduced.json`.

The report is written after every finished run with `"complete": false` until the last one, so
an interrupted study still leaves an honest record of what ran. Every finished run is also kept
under the work folder (`cli.run_cache`), and a later run of a study takes it up again when the
training code, libraries, data, settings and seed are all unchanged (`--fresh` refuses that):
a study too long for one sitting on a 2-core CPU can be finished over several. The report
names the commit that computed each reused run.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from microau_gui.cli.reports import cpu_model, write_json
from microau_gui.core.errors import UserError
from microau_gui.core.types import DECISION_THRESHOLD

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ClipStudy:
    """What every study on synthetic clip sets names (the fine-tune studies are just this)."""

    name: str
    description: str
    data_seeds: tuple[int, ...]
    subjects: int
    clips_per_subject: int
    train_seeds: tuple[int, ...]
    epochs: int
    size: int = 112  # synthetic frame side and the tiny backbone's crop

    def reduced(self, data_seeds=None, train_seeds=None):
        """The same study on a subset of its seeds (the report says so)."""
        return replace(self, data_seeds=subset(self.name, data_seeds, self.data_seeds, "data-seeds"),
                       train_seeds=subset(self.name, train_seeds, self.train_seeds, "train-seeds"))


@dataclass(frozen=True)
class Study(ClipStudy):
    """An AU detection study: variants of the model and baselines, leave one subject out."""

    # variant name -> (model_config overrides, train_settings overrides, pair preparation: None
    # (the defaults), a flow size, or a dict of `training.runs.prepare_data` keywords such as
    # {"flow_method": "dis"}). A variant whose pairs differ from "full"'s gets its own flow-SVM
    # run, so the baseline on the same flow sits beside it.
    variants: dict = field(default_factory=lambda: {"full": ({}, {}, None)})
    baselines: tuple[str, ...] = ("flow-svm", "all-positive")
    # "nested" also scores every method with per-AU thresholds chosen on the training folds
    # (`training.thresholds`), from the same outer models, as the row "NAME nested"
    thresholds: tuple[str, ...] = ("fixed",)

    def reduced(self, data_seeds=None, train_seeds=None, variants=None) -> "Study":
        """The same study on a subset of its seeds or variants (the report says so)."""
        kept = subset(self.name, variants, tuple(self.variants), "variants")
        return replace(super().reduced(data_seeds, train_seeds),
                       variants={name: self.variants[name] for name in kept})


def subset(study: str, given, full: tuple, option: str) -> tuple:
    """The members of `full` that `given` names (all of them when `given` is None), in `full`'s
    order; a UserError names any that `study` does not have (`--option`)."""
    if given is None:
        return full
    unknown = [g for g in given if g not in full]
    if unknown:
        raise UserError(f"--{option} {','.join(map(str, unknown))}: study {study} has "
                        f"{', '.join(map(str, full))}")
    return tuple(g for g in full if g in given)


STUDIES: dict[str, Study] = {s.name: s for s in (
    Study("smoke", "the smallest configuration: plumbing only (a test runs it)",
          data_seeds=(1001,), subjects=2, clips_per_subject=3, train_seeds=(0,), epochs=1),
    Study("smoke-goal", "the goal study's plumbing at the smallest size (a test runs it)",
          data_seeds=(1001,), subjects=3, clips_per_subject=3, train_seeds=(0, 1), epochs=1,
          variants={"full": ({}, {}, None), "balanced": ({}, {"balanced": True}, None)},
          thresholds=("fixed", "nested")),
    Study("main", "Micro-AU CLIP (tiny backbone, flow, learned text side) against the baselines",
          data_seeds=(1001, 1002), subjects=3, clips_per_subject=40, train_seeds=(0, 1, 2, 3, 4),
          epochs=30),
    Study("ablations-pilot", "the first ablations on the main data, one training seed (what a "
          "2-core CPU could pay for)", data_seeds=(1001, 1002), subjects=3, clips_per_subject=40,
          train_seeds=(0,), epochs=30, variants={
              "full": ({}, {}, None),
              "no-pta": ({"no_pta": "region"}, {}, None),
              "frozen-random-text": ({"text_side": "tower"}, {}, None),
          }),
    Study("ablations", "every module removed in turn, and the ideas of issue #20, on the main data",
          data_seeds=(1001, 1002), subjects=3, clips_per_subject=40, train_seeds=(0, 1, 2, 3, 4),
          epochs=30, variants={
              "full": ({}, {}, None),
              "no-pta": ({"no_pta": "region"}, {}, None),
              "no-gda": ({"no_gda": True}, {}, None),
              "no-gdloss": ({"no_gdloss": True}, {}, None),
              "no-miaucl": ({"no_miaucl": True}, {}, None),
              "frozen-random-text": ({"text_side": "tower"}, {}, None),
              "balanced": ({}, {"balanced": True}, None),
              "flow-at-crop": ({}, {}, 112),
          }),
    Study("text-side", "the frozen random text tower against the learned text side on two "
          "fresh data sets: the tower was singled out after the ablations (seed 0) and confirmed "
          "on new training seeds of the same data (docs/experiments/text-side-confirm.json); "
          "data seeds 1003 and 1004 were never looked at before", data_seeds=(1003, 1004),
          subjects=3, clips_per_subject=40, train_seeds=(0, 1, 2, 3, 4), epochs=30, variants={
              "full": ({}, {}, None),
              "frozen-random-text": ({"text_side": "tower"}, {}, None),
          }),
    Study("flow", "the pairs' optical flow: Farneback at 224 px (the old default) against DIS "
          "ultrafast at 224 px and at the model's 112 px crop, which cost a fraction of "
          "Farneback's time per pair (issue #18: the cheapest flow that keeps the F1)",
          data_seeds=(1001, 1002), subjects=3, clips_per_subject=40, train_seeds=(0, 1, 2),
          epochs=30, variants={"full": ({}, {}, {"flow_method": "farneback"}),
                               "dis": ({}, {}, {"flow_method": "dis"}),
                               "dis-at-crop": ({}, {}, {"flow_method": "dis", "flow_size": 112})}),
    Study("flow-fine", "the pairs' optical flow: Farneback at 224 px (the default) against "
          "'dis-fine' (DIS refined to full resolution, the spotter's flow) at 224 px, the one "
          "flow whose pair preparation fits issue #18's 8 ms (5.8 ms against 14.0 on an AMD EPYC "
          "Zen 4). Decided before the runs: dis-fine keeps the F1 when the paired 95 % CI of "
          "its difference to Farneback excludes a loss of more than 0.02 (lower bound above "
          "-0.02), for the model; flow-SVM's difference is reported beside it",
          data_seeds=(1001, 1002), subjects=3, clips_per_subject=40, train_seeds=(0, 1, 2),
          epochs=30, variants={"full": ({}, {}, {"flow_method": "farneback"}),
                               "dis-fine": ({}, {}, {"flow_method": "dis-fine"})}),
    Study("goal", "issue #20's ideas for the +0.05 goal against flow-SVM, on main's data, seeds "
          "and folds: per-AU thresholds chosen by nested LOSO (for every method), balanced "
          "sampling of rare AUs, flow measured at the model's 112 px crop",
          data_seeds=(1001, 1002), subjects=3, clips_per_subject=40, train_seeds=(0, 1, 2, 3, 4),
          epochs=30, variants={
              "full": ({}, {}, None),
              "balanced": ({}, {"balanced": True}, None),
              "flow-at-crop": ({}, {}, 112),
          }, thresholds=("fixed", "nested")),
)}


def _prep_keywords(prep) -> dict:
    """A variant's pair preparation as `prepare_data` keywords (see `Study.variants`)."""
    if prep is None:
        return {}
    return dict(prep) if isinstance(prep, dict) else {"flow_size": int(prep)}


def code_version_now() -> dict:
    """The commit the repository is at, and whether tracked files differ from it."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "HEAD") or "unknown",
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def clip_dataset(study, data_seed: int, work: Path) -> Path:
    """Generate (once) the synthetic clip set of `data_seed` at `study`'s subjects,
    clips_per_subject and size; returns its root."""
    from microau_gui.synth import generate_clips

    root = work / f"data-{study.subjects}x{study.clips_per_subject}-{study.size}px-seed{data_seed}"
    if not (root / "coding.xlsx").is_file():
        generate_clips(root, subjects=study.subjects, clips_per_subject=study.clips_per_subject,
                       size=study.size, seed=data_seed)
    return root


def _recognition(run) -> dict | None:
    """The run's label-free recognition, withheld when it is an artefact (one class for all)."""
    emotion = run.emotion
    if emotion is None:
        return None
    if emotion.get("degenerate"):
        return {"uf1": None, "uar": None, "n_samples": emotion["n_samples"], "note": emotion["note"]}
    return {"uf1": emotion["uf1"], "uar": emotion["uar"], "n_samples": emotion["n_samples"]}


def run_study(name: str, out: Path | str, work: Path | str, *, threads: int | None = 1,
              log: Callable[[str], None] = print, data_seeds=None, train_seeds=None,
              variants=None, reuse: bool = True) -> dict:
    """Run study `name`, writing its report to `out` (JSON) as it goes; returns the report.

    data_seeds / train_seeds / variants: run only these (a *reduced* study; the report's
    `"reduced"` lists what was left out and the caller must not file it under the study's name).
    reuse: take up finished runs kept under `work/runs` whose identity is unchanged
    (`cli.run_cache`); every run is kept there as it finishes either way.
    """
    from microau_gui.cli.run_cache import RunCache, pairs_digest
    from microau_gui.training import runs
    from microau_gui.training.comparison import ScoredRun, mean_std, paired_comparison, pooled_mean_f1

    if name not in STUDIES:
        raise UserError(f"unknown study {name!r}; use one of {', '.join(STUDIES)}")
    defined = STUDIES[name]
    study = defined.reduced(data_seeds, train_seeds, variants)
    out, work = Path(out), Path(work)
    work.mkdir(parents=True, exist_ok=True)
    if not out.parent.is_dir():
        raise UserError(f"{out.parent}: folder does not exist; choose another output path")
    started = time.perf_counter()
    code_version = code_version_now()
    cache = RunCache(work / "runs", code_version["commit"] + (" (uncommitted changes)" if code_version["dirty"] else ""))
    code_version["training_code"] = cache.code
    report: dict = {
        "study": study.name, "description": study.description, "complete": False,
        "code_version": code_version, "machine": {"cpu": cpu_model(), "threads": threads},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": f"python main.py experiment run {study.name}",
        "data": {"generator": "microau_gui.synth.generate_clips", "seeds": list(study.data_seeds),
                 "subjects": study.subjects, "clips_per_subject": study.clips_per_subject,
                 "size_px": study.size, "protocol": "loso"},
        "training": {"seeds": list(study.train_seeds), "epochs": study.epochs, "threshold": DECISION_THRESHOLD,
                     "backbone": "tiny", "pretrained": "none"},
        "held_out": "nothing tuned: fixed threshold 0.5, train defaults, data seeds fixed in advance",
        "variants": {}, "baselines": {}, "comparisons": [], "runs": [],
    }
    if "nested" in study.thresholds:
        report["training"]["thresholds"] = list(study.thresholds)
        report["held_out"] = ("rows named '... nested': per-AU thresholds chosen per outer fold by "
                              "an inner leave-one-subject-out over that fold's training subjects "
                              "only, from the same outer models as the fixed rows; everything "
                              "else fixed: threshold 0.5, train defaults, data seeds fixed in advance")
    if study != defined:
        report["reduced"] = {
            "defined": {"data_seeds": list(defined.data_seeds), "train_seeds": list(defined.train_seeds),
                        "variants": list(defined.variants)},
            "ran": {"data_seeds": list(study.data_seeds), "train_seeds": list(study.train_seeds),
                    "variants": list(study.variants)},
            "note": "a reduced run of the study: fewer seeds or variants than defined; not the "
                    "study's full report",
        }
        report["command"] += (f" --data-seeds {','.join(map(str, study.data_seeds))} --train-seeds "
                              f"{','.join(map(str, study.train_seeds))} --variants {','.join(study.variants)}")
    if threads != 1:  # the model's reductions may round differently with another thread count
        report["command"] += f" --threads {threads}"
    if reuse:
        report["reused_runs"] = ("runs marked 'reused' were computed earlier (the commit and date "
                                 "they name) by the same training code (code_version.training_code), "
                                 "libraries, data, settings and seed, and read back from the run cache "
                                 "(cli/run_cache.py); their seconds are the original run's")
    scored: dict[str, list[ScoredRun]] = {}

    def cross_validate(method: str, data_seed: int, data, digest: str, folds, config, settings):
        """(`runs.cross_validate` on the prepared pairs, None), or the same run read back from the
        cache and where it was computed. `digest` is `pairs_digest` of the pairs. A nested run is
        its fixed twin (kept too) plus the inner folds (`with_nested_thresholds`), so a nested
        study takes up the fixed runs of another study on the same data."""
        pairs = data.prepared.pairs
        identity = dict(method=method, config=config, settings=settings,
                        prep=data.prepared.settings.record(),
                        data={"seed": data_seed, "subjects": study.subjects, "size": study.size,
                              "clips_per_subject": study.clips_per_subject, "pairs": digest})

        def kept(key):
            return cache.load(key, pairs, config.vocab) if reuse else (None, None)

        key = cache.key(policy=policy, **identity)
        run, origin = kept(key)
        if run is not None:
            return run, origin
        if policy == "fixed":
            run = runs.cross_validate(method, pairs, folds, protocol="loso", config=config, settings=settings)
            cache.store(key, run)
            return run, None
        fixed_key = cache.key(policy="fixed", **identity)
        fixed, origin = kept(fixed_key)
        if fixed is None:
            fixed = runs.cross_validate(method, pairs, folds, protocol="loso", config=config, settings=settings)
            cache.store(fixed_key, fixed)
        run = runs.with_nested_thresholds(fixed, pairs, folds, config=config, settings=settings)
        cache.store(key, run)
        if origin is not None:
            origin = {**origin, "part": "the outer folds' models; the inner folds ran now"}
        return run, origin

    def record(method: str, data_seed: int, train_seed: int, run, folds_of, origin=None) -> None:
        order = np.argsort([p.sample.key for p in run.pairs], kind="stable")
        labels = run.labels[order]
        predicted = (run.scores[order] >= DECISION_THRESHOLD).astype(int)
        fold_idx = np.array([folds_of[p.subject] for p in np.asarray(run.pairs, dtype=object)[order]])
        scored.setdefault(method, []).append(ScoredRun(method, data_seed, train_seed, labels,
                                                       predicted, fold_idx))
        report["runs"].append({"method": method, "data_seed": data_seed, "train_seed": train_seed,
                               "mean_f1": round(pooled_mean_f1(scored[method][-1]), 4),
                               "mean_macro_f1": round(run.report.mean_macro_f1, 4),
                               "recognition": _recognition(run), "seconds": round(run.seconds, 1)})
        if origin is not None:
            report["runs"][-1]["reused"] = origin
        log(f"{method} data {data_seed} seed {train_seed}: mean F1 {report['runs'][-1]['mean_f1']:.3f} "
            f"({run.seconds:.0f} s{', reused' if origin else ''})")

    def record_all(method: str, data_seed: int, train_seed: int, run, folds_of, vocab, origin) -> None:
        """`run` (nested or fixed) as the fixed row and, when nested, as the "nested" row too;
        `origin`: where a reused run was computed (None for a run made now)."""
        from microau_gui.training.experiment import score_predictions

        if run.raw_scores is None:
            record(method, data_seed, train_seed, run, folds_of, origin)
            return
        fixed = score_predictions(run.method, run.protocol, run.pairs, run.raw_scores, vocab, run.seconds)
        record(method, data_seed, train_seed, fixed, folds_of, origin)
        record(f"{method} nested", data_seed, train_seed, run, folds_of, origin)
        report.setdefault("nested_thresholds", {})[f"{method} data {data_seed} seed {train_seed}"] = {
            fold: [round(float(t), 2) for t in values] for fold, values in run.thresholds.items()}

    def summarise() -> None:
        for method, items in scored.items():
            entry = {"mean_f1": mean_std([pooled_mean_f1(r) for r in items]),
                     "runs": len(items)}
            recog = [r["recognition"] for r in report["runs"]
                     if r["method"] == method and r["recognition"] and r["recognition"]["uf1"] is not None]
            if recog:
                entry["uf1"] = mean_std([r["uf1"] for r in recog])
                entry["uar"] = mean_std([r["uar"] for r in recog])
            # "flow-svm nested", "flow-svm (dis pairs)" and "flow-svm (dis pairs) nested" too
            is_baseline = method.removesuffix(" nested").split(" (")[0] in study.baselines
            (report["baselines"] if is_baseline else report["variants"])[method] = entry
        comparisons = []
        nested = "nested" in study.thresholds
        baselines = [*study.baselines, *(f"{b} nested" for b in study.baselines if nested), "full"]
        for variant in [*study.variants, *(f"{v} nested" for v in study.variants if nested)]:
            if variant not in scored:
                continue
            data_done = {r.data_seed for r in scored[variant]}
            for baseline in baselines:
                if baseline == variant or baseline not in scored:
                    continue
                if not data_done <= {r.data_seed for r in scored[baseline]}:
                    continue
                runs_b = [r for r in scored[baseline] if r.data_seed in data_done]
                comparisons.append(paired_comparison(scored[variant], runs_b))
        for method in scored:  # a baseline on another variant's pairs against it on "full"'s
            plain = method.split(" (")[0] + (" nested" if method.endswith(" nested") else "")
            if method != plain and plain in scored:
                done = {r.data_seed for r in scored[method]}
                comparisons.append(paired_comparison(
                    scored[method], [r for r in scored[plain] if r.data_seed in done]))
        report["comparisons"] = comparisons
        report["seconds"] = round(time.perf_counter() - started, 1)
        write_json(out, report)

    policy = "nested" if "nested" in study.thresholds else "fixed"
    # Every data set and the baselines first, then the training seeds in the outer loop, so an
    # interrupted study has covered every data set with its first seeds (k seeds x all sets).
    prepared = {}
    for data_seed in study.data_seeds:
        root = clip_dataset(study, data_seed, work)
        spec = f"casme2:{root / 'coding.xlsx'}:{root}"
        for variant, (config_over, settings_over, prep) in study.variants.items():
            config = runs.model_config(backbone="tiny", **config_over)
            report["variants"].setdefault(variant, {})
            data = runs.prepare_data(spec, config, cache=work / "pairs", **_prep_keywords(prep))
            report.setdefault("configs", {})[variant] = {
                "config": config.to_dict(), "settings": settings_over,
                "prep": data.prepared.settings.record()}
            folds = runs.folds_for("loso", data.prepared.subjects)
            folds_of = {s: i for i, f in enumerate(folds) for s in f.test_subjects}
            report["data"].setdefault("n_samples", {})[str(data_seed)] = len(data.prepared.pairs)
            digest = pairs_digest(data.prepared.pairs)  # once per prepared set, not per run
            prepared[data_seed, variant] = (config, settings_over, data, digest, folds, folds_of)
            if variant == next(iter(study.variants)):
                for baseline in study.baselines:
                    run, origin = cross_validate(baseline, data_seed, data, digest, folds, config,
                                                 runs.train_settings(seed=0))
                    record_all(baseline, data_seed, 0, run, folds_of, config.vocab, origin)
                    summarise()
            elif prep is not None and "flow-svm" in study.baselines:
                run, origin = cross_validate("flow-svm", data_seed, data, digest, folds, config,
                                             runs.train_settings(seed=0))
                record_all(f"flow-svm ({variant} pairs)", data_seed, 0, run, folds_of, config.vocab, origin)
                summarise()
    for train_seed in study.train_seeds:
        for data_seed in study.data_seeds:
            for variant in study.variants:
                config, settings_over, data, digest, folds, folds_of = prepared[data_seed, variant]
                settings = runs.train_settings(epochs=study.epochs, seed=train_seed, threads=threads,
                                               **settings_over)
                run, origin = cross_validate("micro-au-clip", data_seed, data, digest, folds, config, settings)
                record_all(variant, data_seed, train_seed, run, folds_of, config.vocab, origin)
                summarise()
    report["complete"] = True
    summarise()
    return report
