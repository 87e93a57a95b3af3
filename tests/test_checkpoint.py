"""Checkpoints: safetensors + JSON pairs, torn/corrupted/missing files, atomic writes."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save as st_save

from imagegen_lib.core import checkpoint as ckpt
from imagegen_lib.core.checkpoint import (CheckpointError, atomic_write_bytes, checkpoint_paths,
                                          load_checkpoint, load_optimizer, optimizer_tensors, save_checkpoint,
                                          sha256_file)
from imagegen_lib.metrics.classifier import ClassifierConfig, MNISTClassifier, save_classifier
from imagegen_lib.gan.models import build_gan
from imagegen_lib.gan.train import load_generator, save_generator


def _tensors():
    g = torch.Generator().manual_seed(0)
    return {"w": torch.randn(3, 4, generator=g), "b": torch.arange(5, dtype=torch.int64),
            "h": torch.randn(2, generator=g).half(), "rng": torch.Generator().manual_seed(1).get_state()}


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_round_trip(tmp_path):
    tensors = _tensors()
    meta = {"kind": "test", "step": 7, "nested": {"lr": 2e-4, "betas": [0.5, 0.999]}, "name": "ünïcode"}
    st_path = save_checkpoint(tmp_path / "sub" / "run", tensors, meta)
    assert st_path == tmp_path / "sub" / "run.safetensors"
    loaded, loaded_meta = load_checkpoint(tmp_path / "sub" / "run", expect_kind="test")
    assert loaded.keys() == tensors.keys()
    for k in tensors:
        assert loaded[k].dtype == tensors[k].dtype and torch.equal(loaded[k], tensors[k])
    assert {k: loaded_meta[k] for k in meta} == meta
    assert loaded_meta["tensors_file"] == "run.safetensors"
    assert loaded_meta["tensors_sha256"] == sha256_file(st_path)
    # any of the three spellings of a checkpoint name the same pair
    for spelling in ("run", "run.safetensors", "run.json"):
        assert load_checkpoint(tmp_path / "sub" / spelling)[1]["step"] == 7
    assert _leftovers(tmp_path / "sub") == []


def test_non_contiguous_and_grad_tensors_are_saved(tmp_path):
    w = torch.randn(4, 6, requires_grad=True)
    save_checkpoint(tmp_path / "c", {"t": w.t(), "w": w}, {"kind": "x"})
    loaded, _ = load_checkpoint(tmp_path / "c")
    assert torch.equal(loaded["t"], w.detach().t()) and not loaded["w"].requires_grad


def test_checkpoint_paths():
    assert checkpoint_paths("a/b") == checkpoint_paths("a/b.json") == checkpoint_paths("a/b.safetensors")
    st, js = checkpoint_paths("runs/v1.2/last")  # a dot in a folder name is not a suffix
    assert str(st) == "runs/v1.2/last.safetensors" and str(js) == "runs/v1.2/last.json"
    st, js = checkpoint_paths("runs/adv-0.05_x3.safetensors")  # nor is a dot in the name itself
    assert str(st) == "runs/adv-0.05_x3.safetensors" and str(js) == "runs/adv-0.05_x3.json"
    assert checkpoint_paths("runs/adv-0.05_x3") == (st, js)


def test_torn_pair_is_detected(tmp_path):
    save_checkpoint(tmp_path / "last", _tensors(), {"kind": "test", "step": 1})
    # a crash after the new weights were written, before the new JSON: old JSON, new weights
    (tmp_path / "last.safetensors").write_bytes(st_save({"w": torch.zeros(3, 4)}))
    with pytest.raises(CheckpointError, match="torn"):
        load_checkpoint(tmp_path / "last")


def test_modified_weights_are_detected(tmp_path):
    save_checkpoint(tmp_path / "last", _tensors(), {"kind": "test"})
    blob = bytearray((tmp_path / "last.safetensors").read_bytes())
    blob[-1] ^= 0xFF  # one bit of one weight
    (tmp_path / "last.safetensors").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="torn or the weights were modified"):
        load_checkpoint(tmp_path / "last")


def test_corrupted_json(tmp_path):
    save_checkpoint(tmp_path / "last", _tensors(), {"kind": "test"})
    text = (tmp_path / "last.json").read_text()
    (tmp_path / "last.json").write_text(text[: len(text) // 2])  # truncated
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(tmp_path / "last")
    (tmp_path / "last.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(tmp_path / "last")


def test_corrupted_safetensors_without_recorded_hash(tmp_path):
    (tmp_path / "old.safetensors").write_bytes(b"definitely not safetensors")
    (tmp_path / "old.json").write_text(json.dumps({"kind": "test"}))  # no tensors_sha256 to compare with
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        load_checkpoint(tmp_path / "old")


@pytest.mark.parametrize("missing", ["last.safetensors", "last.json"])
def test_missing_file(tmp_path, missing):
    save_checkpoint(tmp_path / "last", _tensors(), {"kind": "test"})
    (tmp_path / missing).unlink()
    with pytest.raises(CheckpointError, match=f"{missing}.*does not exist"):
        load_checkpoint(tmp_path / "last")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "never_written")


def test_wrong_kind(tmp_path):
    save_checkpoint(tmp_path / "c", _tensors(), {"kind": "classifier"})
    with pytest.raises(CheckpointError, match="'classifier' checkpoint, but a 'gan-generator' one is needed"):
        load_checkpoint(tmp_path / "c", expect_kind="gan-generator")
    save_checkpoint(tmp_path / "nokind", _tensors(), {})
    with pytest.raises(CheckpointError, match="None"):
        load_checkpoint(tmp_path / "nokind", expect_kind="gan-generator")


def test_load_generator_refuses_a_classifier(tmp_path):
    save_classifier(MNISTClassifier(), ClassifierConfig(), tmp_path / "classifier")
    with pytest.raises(CheckpointError, match="'classifier' checkpoint, but a 'gan-generator'"):
        load_generator(tmp_path / "classifier.safetensors")


def test_load_generator_refuses_weights_of_another_shape(tmp_path, tiny_config):
    config = tiny_config()
    G, _ = build_gan(config.arch, z_dim=config.z_dim, width=config.width)
    save_generator(G, config, tmp_path / "g")
    loaded, meta = load_generator(tmp_path / "g")
    assert meta["width"] == 8 and all(torch.equal(a, b) for a, b in zip(G.state_dict().values(),
                                                                          loaded.state_dict().values()))
    # JSON edited to claim another width: a clear error, not a size-mismatch traceback
    meta_path = tmp_path / "g.json"
    meta = json.loads(meta_path.read_text())
    meta["width"] = 16
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="don't fit a dcgan generator"):
        load_generator(tmp_path / "g")
    meta["arch"] = "stylegan"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="unknown architecture 'stylegan'"):
        load_generator(tmp_path / "g")


# ---------------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------------

def test_atomic_write_creates_folders_and_replaces(tmp_path):
    target = tmp_path / "a" / "b" / "file.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert _leftovers(target.parent) == [] and sorted(p.name for p in target.parent.iterdir()) == ["file.bin"]


def test_failed_replace_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"old content")

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt.os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(target, b"new content " * 1000)
    assert target.read_bytes() == b"old content"
    assert _leftovers(tmp_path) == []


def test_failed_write_midway_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"old content")
    real_fsync = os.fsync

    def interrupted(fd):  # the data is in the temp file, then the process is interrupted
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"new content")
    monkeypatch.setattr(ckpt.os, "fsync", real_fsync)
    assert target.read_bytes() == b"old content"
    assert _leftovers(tmp_path) == []


def test_half_saved_checkpoint_loads_whole_never_mixed(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "last", {"w": torch.ones(2)}, {"kind": "test", "step": 1})
    calls = []
    real_replace = os.replace

    def second_replace_fails(src, dst):  # the weights land, the JSON does not: a torn pair on disk
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", second_replace_fails)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "last", {"w": torch.full((2,), 2.0)}, {"kind": "test", "step": 2})
    monkeypatch.setattr(ckpt.os, "replace", real_replace)
    assert _leftovers(tmp_path) == []
    tensors, meta = load_checkpoint(tmp_path / "last")  # the new weights, described by their own header
    assert meta["step"] == 2 and torch.equal(tensors["w"], torch.full((2,), 2.0))


# ---------------------------------------------------------------------------------------------
# Optimizer state
# ---------------------------------------------------------------------------------------------

def test_optimizer_state_round_trip(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(8, 4)).pow(2).mean().backward()
        opt.step()
    tensors, meta = optimizer_tensors(opt, "opt")
    save_checkpoint(tmp_path / "o", tensors, {"kind": "opt", "opt": meta})
    loaded, loaded_meta = load_checkpoint(tmp_path / "o")
    twin = torch.nn.Linear(4, 3)
    twin.load_state_dict(model.state_dict())
    opt2 = torch.optim.Adam(twin.parameters(), lr=0.5)
    load_optimizer(opt2, loaded, "opt", loaded_meta["opt"])
    assert opt2.param_groups[0]["lr"] == 1e-3 and tuple(opt2.param_groups[0]["betas"]) == (0.5, 0.999)
    # the next step is identical with the restored moments
    x = torch.randn(8, 4)
    for m, o in ((model, opt), (twin, opt2)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))


def test_crash_between_the_two_renames_still_resumes(tmp_path):
    """New weights + the previous JSON (a crash between the renames): the weights' own header wins."""
    save_checkpoint(tmp_path / "last", {"w": torch.zeros(3)}, {"kind": "test", "step": 1})
    old_json = (tmp_path / "last.json").read_bytes()
    save_checkpoint(tmp_path / "last", {"w": torch.ones(3)}, {"kind": "test", "step": 2})
    (tmp_path / "last.json").write_bytes(old_json)
    tensors, meta = load_checkpoint(tmp_path / "last")
    assert meta["step"] == 2 and torch.equal(tensors["w"], torch.ones(3))


def test_modified_weights_with_embedded_meta_are_still_rejected(tmp_path):
    save_checkpoint(tmp_path / "last", {"w": torch.zeros(3)}, {"kind": "test", "step": 1})
    blob = bytearray((tmp_path / "last.safetensors").read_bytes())
    blob[-1] ^= 0xFF
    (tmp_path / "last.safetensors").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="torn or the weights were modified"):
        load_checkpoint(tmp_path / "last")
