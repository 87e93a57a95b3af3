"""The course's feature extractor: a small CNN trained on MNIST (or Fashion-MNIST).

Inception-v3 weights can't be downloaded here, and ImageNet features are a poor fit for 28×28
digits anyway, so — as MNIST papers do — FID, KID, precision/recall and class coverage are
computed in the feature space of a classifier trained on the real data. ``features()`` is the
128-d penultimate layer; ``forward()`` returns the 10 class logits.

Input: ``(N, 1, 28, 28)`` in ``[-1, 1]`` (the generators' tanh range and the loader's default).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..core.checkpoint import (CheckpointError, load_checkpoint, load_optimizer, open_run_dir,
                               optimizer_tensors, save_checkpoint)
from ..core.runtime import resolve_device
from ..core.training import check_resume_settings

__all__ = ["MNISTClassifier", "ClassifierConfig", "train_classifier", "evaluate_accuracy",
           "save_classifier", "load_classifier", "FEATURE_DIM"]

FEATURE_DIM = 128


def _conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class MNISTClassifier(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            # (N, 1, 28, 28)
            *_conv_block(1, 32), *_conv_block(32, 32), nn.MaxPool2d(2),
            # (N, 32, 14, 14)
            *_conv_block(32, 64), *_conv_block(64, 64), nn.MaxPool2d(2),
            # (N, 64, 7, 7)
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, FEATURE_DIM, bias=False), nn.BatchNorm1d(FEATURE_DIM), nn.ReLU(inplace=True),
            # (N, 128): the feature space of the metrics
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, num_classes)  # (N, 10) logits

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.body(x)))


@dataclass
class ClassifierConfig:
    dataset: str = "mnist"
    epochs: int = 12
    batch_size: int = 128
    lr: float = 2e-3  # peak of a one-cycle schedule
    weight_decay: float = 5e-4
    max_shift: int = 2  # random translation augmentation, pixels
    seed: int = 0
    limit: int | None = None


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by its own random integer offset in [-max_shift, max_shift] (zero fill = -1)."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen).to(x.device)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None])  # (N, H)
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None])  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, 0, rows[:, :, None], cols[:, None, :]].unsqueeze(1)


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        logits = model(images[i:i + batch_size])
        correct += (logits.argmax(1) == labels[i:i + batch_size]).sum().item()
    return correct / len(images)


def save_classifier(model: nn.Module, config: ClassifierConfig, stem, extra_meta: dict | None = None) -> Path:
    meta = {"kind": "classifier", "arch": "mnist-cnn", "dataset": config.dataset, "value_range": [-1, 1],
            "feature_dim": FEATURE_DIM, "config": asdict(config), **(extra_meta or {})}
    return save_checkpoint(stem, model.state_dict(), meta)


def load_classifier(stem, device="cpu") -> tuple[MNISTClassifier, dict]:
    tensors, meta = load_checkpoint(stem, expect_kind="classifier")
    model = MNISTClassifier()
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise CheckpointError(f"{stem}: weights don't fit the classifier: {e}") from None
    return model.to(device).eval(), meta


def train_classifier(config: ClassifierConfig, out_dir=None, resume: bool = False, device="auto",
                     progress: bool = True, extra_meta: dict | None = None):
    """Train with AdamW + one-cycle LR and shift augmentation; checkpoint (resumable) every epoch.

    Returns ``(model, history)``; ``history`` has one row per epoch with train loss and test accuracy.
    """
    from ..core import data
    device = resolve_device(device)
    x_train, y_train = data.load_images(config.dataset, "train", (-1, 1), limit=config.limit, device=device)
    x_test, y_test = data.load_images(config.dataset, "test", (-1, 1), device=device)
    n = len(x_train)
    steps_per_epoch = n // config.batch_size
    torch.manual_seed(config.seed)
    model = MNISTClassifier().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps_per_epoch * config.epochs)
    aug_gen = torch.Generator().manual_seed(config.seed + 1)
    history: list[dict] = []
    start_epoch, seconds_before = 0, 0.0
    out = open_run_dir(out_dir, resume)
    if out is not None and resume:
        start_epoch, seconds_before, history = _restore(out, model, opt, sched, aug_gen, config)

    t0 = time.perf_counter()
    bar = tqdm(total=steps_per_epoch * config.epochs, initial=steps_per_epoch * start_epoch,
               disable=not progress, unit="step", desc=f"classifier[{config.dataset}]", dynamic_ncols=True)
    for epoch in range(start_epoch, config.epochs):
        model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch)).to(device)
        loss_sum = torch.zeros((), device=device)
        for i in range(steps_per_epoch):
            idx = order[i * config.batch_size:(i + 1) * config.batch_size]
            x = random_shift(x_train[idx], config.max_shift, aug_gen)
            loss = F.cross_entropy(model(x), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach()
            bar.update(1)
        acc = evaluate_accuracy(model, x_test, y_test)
        row = {"epoch": epoch + 1, "train_loss": float(loss_sum) / steps_per_epoch, "test_accuracy": acc,
               "seconds": round(seconds_before + time.perf_counter() - t0, 2)}
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.4f}", test_acc=f"{acc:.4f}")
        if out is not None:
            _save(out, model, opt, sched, aug_gen, config, epoch + 1, history,
                  seconds_before + time.perf_counter() - t0, extra_meta or {})
    bar.close()
    return model.eval(), history


def _save(out, model, opt, sched, aug_gen, config, epoch, history, seconds, extra_meta):
    t_opt, m_opt = optimizer_tensors(opt, "opt")
    tensors = {**{f"model.{k}": v for k, v in model.state_dict().items()}, **t_opt,
               "aug_rng": aug_gen.get_state()}
    meta = {"kind": "classifier-train-state", "config": asdict(config), "epoch": epoch, "seconds": seconds,
            "opt": m_opt, "sched": sched.state_dict(), "history": history, **extra_meta}
    save_checkpoint(out / "last", tensors, meta)
    save_classifier(model, config, out / "classifier",
                    {"epoch": epoch, "train_seconds": round(seconds, 2),
                     "test_accuracy": history[-1]["test_accuracy"], **extra_meta})


def _restore(out, model, opt, sched, aug_gen, config):
    tensors, meta = load_checkpoint(out / "last", expect_kind="classifier-train-state")
    saved = meta["config"]
    check_resume_settings(config, saved, why="--epochs too: it fixes the one-cycle learning-rate schedule.")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    load_optimizer(opt, tensors, "opt", meta["opt"])
    sched.load_state_dict(meta["sched"])
    aug_gen.set_state(tensors["aug_rng"])
    return int(meta["epoch"]), float(meta["seconds"]), list(meta["history"])

