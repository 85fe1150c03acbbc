"""`python main.py train --dataset KIND:SHEET:ROOT ...`: LOSO evaluation and training of Micro-AU CLIP
and its baselines.

Owns the `train` subcommand. May import every layer; the work is in `training.runs`.

    train --dataset KIND:SHEET:ROOT [--dataset ...] [--test-dataset KIND:SHEET:ROOT]
          [--method micro-au-clip|flow-svm|all-positive|all]
          [--backbone tiny|ViT-B-16|...] [--pretrained openai|PATH|none] [--epochs N]
          [--protocol loso|kfold|all] [--out weights/NAME] [--json REPORT]
          [--input-mode apex|diff|apex+diff|flow|apex+flow] [--no-gda] [--no-gdloss] [--no-miaucl]
          [--no-pta [region|all]] [--text-side auto|tower|learned] [--seed S] [--device auto]
          [--nproc N]

`--protocol loso` (default) trains one model per held-out subject and prints the per-AU table of
the predictions pooled over folds (F1, macro-F1, AUC, support), plus the emotion-label-free
recognition UF1/UAR when the sheet has objective classes or emotions. With `--out` a final model
is then trained on every subject and saved, its card holding the LOSO report. `--protocol all`
trains on every subject and saves (`--out` required); its report is scored on the training
subjects and says so. `--method all` runs the three methods on the same folds; its JSON is the
micro-au-clip report with the baselines under "baselines".

Several `--dataset`s are pooled, their subjects namespaced by set (`casme2:01`): `--protocol
loso` is then pooled LOSO. `--test-dataset` trains once on the `--dataset` sets and tests on
it (cross-dataset). The vocabulary is then the AUs coded in every set (the report lists the
dropped ones), or with `--vocab-policy union` the AUs coded in any set, each set's uncoded
labels masked and the report adds `per_dataset` F1 beside the pooled figure (see
`training.runs`).

`--nproc N` runs the same command in N torchrun workers with DDP (`cli.launch`,
`training.distributed`); rank 0 prints, writes the JSON and saves the checkpoint.

JSON (DESIGN.md section 3): {"method", "protocol", "n_samples", "n_subjects", "mean_f1",
"mean_macro_f1", "per_au": {"AU1": {"f1", "macro_f1", "auc", "support"}, ...}} plus "threshold",
"seconds", "emotion" ({"uf1", "uar", "n_samples", ...}) and "settings".
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.cli import launch
from microau_gui.cli.outputs import check_out, dataset_files
from microau_gui.cli.progress import ProgressBar
from microau_gui.cli.reports import write_json
from microau_gui.core.errors import UserError
from microau_gui.core.paths import cache_dir

NAME = "train"
HELP = "train and evaluate Micro-AU CLIP (LOSO) and its baselines on a coded dataset"

METHOD_CHOICES = ("micro-au-clip", "flow-svm", "all-positive", "all")


def add_arguments(parser) -> None:
    from microau_gui.face.motion import FLOW_METHODS
    from microau_gui.model.config import INPUT_MODES

    parser.add_argument("--dataset", required=True, metavar="KIND:SHEET:ROOT", action="append",
                        help="importer (casme2, samm, casme3, megc, csv), coding sheet and media root; "
                        "repeat to pool sets (subjects are namespaced by set, LOSO runs pooled)")
    parser.add_argument("--test-dataset", metavar="KIND:SHEET:ROOT", action="append", default=None,
                        help="cross-dataset: train on the --dataset sets, test on this one")
    parser.add_argument("--method", default="micro-au-clip", choices=METHOD_CHOICES,
                        help="micro-au-clip (default), the flow-svm or all-positive baseline, or all three")
    parser.add_argument("--backbone", default="ViT-B-16",
                        help="tiny (ours, from scratch) or an open_clip ViT such as ViT-B-16 (default)")
    parser.add_argument("--pretrained", default=None,
                        help="open_clip tag (openai), a local weights file, or none "
                        "(default: openai; none for the tiny backbone)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 60)")
    parser.add_argument("--protocol", default="loso", choices=("loso", "kfold", "all"),
                        help="loso: leave one subject out (default); kfold: --folds subject-wise "
                        "folds; all: train on every subject and save")
    parser.add_argument("--folds", type=int, default=5, help="kfold: number of subject-wise folds")
    parser.add_argument("--out", metavar="weights/NAME", default=None,
                        help="save the model trained on all subjects here (required with --protocol all)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint at --out")
    parser.add_argument("--json", metavar="REPORT", default=None, help="write the report as JSON here")
    parser.add_argument("--input-mode", choices=INPUT_MODES, default=None,
                        help="what the backbone sees (default: the configured winner, flow)")
    parser.add_argument("--no-gda", action="store_true", help="ablation: no Global Dependency Attention")
    parser.add_argument("--no-gdloss", action="store_true", help="ablation: GDLoss weight 0")
    parser.add_argument("--no-miaucl", action="store_true", help="ablation: MiAUCL weight 0")
    parser.add_argument("--no-pta", nargs="?", const="region", choices=("region", "all"), default=None,
                        help="ablation: no Patch Token Attention; each AU's feature is the mean over "
                        "its region's patches (region, the default) or over all patches (all)")
    parser.add_argument("--text-side", choices=("auto", "tower", "learned"), default=None,
                        help="tower: frozen CLIP text tower; learned: CoOp-style context vectors and "
                        "per-AU class tokens trained with the model; auto (default): tower with "
                        "pretrained weights, learned without")
    parser.add_argument("--train-blocks", type=int, default=None,
                        help="last backbone blocks that train (0 frozen, -1 all; default 0 with "
                        "pretrained weights, -1 without)")
    parser.add_argument("--vocab", default=None, help="AUs to predict, e.g. AU1,AU2,AU4 (default: the 12 of the protocol)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default 1e-3)")
    parser.add_argument("--batch-size", type=int, default=None, help="pairs per step (default 16)")
    parser.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay (default 0.05)")
    parser.add_argument("--balanced", action="store_true", help="draw pairs with rare AUs more often")
    parser.add_argument("--vocab-policy", choices=("common", "union"), default="common",
                        help="pooled --datasets: common (default) predicts the AUs coded in every "
                        "set; union predicts the AUs coded in any set and masks the labels a set "
                        "does not code out of the loss and the metrics")
    parser.add_argument("--thresholds", choices=("fixed", "nested"), default="fixed",
                        help="fixed: decide every AU at 0.5 (default); nested: per-AU thresholds "
                        "chosen by an inner leave-one-subject-out on each fold's training subjects "
                        "only (costs one inner training per training subject and fold)")
    parser.add_argument("--flow-size", type=int, default=None,
                        help="crop side the flow is measured on before resampling (default: 224 or the crop size if larger)")
    parser.add_argument("--flow-method", default=None, choices=FLOW_METHODS,
                        help="optical flow of the pairs (default farneback; recorded in the card)")
    parser.add_argument("--subjects", default=None, help="use only these subjects, e.g. 01,02")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same result)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--cache", metavar="DIR", default=None,
                        help="prepared-pair cache (default ~/.cache/microau_studio/pairs)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the pair cache")
    launch.add_nproc_argument(parser)


def run(args) -> int:
    _check_outputs(args)
    if args.nproc is not None:
        return launch.relaunch(args, args.nproc)
    with launch.worker(args.device) as world:
        return _run(args, world)


def _run(args, world) -> int:
    from microau_gui.training import runs

    methods = runs.METHODS if args.method == "all" else (args.method,)
    if args.protocol == "all" and methods != ("micro-au-clip",):
        raise UserError("--protocol all trains a model to keep, and only micro-au-clip is saved; "
                        "use --protocol loso to score the baselines")
    if args.test_dataset and args.protocol != "loso":
        raise UserError("--test-dataset is its own protocol (train on --dataset, test on it); "
                        "leave --protocol at loso")
    if args.protocol == "all" and not args.out:
        raise UserError("--protocol all trains a model to keep; give --out weights/NAME")
    config = runs.model_config(
        backbone=args.backbone, pretrained=args.pretrained, input_mode=args.input_mode,
        no_gda=args.no_gda, no_gdloss=args.no_gdloss, no_miaucl=args.no_miaucl,
        no_pta=args.no_pta, text_side=args.text_side, train_blocks=args.train_blocks, vocab=args.vocab.split(",") if args.vocab else None)
    settings = runs.train_settings(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                   weight_decay=args.weight_decay, balanced=args.balanced,
                                   seed=args.seed, threads=args.threads,
                                   dropout_masks="torch" if world is None else "per-row")
    device = runs.pick_device(args.device) if world is None else world.device
    bars = _Bars()
    try:
        data = runs.prepare_pooled(args.dataset, config, test_datasets=args.test_dataset or (),
                                   flow_size=args.flow_size, flow_method=args.flow_method,
                                   subjects=args.subjects.split(",") if args.subjects else None,
                                   cache=None if args.no_cache else (args.cache or cache_dir("pairs")),
                                   progress=bars.prepare)
        _print_data(data)
        args.known, args.coded_by = None, None
        if args.vocab_policy == "union" and data.sources:
            kept, dropped, args.coded_by = runs.union_vocab(data, config.vocab)
            args.known = runs.known_labels(args.coded_by, kept)
            why = "coded in no dataset"
        else:
            kept, dropped = runs.common_vocab(data, config.vocab)
            why = "not coded in every dataset"
        if dropped:
            print(f"vocabulary: {', '.join(dropped)} dropped ({why}); predicting {', '.join(kept)}")
            config = config.with_vocab(kept)
        if args.coded_by:
            for label, codes in args.coded_by.items():
                print(f"  {label} codes {', '.join(codes)}; its other labels are unknown (masked)")
        args.vocab_dropped = list(dropped)
        if args.protocol == "all":
            report = _train_all(args, data, config, settings, device, bars)
        else:
            report = _cross_validate(args, data, methods, config, settings, device, bars)
    finally:
        bars.close()
    if args.json and (world is None or world.rank == 0):
        write_json(args.json, report)
    return 0


def _check_outputs(args) -> None:
    """Refuse unwritable outputs before any minute is spent training."""
    if args.json:
        check_out(args.json, flag="--json", reads=dataset_files([*args.dataset, *(args.test_dataset or ())]))
    if args.out:
        out = Path(args.out).expanduser()
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} is a file; give a folder such as weights/NAME")
        if (out / "card.json").exists() and not args.overwrite:
            raise UserError(f"{out} already holds a checkpoint; choose another --out or pass --overwrite")


def _print_data(data) -> None:
    prepared = data.prepared
    print(f"{len(prepared.pairs)} pairs from {len(prepared.subjects)} subjects "
          f"({', '.join(prepared.subjects)}) [{data.spec.kind}: {data.spec.sheet.name}], "
          f"{prepared.n_cached} from the cache, crops {prepared.settings.size} px, "
          f"flow measured at {prepared.settings.flow_side} px")
    for sample, reason in prepared.skipped[:10]:
        print(f"  skipped {sample.key}: {reason}")
    if len(prepared.skipped) > 10:
        print(f"  ... and {len(prepared.skipped) - 10} more skipped")


def _cross_validate(args, data, methods, config, settings, device, bars) -> dict:
    from microau_gui.training import runs
    from microau_gui.training.metrics import format_au_table

    if data.test_labels:
        folds = (runs.cross_dataset_fold(data),)
        protocol = "cross-dataset"
    else:
        folds = runs.folds_for(args.protocol, data.prepared.subjects, n_folds=args.folds, seed=args.seed)
        protocol = "pooled-loso" if data.sources and args.protocol == "loso" else args.protocol
    results = {}
    for method in methods:
        run_ = runs.cross_validate(method, data.prepared.pairs, folds, protocol=protocol,
                                   config=config, settings=settings, device=device,
                                   progress=bars.train, thresholds=args.thresholds,
                                   known=args.known)
        bars.close()
        results[method] = run_
        print()
        print(format_au_table(run_.report))
        if data.sources:
            for label, row in runs.per_dataset_reports(run_, config.vocab, args.known).items():
                print(f"  {label}: mean F1 {row['mean_f1']:.3f} ({row['n_samples']} samples, "
                      f"{row['n_subjects']} subjects)")
        if run_.emotion is not None and run_.emotion.get("degenerate"):
            print(f"emotion-label-free recognition: {run_.emotion['note']}")
        elif run_.emotion is not None:
            print(f"emotion-label-free recognition ({run_.emotion['labels']} labels): "
                  f"UF1 {run_.emotion['uf1']:.3f}  UAR {run_.emotion['uar']:.3f}")
        print(f"{method}: {run_.seconds:.1f} s")
    if len(methods) > 1:
        print()
        print("mean F1: " + "  ".join(f"{m} {r.report.mean_f1:.3f}" for m, r in results.items()))
    main = results[methods[0]]
    report = main.to_json()
    report["settings"] = runs.settings_json(config if methods[0] == "micro-au-clip" else None,
                                            settings, data)
    report["folds"] = [{"name": f.name, "test_subjects": list(f.test_subjects)} for f in folds]
    if data.sources:
        report["per_dataset"] = runs.per_dataset_reports(main, config.vocab, args.known)
        report["vocabulary"] = {"policy": "AUs coded in every dataset", "kept": list(config.vocab),
                                "dropped": getattr(args, "vocab_dropped", [])}
        if args.coded_by:
            report["vocabulary"].update(
                policy="union: AUs coded in any dataset; a dataset's labels of AUs it does not code "
                       "are unknown and masked out of the loss, the class weights, the prior, the "
                       "baselines' fit, the thresholds and the F1",
                coded_by={label: list(codes) for label, codes in args.coded_by.items()})
    if len(methods) > 1:
        report["baselines"] = {m: r.to_json() for m, r in results.items() if m != methods[0]}
        if data.sources:
            for m, r in results.items():
                if m != methods[0]:
                    report["baselines"][m]["per_dataset"] = runs.per_dataset_reports(r, config.vocab, args.known)
    if args.out and "micro-au-clip" in results:
        card = runs.train_and_save(data, config, settings, device, args.out, metrics=report,
                                   progress=bars.train, known=args.known)
        bars.close()
        print(f"saved {args.out} ({card.version}; trained on all {len(data.prepared.subjects)} "
              "subjects, card metrics = this cross-validation)")
        report["model"] = card.version
    return report


def _train_all(args, data, config, settings, device, bars) -> dict:
    from microau_gui.training import runs
    from microau_gui.training.metrics import format_au_table

    card, fit = runs.train_all_and_save(data, config, settings, device, args.out, progress=bars.train,
                                        known=args.known)
    bars.close()
    print(format_au_table(fit.report))
    print("(scored on the training subjects: not held out; use --protocol loso for honest scores)")
    print(f"saved {args.out} ({card.version}) in {fit.seconds:.1f} s")
    report = fit.to_json()
    report["note"] = "scored on the training subjects (not held out)"
    report["settings"] = runs.settings_json(config, settings, data)
    report["model"] = card.version
    return report


class _Bars(ProgressBar):
    """One bar for preparing pairs, then one per training stage (`trainer.TrainProgress`)."""

    def __init__(self):
        super().__init__("prepare", "pair")

    def prepare(self, done: int, total: int) -> None:
        self.stage("prepare", "pair")
        self(done, total)

    def train(self, progress) -> None:
        self.stage(progress.stage, "step")
        self(progress.step, progress.n_steps)
        self.note(f"epoch {progress.epoch}/{progress.n_epochs}, loss {progress.loss:.3f}")