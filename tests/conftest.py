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

from imagegen_lib.core import data  # noqa: E402
from imagegen_lib.gan.train import GANConfig  # noqa: E402

# A test that needs a data set skips when it is absent ("needs data: ..."), and under CI=true such a
# skip fails the run: see needs_data.py. Its hooks act here because conftest.py imports them.
from needs_data import (needs_data, pytest_configure, pytest_runtest_makereport,  # noqa: E402,F401
                        require_data)

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def real_raw(name: str = "mnist") -> Path:
    """The folder of the real data set the loader finds (skips the test if there is none).
    Looked up when a test asks, not at import: a machine without Fashion-MNIST still collects."""
    return require_data(name)


def real_bytes(stem: str, name: str = "mnist", raw: Path | None = None) -> bytes:
    """The uncompressed bytes of one official file (whether it is stored as .gz or not)."""
    path = data._file_in(raw or real_raw(name), stem)
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    return path.read_bytes()


@pytest.fixture(scope="session")
def real_mnist_raw() -> Path:
    """The real MNIST folder, found once, before any test points the search elsewhere (a session
    fixture is set up before the function-scoped ones that patch $IMAGEGEN_DATA or the roots)."""
    return real_raw("mnist")


@pytest.fixture(scope="session")
def mnist_tiny() -> tuple[torch.Tensor, torch.Tensor]:
    """The first 256 MNIST training images in [-1, 1] and their labels (loaded once per session)."""
    require_data("mnist")
    x, y = data.load_images("mnist", "train", (-1, 1), limit=256)
    return x, y


@pytest.fixture(scope="session")
def mnist_train_labels() -> torch.Tensor:
    require_data("mnist")
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
def fake_data_root(tmp_path, real_mnist_raw):
    """Factory: a data root in tmp_path with ``MNIST/raw`` whose files are links to the real ones,
    except those named in ``copy`` (real bytes, writable: tests corrupt them)."""

    def make(copy: tuple[str, ...] = (), name: str = "root") -> Path:
        raw = tmp_path / name / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for stem in MNIST_FILES:
            if stem in copy:
                (raw / stem).write_bytes(real_bytes(stem, raw=real_mnist_raw))
            else:
                real = data._file_in(real_mnist_raw, stem)
                (raw / real.name).symlink_to(real)
        return tmp_path / name

    return make
