"""The "auto" race's winner is remembered per model version and machine (inference.speed_memory):
a second start of the same model takes the same arithmetic without racing, so it finds the rows
the first one cached (the predictions cache keeps each row's numeric class)."""

from __future__ import annotations

import json

import pytest

from microau_gui.inference import predictor as predictor_module
from microau_gui.inference import speed
from microau_gui.inference.predictor import Predictor
from microau_gui.inference.speed_memory import memory_file, memory_key, recall_mode, remember_mode
from test_inference_fixtures import save_tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    return save_tiny_checkpoint(root / "a", "flow", seed=1), save_tiny_checkpoint(root / "b", "flow", seed=2)


@pytest.fixture
def races(monkeypatch):
    """Counts real races and makes each one choose int8 (a mode every CPU install offers), so
    that a remembered choice is told apart from fp32, the default of an explicit start."""
    calls = []
    real = speed.choose_fastest_mode

    def choose(model, batch, *args, **kwargs):
        calls.append(1)
        choice = real(model, batch, *args, modes=("int8",), repeats=1, **kwargs)
        fast = speed.apply_speed_mode(model, "int8", copy_model=True)
        return speed.SpeedChoice("int8", choice.timings_ms, choice.diffs, choice.tolerance, model=fast)

    monkeypatch.setattr(speed, "choose_fastest_mode", choose)
    return calls


def test_a_second_auto_start_of_one_model_takes_the_first_races_mode_without_racing(checkpoints, races):
    first_ckpt, other_ckpt = checkpoints
    with Predictor.from_checkpoint(first_ckpt, device="cpu", speed_mode="auto") as first:
        assert first.speed_mode == "int8" and not first.speed_choice.remembered
        version = first.card.version
    assert len(races) == 1
    assert recall_mode(memory_key(version, "cpu", 1)) == "int8"

    with Predictor.from_checkpoint(first_ckpt, device="cpu", speed_mode="auto") as again:
        assert again.speed_mode == "int8" and again.speed_choice.remembered
        assert "remembered" in again.speed_choice.summary()
    assert len(races) == 1  # no second race

    # another batch size, another model version: a race of their own
    with Predictor.from_checkpoint(first_ckpt, device="cpu", speed_mode="auto", check_batch_size=8):
        pass
    with Predictor.from_checkpoint(other_ckpt, device="cpu", speed_mode="auto"):
        pass
    assert len(races) == 3
    # an explicit mode is never replaced by a remembered one, and does not race
    with Predictor.from_checkpoint(first_ckpt, device="cpu", speed_mode="fp32") as exact:
        assert exact.speed_mode == "fp32" and not exact.speed_choice.remembered
    assert len(races) == 3


def test_a_remembered_mode_that_fails_parity_now_is_raced_again(checkpoints, races, monkeypatch):
    ckpt, _ = checkpoints
    with Predictor.from_checkpoint(ckpt, device="cpu", speed_mode="auto"):
        pass
    real_select = predictor_module.select_speed_mode  # an explicit mode now fails any parity bound

    def strict(model, mode, device=None, **kwargs):
        return real_select(model, mode, device, tolerance=-1.0, **kwargs) if mode != "auto" \
            else real_select(model, mode, device, **kwargs)

    monkeypatch.setattr(predictor_module, "select_speed_mode", strict)
    with Predictor.from_checkpoint(ckpt, device="cpu", speed_mode="auto") as again:
        assert not again.speed_choice.remembered
    assert len(races) == 2


def test_a_remembered_runtime_mode_the_memory_budget_now_refuses_is_raced_again(checkpoints, races,
                                                                               monkeypatch):
    """An "ort" remembered before the budget existed (ViT-B-16's spot-gated run then peaked at
    2.8 GB) or on a day with memory to spare is not built where it would now break the budget."""
    ckpt, _ = checkpoints
    with Predictor.from_checkpoint(ckpt, device="cpu", speed_mode="auto") as first:
        key = memory_key(first.card.version, "cpu", 1)
    remember_mode(key, "ort")
    monkeypatch.setattr(speed, "resident_mb", lambda: 100.0)
    with Predictor.from_checkpoint(ckpt, device="cpu", speed_mode="auto") as roomy:
        assert roomy.speed_mode == "ort" and roomy.speed_choice.remembered
    assert len(races) == 1
    monkeypatch.setattr(speed, "resident_mb", lambda: speed.MEMORY_BUDGET_MB)
    with Predictor.from_checkpoint(ckpt, device="cpu", speed_mode="auto") as tight:
        assert tight.speed_mode == "int8" and not tight.speed_choice.remembered
    assert len(races) == 2
    assert recall_mode(key) == "int8"


@pytest.mark.parametrize("content", ["", "{not json", "[1, 2]", json.dumps({"k": "warp-drive"})])
def test_a_damaged_memory_file_is_ignored_and_replaced(content):
    memory_file().write_text(content)
    assert recall_mode("k") is None
    remember_mode("k", "int8")
    assert recall_mode("k") == "int8"
    assert json.loads(memory_file().read_text()) == {"k": "int8"}
