"""Shared fixtures for the library's unit tests (tiny data, tiny models: the whole set runs in ~1 min on 2 cores)."""

from __future__ import annotations

import gzip
import hashlib
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
from imagegen_lib.metrics.core import FeatureExtractor  # noqa: E402

# A test that needs a data set skips when it is absent ("needs data: ..."), and under CI=true such a
# skip fails the run: see needs_data.py. Its hooks act here because conftest.py imports them.
from needs_data import (needs_data, pytest_configure, pytest_runtest_makereport,  # noqa: E402,F401
                        require_data)

# A test module that defines start_early(config) and stop() has slow work that runs in a subprocess
# (tests/test_lone_notebook.py: a whole chapter, in a kernel): it is started as soon as the tests are
# collected and goes on beside the others, its tests run last and wait for it, and stop() ends
# whatever is still running when the session ends.
def _early_modules(items) -> list:
    return list(dict.fromkeys(i.module for i in items if hasattr(getattr(i, "module", None), "start_early")))


def pytest_collection_modifyitems(config, items):
    early = _early_modules(items)
    if early:
        last = [i for i in items if getattr(i, "module", None) in early]
        items[:] = [i for i in items if getattr(i, "module", None) not in early] + last


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    for module in _early_modules(session.items):
        module.start_early(session.config)


def pytest_sessionfinish(session):
    for module in _early_modules(session.items):
        module.stop()


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


# ---------------------------------------------------------------------------------------------
# Classifier features of whole test splits, computed once per session
# ---------------------------------------------------------------------------------------------

class FeatureCache:
    """Remembers what :class:`FeatureExtractor` returned for an image set of ``MIN_IMAGES`` or more.

    The key is everything the result depends on: the images' bytes, their declared value range,
    the classifier's weights, the batch size and the device (a CPU forward pass in eval mode is a
    pure function of these). A hit returns the very Features the extractor computed the first
    time, so a test that evaluates on the 10,000-image test split sees the same numbers as if it
    had extracted them itself; it only skips the ~20 s (2 cores) of doing it again. Checkpoint
    checks, ``imagegen eval`` runs and the metric tests each did it, several times per session.
    """

    MIN_IMAGES = 5000  # the test splits; small sets are cheap and go straight through

    def __init__(self):
        self.store: dict[tuple, object] = {}
        self.computed = self.hits = 0

    @staticmethod
    def _digest(tensors) -> str:
        h = hashlib.sha256()
        for name, t in tensors:
            t = t.detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
            h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
        return h.hexdigest()

    def key(self, extractor, images: torch.Tensor, value_range) -> tuple:
        return (self._digest([("images", images)]), tuple(float(v) for v in value_range),
                self._digest(extractor.model.state_dict().items()), extractor.batch_size, str(extractor.device))

    def wrap(self, extract):
        """``FeatureExtractor.__call__`` with the cache in front of it."""

        def call(extractor, images, value_range=(-1, 1)):
            if not torch.is_tensor(images) or len(images) < self.MIN_IMAGES:
                return extract(extractor, images, value_range)
            key = self.key(extractor, images, value_range)
            if key in self.store:
                self.hits += 1
            else:
                self.store[key] = extract(extractor, images, value_range)
                self.computed += 1
            return self.store[key]

        return call


_FEATURE_CACHE = FeatureCache()
_CACHED_CALL = _FEATURE_CACHE.wrap(FeatureExtractor.__call__)  # the library's own, wrapped once


@pytest.fixture
def cached_features(monkeypatch) -> FeatureCache:
    """For this test, features of a whole test split come from the session's cache (see FeatureCache)."""
    monkeypatch.setattr(FeatureExtractor, "__call__", _CACHED_CALL)
    return _FEATURE_CACHE


@pytest.fixture(scope="session")
def test_split_features():
    """``get(dataset) -> (extractor, Features)``: the whole test split under the data set's shipped
    classifier, as ``imagegen eval`` extracts it (default batch size, CPU), through the session cache."""
    from imagegen_lib.core.manifest import CHECKPOINT_DIR
    from imagegen_lib.metrics.evaluate import CLASSIFIER_STEMS

    extractors = {}

    def get(dataset: str):
        require_data(dataset)
        if dataset not in extractors:
            extractors[dataset] = FeatureExtractor(CHECKPOINT_DIR / CLASSIFIER_STEMS[dataset])
        extractor = extractors[dataset]
        real, _ = data.load_images(dataset, "test")
        return extractor, _CACHED_CALL(extractor, real)

    return get
