from dataclasses import dataclass

import pytest
import torch

from imagegen_lib.core.manifest import shipped_stem
from imagegen_lib.core.training import bf16_autocast, check_resume_settings, ema_update


@dataclass
class Config:
    lr: float = 1e-3
    width: int = 64
    log_every: int = 100


def test_resume_check_names_every_difference_and_what_may_change():
    check_resume_settings(Config(log_every=5), Config(), may_change=("log_every",))
    with pytest.raises(ValueError) as e:
        check_resume_settings(Config(lr=0.1, width=32), Config(), may_change=("log_every",))
    message = str(e.value)
    assert "lr=0.1 (run has 0.001)" in message and "width=32 (run has 64)" in message
    assert "Only --log-every may change when resuming." in message


def test_resume_check_reads_a_saved_dict_and_adds_the_reason():
    with pytest.raises(ValueError, match=r"log_every=5 \(run has 100\)\. All must match\. Because\."):
        check_resume_settings(Config(log_every=5), {"lr": 1e-3, "width": 64, "log_every": 100}, why="Because.")


def test_ema_warms_up_then_uses_its_decay():
    ema, params = [torch.zeros(3)], [torch.ones(3)]
    ema_update(ema, params, step=0, decay=0.999)  # warm-up decay 1/10: 90 % of the way at once
    assert torch.allclose(ema[0], torch.full((3,), 0.9))
    ema_update(ema, params, step=10**6, decay=0.5)  # warm-up ~1: the decay itself rules
    assert torch.allclose(ema[0], torch.full((3,), 0.95))


def test_bf16_autocast_is_a_no_op_on_the_cpu():
    with bf16_autocast(True, torch.device("cpu"))():
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32


def test_only_a_file_in_the_checkpoint_folder_is_shipped(tmp_path):
    (tmp_path / "ckpt").mkdir()
    assert shipped_stem(tmp_path / "ckpt" / "dcgan.safetensors", tmp_path / "ckpt") == tmp_path / "ckpt" / "dcgan"
    with pytest.raises(ValueError, match="Ship it first: imagegen ship"):
        shipped_stem(tmp_path / "runs" / "dcgan.safetensors", tmp_path / "ckpt")


def test_shipping_in_half_precision_halves_the_file_and_loads_into_float32(tmp_path):
    from imagegen_lib.core.checkpoint import load_checkpoint, save_checkpoint
    from imagegen_lib.core.manifest import read_manifest, ship

    weights = {"w": torch.randn(64, 64, generator=torch.Generator().manual_seed(0)), "steps": torch.tensor([3])}
    save_checkpoint(tmp_path / "run" / "model", weights, {"kind": "test", "command": "imagegen train test"})
    full = ship(tmp_path / "run" / "model", "full", directory=tmp_path / "ckpt")
    half = ship(tmp_path / "run" / "model.safetensors", "half", directory=tmp_path / "ckpt", half=True)
    assert half["bytes"] < 0.6 * full["bytes"] and half["command"] == "imagegen train test"
    tensors, meta = load_checkpoint(tmp_path / "ckpt" / "half")  # a whole, checked pair
    assert tensors["w"].dtype == torch.float16 and tensors["steps"].dtype == torch.int64
    assert meta["stored_dtype"] == "float16" and meta["tensors_file"] == "half.safetensors"
    module = torch.nn.Linear(64, 64, bias=False)
    module.load_state_dict({"weight": tensors["w"]})  # copied into the float32 parameter
    assert module.weight.dtype == torch.float32
    assert torch.allclose(module.weight, weights["w"], rtol=2 ** -10, atol=1e-7)
    assert set(read_manifest(tmp_path / "ckpt")["checkpoints"]) == {"full", "half"}
    assert "study" not in full and ship(tmp_path / "run" / "model", "variant", tmp_path / "ckpt", study="q6")["study"] == "q6"
