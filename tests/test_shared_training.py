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
