"""Shared fixtures for the library's unit tests (tiny data, tiny models: the whole set runs in ~1 min on 2 cores)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")

# The tests' models are tiny: a second intra-op thread gains nothing, and on a busy 2-core box
# OpenMP threads spin-waiting for each other made a few-step training run 5-40x slower.
torch.set_num_threads(1)

from imagegen_lib import data  # noqa: E402
from imagegen_lib.train import GANConfig  # noqa: E402

# The real data root the loader finds by default (../shared/data next to the repo, or $IMAGEGEN_DATA).
REAL_MNIST_RAW = data.find_dataset_dir("mnist")
REAL_FASHION_RAW = data.find_dataset_dir("fashion-mnist")

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def real_bytes(stem: str, name: str = "mnist") -> bytes:
    """The uncompressed bytes of one official file (whether it is stored as .gz or not)."""
    raw = REAL_MNIST_RAW if name == "mnist" else REAL_FASHION_RAW
    path = data._file_in(raw, stem)
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    return path.read_bytes()


@pytest.fixture(scope="session")
def mnist_tiny() -> tuple[torch.Tensor, torch.Tensor]:
    """The first 256 MNIST training images in [-1, 1] and their labels (loaded once per session)."""
    x, y = data.load_images("mnist", "train", (-1, 1), limit=256)
    return x, y


@pytest.fixture(scope="session")
def mnist_train_labels() -> torch.Tensor:
    _, y = data.load_images("mnist", "train", (0, 1))
    return y


def make_tiny_config(**overrides) -> GANConfig:
    """A GANConfig small enough to train a few steps in well under a second on a CPU
    (width-8 DCGAN, z_dim 16, batch 32, a history row every step)."""
    kw = dict(arch="dcgan", z_dim=16, width=8, epochs=1, batch_size=32, lr=2e-4, seed=0,
              log_every=1, sample_every=1000, ckpt_every=1000)
    kw.update(overrides)
    return GANConfig(**kw)


@pytest.fixture(scope="session")
def tiny_config():
    """Factory fixture: ``tiny_config(epochs=2, ...)`` -> :func:`make_tiny_config`."""
    return make_tiny_config


@pytest.fixture
def fake_data_root(tmp_path):
    """Factory: a data root in tmp_path with ``MNIST/raw`` whose files are links to the real ones,
    except those named in ``copy`` (real bytes, writable: tests corrupt them)."""

    def make(copy: tuple[str, ...] = (), name: str = "root") -> Path:
        raw = tmp_path / name / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for stem in MNIST_FILES:
            if stem in copy:
                (raw / stem).write_bytes(real_bytes(stem))
            else:
                real = data._file_in(REAL_MNIST_RAW, stem)
                (raw / real.name).symlink_to(real)
        return tmp_path / name

    return make
