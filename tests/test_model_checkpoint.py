"""Checkpoints: identical outputs after a round trip, clear errors for wrong or damaged files,
saves that never destroy the previous checkpoint, and a pinned model-card format."""

from __future__ import annotations

import json

import pytest
import torch

from microau_gui.core.au import DEFAULT_VOCAB
from microau_gui.core.errors import UserError
from microau_gui.model import checkpoint as ckpt
from microau_gui.model.checkpoint import (
    CARD_NAME,
    WEIGHTS_NAME,
    load_checkpoint,
    read_card,
    save_checkpoint,
    update_card,
)
from microau_gui.model.config import MicroAUConfig
from microau_gui.model.losses import cooccurrence_prior
from microau_gui.model.network import MicroAUCLIP, PairBatch

torch.set_num_threads(2)
N_AU = len(DEFAULT_VOCAB)


def _batch() -> PairBatch:
    gen = torch.Generator().manual_seed(0)
    masks = torch.rand(2, N_AU, 196, generator=gen) < 0.2
    masks[..., 0] = True
    return PairBatch(
        masks=masks, target=torch.randn(2, 3, 112, 112, generator=gen),
        flow=torch.randn(2, 3, 112, 112, generator=gen),
    )


@pytest.fixture(scope="module")
def trained_model() -> MicroAUCLIP:
    """A tiny model moved away from its init by a few optimiser steps (so nothing is default)."""
    torch.manual_seed(0)
    model = MicroAUCLIP(MicroAUConfig.tiny(input_mode="apex+flow"))
    labels = (torch.rand(16, N_AU) < 0.3).float()
    model.set_dependency_prior(cooccurrence_prior(labels.numpy()))
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    batch = _batch()
    model.train()
    for _ in range(3):
        optimiser.zero_grad()
        model.loss(model(batch), labels[:2]).total.backward()
        optimiser.step()
    return model.eval()


@pytest.fixture
def saved(trained_model, tmp_path):
    card = save_checkpoint(
        trained_model, tmp_path / "demo", training_data_hash="abc123", parent=None,
        metrics={"mean_f1": 0.5}, training_settings={"epochs": 3}, notes="test run",
    )
    return tmp_path / "demo", card


def test_round_trip_gives_identical_outputs_without_a_text_tower(trained_model, saved):
    folder, card = saved
    loaded, loaded_card = load_checkpoint(folder)
    assert loaded.text_tower is None  # inference never needs it: the embeddings are saved
    batch = _batch()
    with torch.no_grad():
        before = trained_model(batch)
        after = loaded(batch)
    for name in ("logits", "probs", "pta_attention", "gda_attention", "au_features"):
        assert torch.equal(getattr(before, name), getattr(after, name)), name
    assert torch.equal(loaded.dependency_prior, trained_model.dependency_prior)
    assert loaded.config == trained_model.config
    assert loaded.prompts == trained_model.prompts
    assert loaded_card == card
    assert not loaded.pretrained_loaded and loaded_card.pretrained_source == "none"


def test_the_card_records_what_the_model_is(saved):
    folder, card = saved
    values = json.loads((folder / CARD_NAME).read_text())
    assert values["vocab"] == list(DEFAULT_VOCAB)
    assert values["input_mode"] == "apex+flow"
    assert values["loss_weights"] == {"lambda_c": 0.5, "lambda_g": 0.1}
    assert values["config"]["backbone"] == "tiny" and values["config"]["image_size"] == 112
    assert values["prompts"]["AU12"]["positive"][0].startswith("a face with lip corner puller")
    assert values["pretrained_loaded"] is False
    assert values["training_data_hash"] == "abc123"
    assert values["metrics"] == {"mean_f1": 0.5}
    assert values["grid_size"] == 14
    assert "FACS coder" in values["intended_use"]
    assert card.version.startswith("demo@") and len(card.version) == len("demo@") + 12


def test_card_format_is_pinned(saved):
    """Scripts, the store and the GUI read these keys; changing them needs a format version bump."""
    folder, _ = saved
    values = json.loads((folder / CARD_NAME).read_text())
    assert sorted(values) == sorted([
        "name", "config", "prompts", "image_size", "grid_size", "pretrained_source",
        "pretrained_loaded", "architecture", "weights_sha256", "created", "training_data_hash",
        "metrics", "parent", "training_settings", "intended_use", "notes", "format_version",
        "vocab", "input_mode", "loss_weights",
        # a distilled student's teacher (#18): optional lineage, which format-1 readers ignore
        # (unknown keys are dropped) and a card without it reads as None, so no version bump
        "teacher",
    ])
    assert values["format_version"] == 1
    assert sorted(values["config"]) == sorted(MicroAUConfig().to_dict())


def test_tiny_checkpoint_is_small_enough_to_bundle(saved):
    folder, _ = saved
    size_mb = (folder / WEIGHTS_NAME).stat().st_size / 1e6
    assert size_mb < 5.0


def test_wrong_vocabulary_names_the_aus_that_differ(saved):
    folder, _ = saved
    with pytest.raises(UserError, match="lacks AU20; has extra AU17"):
        load_checkpoint(folder, expected_vocab=DEFAULT_VOCAB[:-1] + ("AU20",))
    loaded, _ = load_checkpoint(folder, expected_vocab=[c.lower() for c in DEFAULT_VOCAB])
    assert loaded.vocab == DEFAULT_VOCAB


def test_wrong_architecture_names_the_tensors_that_do_not_fit(saved):
    folder, _ = saved
    card_path = folder / CARD_NAME
    values = json.loads(card_path.read_text())
    values["config"]["gda_layers"] = 2
    card_path.write_text(json.dumps(values))
    with pytest.raises(UserError, match=r"does not fit the architecture.*missing tensors gda\.blocks\.1\."):
        load_checkpoint(folder)

    values["config"]["gda_layers"] = 1
    values["config"]["vocab"] = values["vocab"] = list(DEFAULT_VOCAB[:6])
    values["prompts"] = {code: values["prompts"][code] for code in DEFAULT_VOCAB[:6]}
    card_path.write_text(json.dumps(values))
    with pytest.raises(UserError, match=r"shape mismatch .*pta\.query_offset \(12, 128\) vs \(6, 128\)"):
        load_checkpoint(folder)


def test_truncated_weights_are_reported_as_corrupted(saved):
    folder, _ = saved
    weights = folder / WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(UserError, match="corrupted, truncated"):
        load_checkpoint(folder)
    # Even when the card was rewritten to match the damaged file, safetensors' check catches it.
    values = json.loads((folder / CARD_NAME).read_text())
    values["weights_sha256"] = ckpt._sha256(weights)
    (folder / CARD_NAME).write_text(json.dumps(values))
    with pytest.raises(UserError, match="corrupted or not a safetensors file"):
        load_checkpoint(folder)


def test_unreadable_card_and_missing_files_are_user_errors(saved, tmp_path):
    folder, _ = saved
    with pytest.raises(UserError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nowhere")
    (folder / CARD_NAME).write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_checkpoint(folder)
    (folder / CARD_NAME).unlink()
    with pytest.raises(UserError, match="has no card.json"):
        load_checkpoint(folder / WEIGHTS_NAME)


def test_a_failed_save_leaves_the_previous_checkpoint_loadable(trained_model, saved, monkeypatch):
    folder, card = saved
    import safetensors.torch

    def failing_save(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", failing_save)
    with pytest.raises(UserError, match="No space left"):
        save_checkpoint(trained_model, folder)
    monkeypatch.undo()
    assert sorted(p.name for p in folder.iterdir()) == [CARD_NAME, WEIGHTS_NAME]  # no temp litter
    _, still = load_checkpoint(folder)
    assert still == card


def test_update_card_keeps_the_weights_valid(saved):
    folder, card = saved
    updated = update_card(folder, metrics={"mean_f1": 0.61}, notes="evaluated")
    assert read_card(folder).metrics == {"mean_f1": 0.61}
    _, loaded_card = load_checkpoint(folder)
    assert loaded_card.notes == "evaluated" and loaded_card.weights_sha256 == card.weights_sha256
    assert updated.version == card.version
    with pytest.raises(ValueError, match="cannot change"):
        update_card(folder, weights_sha256="0" * 64)


def test_checkpoint_file_holds_the_text_embeddings_but_not_the_text_tower(saved):
    folder, _ = saved
    from safetensors import safe_open

    with safe_open(str(folder / WEIGHTS_NAME), framework="pt") as handle:
        names = list(handle.keys())
    assert "text_pos" in names and "text_neg" in names and "dependency_prior" in names
    assert not any(name.startswith("text_tower.") for name in names)


def test_a_loaded_model_can_learn_a_new_au_after_attaching_the_text_tower(saved):
    folder, _ = saved
    model, _ = load_checkpoint(folder)
    kept = model.text_pos.clone()
    model.attach_text_tower()
    model.set_vocab(DEFAULT_VOCAB + ("AU20",))
    assert model.vocab[-1] == "AU20"
    assert torch.equal(model.text_pos[:N_AU], kept)  # the saved embeddings are not recomputed
    assert model.text_pos[-1].norm().item() == pytest.approx(1.0, abs=1e-5)


def test_saving_the_same_weights_twice_gives_the_same_version(trained_model, saved, tmp_path):
    folder, card = saved
    again = save_checkpoint(trained_model, tmp_path / "again" / folder.name, training_data_hash="abc123",
                            metrics={"mean_f1": 0.5}, training_settings={"epochs": 3}, notes="test run")
    assert again.weights_sha256 == card.weights_sha256  # the version string is reproducible
    assert again.version == card.version
    assert (tmp_path / "again" / folder.name / WEIGHTS_NAME).read_bytes() == (folder / WEIGHTS_NAME).read_bytes()


def _edited(folder, edit) -> str:
    """The version of the checkpoint after `edit(values)` changed its card.json in place."""
    path = folder / CARD_NAME
    values = json.loads(path.read_text())
    edit(values)
    path.write_text(json.dumps(values))
    return read_card(folder).version


def test_the_version_covers_every_card_field_that_changes_outputs(saved):
    folder, card = saved
    original = (folder / CARD_NAME).read_text()
    assert read_card(folder).version == card.version

    def restore_then(edit):
        (folder / CARD_NAME).write_text(original)
        return _edited(folder, edit)

    def reorder(values):  # the same AUs in another output order: columns would be relabelled
        values["config"]["vocab"] = values["vocab"] = values["config"]["vocab"][::-1]
        values["prompts"] = dict(reversed(list(values["prompts"].items())))

    def prep(**changes):
        return lambda values: values["training_settings"].update({"prep": {"size": 112, "flow_size": 224,
                                                                           "version": "pair-v1", **changes}})

    base_prep = restore_then(prep())
    changed = {
        "input mode": restore_then(lambda v: v["config"].update(input_mode="apex")),
        "vocabulary order": restore_then(reorder),
        "crop size": restore_then(lambda v: v.update(image_size=96)),
        "flow size": restore_then(prep(flow_size=112)),
        "preprocessing version": restore_then(prep(version="pair-v2")),
        "threshold": restore_then(lambda v: v["metrics"].update(threshold=0.3)),
        "weights": restore_then(lambda v: v.update(weights_sha256="0" * 64)),
    }
    for what, version in changed.items():
        assert version not in (card.version, base_prep), what
    assert base_prep != card.version
    # Notes, scores and lineage (the parent, a student's teacher) do not change what the model outputs.
    assert restore_then(lambda v: v.update(notes="checked by A.B.", parent="x@1", teacher="t@1")) == card.version
    assert restore_then(lambda v: v["metrics"].update(mean_f1=0.9)) == card.version
    (folder / CARD_NAME).write_text(original)


def test_a_tampered_card_is_refused_from_the_header_before_anything_is_built(saved, monkeypatch):
    import resource

    folder, _ = saved
    path = folder / CARD_NAME
    original = json.loads(path.read_text())
    built = []
    real_init = MicroAUCLIP.__init__

    def counting_init(self, *args, **kwargs):
        built.append(torch.empty(0).device.type)  # the device the network's tensors go to
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(MicroAUCLIP, "__init__", counting_init)
    # A 3 MB tiny checkpoint whose card claims ViT-L-14: refused from the header's shapes, with
    # the claimed architecture built on the meta device only (no memory).
    claims = {**original, "config": {**original["config"], "backbone": "ViT-L-14", "image_size": None,
                                     "quick_gelu": False}, "image_size": 224, "grid_size": 16}
    path.write_text(json.dumps(claims))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UserError, match="does not fit the architecture its card describes"):
        load_checkpoint(folder)
    assert built == ["meta"]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KB: < 200 MB

    # Sizes out of bounds, nulls and wrong types: one line, nothing built.
    for edit, says in (({"image_size": 44800}, "image_size"),
                       ({"config": {**original["config"], "image_size": 44800}}, "config.image_size"),
                       ({"grid_size": -1}, "grid_size"),
                       ({"config": {**original["config"], "vocab": None}}, "config.vocab"),
                       ({"vocab": None}, "vocab must list the au codes"),
                       ({"prompts": None}, "prompts"),
                       ({"image_size": "112"}, "image_size"),
                       ({"config": {**original["config"], "gda_layers": 10**6}}, "config.gda_layers")):
        built.clear()
        path.write_text(json.dumps({**original, **edit}))
        with pytest.raises(UserError) as raised:
            load_checkpoint(folder)
        message = str(raised.value)
        assert says in message.lower() and "\n" not in message and "damaged" in message, message
        assert built == []
    path.write_text(json.dumps(original))
    # A good checkpoint: built once, on meta, and the file's tensors become its own (no second
    # network to copy into: 0.8 GB less at peak for ViT-B-16).
    model, card = load_checkpoint(folder)
    assert card.name == "demo" and built == ["meta"]
    from safetensors.torch import load_file

    stored = load_file(str(folder / "model.safetensors"))
    state = model.state_dict()
    assert all(torch.equal(state[name], tensor) for name, tensor in stored.items())
    assert not any(t.is_meta for t in (*model.parameters(), *model.buffers()))
