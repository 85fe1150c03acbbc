"""`python main.py train` and `eval` end to end: the JSON report keys of DESIGN.md section 3, the saved
checkpoint and its card, held-out flags, and one-line errors for bad input.

Runs the real command-line entry point in-process on the session's synthetic dataset (real
photos, real importer, MediaPipe, the tiny open_clip towers), with 1 epoch: these tests check the
plumbing and the contract, the learning itself is tests/test_training.py's job.
"""

from __future__ import annotations

import json

import pytest

from microau_gui.cli import main
from microau_gui.core.au import DEFAULT_VOCAB
from microau_gui.model.checkpoint import read_card
from microau_gui.model.config import TINY_OPEN_CLIP_CFG

from test_training_fixtures import pair_cache, synth_root, synth_spec  # noqa: F401

REPORT_KEYS = {"method", "protocol", "n_samples", "n_subjects", "mean_f1", "mean_macro_f1", "per_au"}
AU_KEYS = {"f1", "macro_f1", "auc", "support"}
FAST = ["--backbone", "tiny", "--epochs", "1", "--threads", "1", "--device", "cpu"]


def check_au_report(report: dict, method: str, protocol: str, n_subjects: int) -> None:
    assert REPORT_KEYS <= set(report), set(report)
    assert (report["method"], report["protocol"], report["n_subjects"]) == (method, protocol, n_subjects)
    assert list(report["per_au"]) == list(DEFAULT_VOCAB)
    for row in report["per_au"].values():
        assert AU_KEYS <= set(row)
    assert 0.0 <= report["mean_f1"] <= 1.0 and 0.0 <= report["mean_macro_f1"] <= 1.0


@pytest.fixture(scope="module")
def loso_run(synth_spec, pair_cache, tmp_path_factory):
    """`train --method all --protocol loso --out` once for the module."""
    folder = tmp_path_factory.mktemp("cli_loso")
    report, out = folder / "loso.json", folder / "weights" / "loso"
    code = main(["train", "--dataset", synth_spec, "--method", "all", "--json", str(report),
                 "--out", str(out), "--cache", str(pair_cache), *FAST])
    return code, json.loads(report.read_text()), out


def test_train_loso_reports_every_method_with_the_documented_keys(loso_run, capsys):
    code, report, _ = loso_run
    assert code == 0
    check_au_report(report, "micro-au-clip", "loso", 3)
    assert set(report["baselines"]) == {"flow-svm", "all-positive"}
    for method, baseline in report["baselines"].items():
        check_au_report(baseline, method, "loso", 3)
        assert baseline["n_samples"] == report["n_samples"]  # the same pairs, the same folds
    assert [f["test_subjects"] for f in report["folds"]] == [["01"], ["02"], ["03"]]
    assert {"uf1", "uar", "n_samples"} <= set(report["emotion"])
    assert report["settings"]["config"]["input_mode"] == "flow"


def test_train_loso_with_out_saves_a_model_whose_card_holds_the_loso_report(loso_run):
    _, report, out = loso_run
    card = read_card(out)
    assert card.version == report["model"]
    assert card.metrics["protocol"] == "loso" and card.metrics["mean_f1"] == report["mean_f1"]
    assert card.training_settings["subjects"] == ["01", "02", "03"]
    assert card.training_settings["prep"]["size"] == 112
    assert card.training_data_hash and card.input_mode == "flow"


def test_protocol_all_then_eval_on_a_held_out_subject(synth_spec, pair_cache, tmp_path, capsys):
    out = tmp_path / "weights" / "two"
    report_path = tmp_path / "all.json"
    assert main(["train", "--dataset", synth_spec, "--protocol", "all", "--subjects", "01,02",
                 "--out", str(out), "--json", str(report_path), "--cache", str(pair_cache), *FAST]) == 0
    report = json.loads(report_path.read_text())
    check_au_report(report, "micro-au-clip", "all", 2)
    assert "not held out" in report["note"]
    assert read_card(out).training_settings["subjects"] == ["01", "02"]
    capsys.readouterr()

    au_path = tmp_path / "eval.json"
    assert main(["eval", "--model", str(out), "--dataset", synth_spec, "--subjects", "03",
                 "--json", str(au_path), "--cache", str(pair_cache), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "AU12" in printed and "warning" not in printed
    au = json.loads(au_path.read_text())
    check_au_report(au, "micro-au-clip", "eval", 1)
    assert au["trained_on_subjects"] == []

    emotion_path = tmp_path / "emotion.json"
    assert main(["eval", "--model", str(out), "--dataset", synth_spec, "--task", "emotion",
                 "--json", str(emotion_path), "--cache", str(pair_cache), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "UF1" in printed and "UAR" in printed
    assert "warning: subjects 01, 02 were in this model's training data" in printed
    emotion = json.loads(emotion_path.read_text())
    assert {"uf1", "uar", "n_samples"} <= set(emotion)
    assert emotion["n_samples"] == au["n_samples"] * 3 and emotion["labels"] == "objective"


def test_pretrained_weights_file_is_loaded_and_named_on_the_card(synth_spec, pair_cache, tmp_path):
    import open_clip
    import torch

    weights = tmp_path / "tiny_start.pt"
    torch.manual_seed(0)
    # A plain tensor state dict: the loader reads it with weights_only=True, never unpickling.
    torch.save(open_clip.CLIP(**TINY_OPEN_CLIP_CFG).state_dict(), weights)
    out = tmp_path / "weights" / "from_file"
    assert main(["train", "--dataset", synth_spec, "--protocol", "all", "--subjects", "01,02",
                 "--pretrained", str(weights), "--out", str(out), "--cache", str(pair_cache),
                 *FAST]) == 0
    card = read_card(out)
    assert card.pretrained_loaded is True
    assert card.pretrained_source == f"file:{weights.resolve()}"
    assert card.config.pretrained == str(weights)


def test_ablation_flags_reach_the_saved_config(synth_spec, pair_cache, tmp_path):
    out = tmp_path / "weights" / "ablated"
    report_path = tmp_path / "ablated.json"
    assert main(["train", "--dataset", synth_spec, "--protocol", "all", "--subjects", "01,02",
                 "--no-gda", "--no-gdloss", "--no-miaucl", "--no-pta", "--input-mode", "apex+diff",
                 "--out", str(out), "--json", str(report_path), "--cache", str(pair_cache),
                 *FAST]) == 0
    config = read_card(out).config
    assert config.use_gda is False
    assert config.pta_pooling == "region-mean"  # --no-pta without a value: mean over the region
    assert config.text_side == "learned"  # no pretrained weights: the card says the text is learned
    assert config.lambda_g == 0.0 and config.lambda_c == 0.0
    assert config.input_mode == "apex+diff"
    saved = json.loads(report_path.read_text())["settings"]["config"]
    assert (saved["use_gda"], saved["lambda_g"], saved["lambda_c"], saved["input_mode"]) == (
        False, 0.0, 0.0, "apex+diff")


@pytest.mark.parametrize("argv, message", [
    (["train", "--dataset", "casme2:only-a-sheet.xlsx"], "KIND:SHEET:ROOT"),
    (["train", "--dataset", "nosuch:a.xlsx:root"], "unknown kind"),
    (["train", "--dataset", "casme2:{tmp}/missing.xlsx:{tmp}"], "does not exist"),
    (["train", "--dataset", "{spec}", "--protocol", "all"], "--out"),
    (["train", "--dataset", "{spec}", "--protocol", "all", "--method", "flow-svm", "--out", "{tmp}/w"],
     "only micro-au-clip"),
    (["train", "--dataset", "{spec}", "--json", "{tmp}/no/such/dir/r.json"], "folder does not exist"),
    (["train", "--dataset", "{spec}", "--epochs", "0", "--backbone", "tiny"], "at least 1 epoch"),
    (["train", "--dataset", "{spec}", "--backbone", "ViT-Nope"], "unknown backbone"),
    (["train", "--dataset", "{spec}", "--backbone", "tiny", "--subjects", "07"], "subject '07'"),
    (["eval", "--model", "{tmp}/nothing", "--dataset", "{spec}"], "no checkpoint"),
    (["eval", "--model", "{tmp}", "--dataset", "{spec}"], "has no card.json"),
])
def test_bad_input_is_one_line_error(argv, message, synth_spec, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path, spec=synth_spec) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert message in err and "Traceback" not in err


def test_existing_checkpoint_is_not_overwritten(loso_run, synth_spec, capsys):
    _, _, out = loso_run
    before = (out / "model.safetensors").read_bytes()
    assert main(["train", "--dataset", synth_spec, "--protocol", "all", "--out", str(out), *FAST]) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == before
