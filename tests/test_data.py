"""imagegen_lib.core.data: the real MNIST / Fashion-MNIST files, where they are found, and how bad files fail."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from imagegen_lib.core import data, data_files
from imagegen_lib.core.data import DataCorruptedError, DataNotFoundError, read_idx

from conftest import needs_data, real_bytes, real_raw

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
SHA = data.DATASETS["mnist"].sha256


# ---------------------------------------------------------------------------------------------
# The real files
# ---------------------------------------------------------------------------------------------

def test_minus_one_one_range_shapes_and_dtypes(mnist_tiny):
    x, y = mnist_tiny
    assert x.shape == (256, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (256,) and y.dtype == torch.int64
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0  # background pixels are 0, ink saturates at 255
    assert y[:5].tolist() == [5, 0, 4, 1, 9]


def test_unit_range_is_the_same_pixels(mnist_tiny):
    x01, y01 = data.load_images("mnist", "train", (0, 1), limit=256)
    x, y = mnist_tiny
    assert x01.dtype == torch.float32 and float(x01.min()) == 0.0 and float(x01.max()) == 1.0
    assert torch.equal(y01, y)
    # pixel values are k/255 exactly (no normalisation by mean/std sneaked in)
    assert torch.allclose(x01 * 255, (x01 * 255).round(), atol=1e-4)
    assert torch.allclose(x01 * 2 - 1, x, atol=1e-6)
    assert torch.allclose(data.to_unit_range(x), x01, atol=1e-6)
    # ~19% of MNIST pixels are ink: a wrong offset into the IDX file would not look like this
    assert 0.08 < float(x01.mean()) < 0.2


def test_mnist_train_label_counts(mnist_train_labels):
    y = mnist_train_labels
    assert y.shape == (60000,)
    assert torch.bincount(y, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert y[:5].tolist() == [5, 0, 4, 1, 9]


def test_mnist_test_split():
    x, y = data.load_images("mnist", "test", (0, 1))
    assert x.shape == (10000, 1, 28, 28)
    assert torch.bincount(y, minlength=10).tolist() == MNIST_TEST_COUNTS
    assert y[:5].tolist() == [7, 2, 1, 0, 4]


@needs_data("fashion-mnist")
def test_fashion_mnist_is_balanced():
    _, y = data.load_images("fashion-mnist", "train", (0, 1))
    assert torch.bincount(y, minlength=10).tolist() == [6000] * 10
    x, y = data.load_images("fashion-mnist", "test", limit=100)
    assert x.shape == (100, 1, 28, 28) and float(x.min()) >= -1 and float(x.max()) <= 1
    assert len(data.DATASETS["fashion-mnist"].classes) == 10


def test_limit_keeps_the_first_images(mnist_tiny):
    x, y = mnist_tiny
    x10, y10 = data.load_images("mnist", "train", limit=10)
    assert torch.equal(x10, x[:10]) and torch.equal(y10, y[:10])


def test_dataset_works_with_a_dataloader():
    ds = data.ImageTensorDataset("mnist", "test", value_range=(0, 1))
    assert len(ds) == 10000 and ds.classes[7] == "7"
    img, label = ds[0]
    assert img.shape == (1, 28, 28) and label == 7
    xb, yb = next(iter(DataLoader(ds, batch_size=32, shuffle=False)))
    assert xb.shape == (32, 1, 28, 28) and yb.shape == (32,)
    assert yb[:5].tolist() == [7, 2, 1, 0, 4]
    assert 0 <= float(xb.min()) and float(xb.max()) <= 1


def test_verify_checks_all_files():
    assert data.verify("mnist") == real_raw("mnist")


@pytest.mark.parametrize("kwargs, match", [
    (dict(split="validation"), "split"),
    (dict(value_range=(0, 255)), "value_range"),
    (dict(value_range=(-0.5, 0.5)), "value_range"),
    (dict(name="cifar10"), "unknown dataset"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load_images(**{"name": "mnist", **kwargs})


# ---------------------------------------------------------------------------------------------
# Where the files are looked for
# ---------------------------------------------------------------------------------------------

def test_imagegen_data_is_the_only_root(fake_data_root, tmp_path, monkeypatch):
    root = fake_data_root()
    monkeypatch.setenv("IMAGEGEN_DATA", str(root))
    assert data.search_roots() == [root.resolve()] and data.data_root() == root.resolve()
    assert data.find_dataset_dir("mnist") == root.resolve() / "MNIST" / "raw"
    # a set it does not hold is an error naming it, not a fall-back to another copy
    with pytest.raises(DataNotFoundError) as info:
        data.find_dataset_dir("fashion-mnist")
    msg = str(info.value)
    assert msg.startswith(f"fashion-mnist not found in IMAGEGEN_DATA={root}: {root.resolve() / 'FashionMNIST' / 'raw'}")
    assert "imagegen data download fashion-mnist" in msg and "unset IMAGEGEN_DATA" in msg
    assert "shared" not in msg  # nothing else was looked at


def test_root_argument_is_the_only_place_looked(fake_data_root, tmp_path, monkeypatch):
    root = fake_data_root()
    monkeypatch.setenv("IMAGEGEN_DATA", str(tmp_path / "elsewhere"))
    assert data.search_roots(root) == [root]
    assert data.find_dataset_dir("mnist", root=root) == root / "MNIST" / "raw"
    x, y = data.load_images("mnist", "test", root=root, limit=5)
    assert y.tolist() == [7, 2, 1, 0, 4]
    # root= does not fall back to the real data when the folder is empty
    with pytest.raises(DataNotFoundError):
        data.find_dataset_dir("mnist", root=tmp_path / "empty")


@pytest.fixture
def nothing_found(tmp_path, monkeypatch):
    """Point every default search root into an empty tmp_path."""
    monkeypatch.delenv("IMAGEGEN_DATA", raising=False)
    monkeypatch.setattr(data_files, "REPO_ROOT", tmp_path / "repo")
    monkeypatch.setattr(data_files, "USER_CACHE", tmp_path / "cache" / "data")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path


def test_missing_data_error_names_paths_and_fix(nothing_found):
    tmp = nothing_found.resolve()
    with pytest.raises(DataNotFoundError) as info:
        data.load_images("mnist")
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)  # callers may catch the builtin
    for searched in (tmp / "shared" / "data", tmp / "cache" / "data"):
        assert str(searched / "MNIST" / "raw") in msg
    assert "IMAGEGEN_DATA" in msg and "imagegen data download mnist" in msg
    assert f"which puts it in {tmp / 'cache' / 'data'}" in msg  # where the download would go


def test_partial_folder_is_not_found(nothing_found, fake_data_root):
    root = fake_data_root()
    (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataNotFoundError, match="t10k"):
        data.find_dataset_dir("mnist", root=root)


def test_download_fallback_is_used_only_when_asked(nothing_found, fake_data_root, monkeypatch):
    root = fake_data_root()
    calls = []
    monkeypatch.setattr(data, "download_to_cache",
                        lambda name, root_arg=None: calls.append((name, root_arg)) or root / "MNIST" / "raw")
    with pytest.raises(DataNotFoundError):
        data.load_images("mnist", limit=3)
    assert calls == []
    _, y = data.load_images("mnist", limit=3, download=True)
    assert calls == [("mnist", None)] and y.tolist() == [5, 0, 4]


# The download itself (a mirror on 127.0.0.1, corrupted and interrupted files): tests/test_download.py


# ---------------------------------------------------------------------------------------------
# Damaged files
# ---------------------------------------------------------------------------------------------

def test_gz_files_read_the_same_as_raw(tmp_path, fake_data_root):
    blob = real_bytes("t10k-labels-idx1-ubyte")
    (tmp_path / "labels.gz").write_bytes(gzip.compress(blob))
    (tmp_path / "labels").write_bytes(blob)
    a = read_idx(tmp_path / "labels", SHA["t10k-labels-idx1-ubyte"])
    b = read_idx(tmp_path / "labels.gz", SHA["t10k-labels-idx1-ubyte"])  # hash of the uncompressed bytes
    assert a.dtype == np.uint8 and a.shape == (10000,) and np.array_equal(a, b)

    # a whole folder of .gz files loads the same tensors
    root = fake_data_root(copy=("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
    raw = root / "MNIST" / "raw"
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / f"{stem}.gz").write_bytes(gzip.compress((raw / stem).read_bytes(), compresslevel=1))
        (raw / stem).unlink()
    x_gz, y_gz = data.load_images("mnist", "test", root=root)
    x, y = data.load_images("mnist", "test")
    assert torch.equal(x_gz, x) and torch.equal(y_gz, y)


def test_sha256_mismatch(fake_data_root):
    root = fake_data_root(copy=("t10k-labels-idx1-ubyte",))
    path = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    blob = bytearray(path.read_bytes())
    blob[5000] ^= 0x01  # one label changes: header and size still perfect
    path.write_bytes(bytes(blob))
    with pytest.raises(DataCorruptedError, match="sha256") as info:
        data.load_images("mnist", "test", root=root)
    assert str(path) in str(info.value) and "download again" in str(info.value)
    assert isinstance(info.value, ValueError)
    # without a hash the flipped file parses (the hash is what catches it)
    assert read_idx(path).shape == (10000,)


def test_wrong_idx_header(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x00\x00\x0d\x01" + (3).to_bytes(4, "big") + b"abc")  # dtype 0x0d (float) unsupported
    with pytest.raises(DataCorruptedError, match="bad IDX header"):
        read_idx(bad)
    html = tmp_path / "html"
    html.write_bytes(b"<!DOCTYPE html><html>rate limited</html>")  # what a failed mirror serves
    with pytest.raises(DataCorruptedError, match="bad IDX header"):
        read_idx(html)
    tiny = tmp_path / "tiny"
    tiny.write_bytes(b"\x00\x00")
    with pytest.raises(DataCorruptedError, match="2 bytes"):
        read_idx(tiny)
    cut_header = tmp_path / "cut_header"
    cut_header.write_bytes(b"\x00\x00\x08\x03" + (10).to_bytes(4, "big"))
    with pytest.raises(DataCorruptedError, match="inside the IDX header"):
        read_idx(cut_header)


def test_truncated_file(tmp_path):
    blob = real_bytes("t10k-labels-idx1-ubyte")
    cut = tmp_path / "t10k-labels-idx1-ubyte"
    cut.write_bytes(blob[:-100])
    with pytest.raises(DataCorruptedError, match=r"\(10000,\)") as info:
        read_idx(cut)  # no hash: the header's promised size catches it
    assert "10008" in str(info.value) and "9908" in str(info.value)
    with pytest.raises(DataCorruptedError, match="sha256"):
        read_idx(cut, SHA["t10k-labels-idx1-ubyte"])
    padded = tmp_path / "padded"
    padded.write_bytes(blob + b"\x00")
    with pytest.raises(DataCorruptedError, match="padded"):
        read_idx(padded)


def test_truncated_and_garbled_gz(tmp_path):
    gz = gzip.compress(real_bytes("t10k-labels-idx1-ubyte"))
    cut = tmp_path / "labels.gz"
    cut.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DataCorruptedError, match="cannot be read"):
        read_idx(cut)
    garbled = tmp_path / "garbled.gz"
    garbled.write_bytes(b"this is not gzip at all")
    with pytest.raises(DataCorruptedError, match="cannot be read"):
        read_idx(garbled)


def test_images_and_labels_of_different_lengths(fake_data_root, monkeypatch):
    """Valid IDX files that don't belong together are rejected, even if their hashes were accepted."""
    import hashlib

    root = fake_data_root()
    labels = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.unlink()
    blob = bytearray(real_bytes("t10k-labels-idx1-ubyte")[:8 + 9999])
    blob[4:8] = (9999).to_bytes(4, "big")  # a well-formed IDX file of 9999 labels
    labels.write_bytes(bytes(blob))
    with pytest.raises(DataCorruptedError, match="sha256"):
        data.load_images("mnist", "test", root=root)
    assert read_idx(labels).shape == (9999,)
    monkeypatch.setitem(SHA, "t10k-labels-idx1-ubyte", hashlib.sha256(bytes(blob)).hexdigest())
    with pytest.raises(DataCorruptedError, match="don't match"):
        data.load_images("mnist", "test", root=root)


# ---------------------------------------------------------------------------------------------
# Tests that need data: skipped where it is absent, a failure under CI=true (tests/needs_data.py)
# ---------------------------------------------------------------------------------------------

TINY_SUITE = '''
import pytest
from imagegen_lib.core.data_files import DataNotFoundError
from needs_data import needs_data, require_data


@pytest.fixture
def set5():
    return require_data("Set5")


def test_without_data():
    pass


@needs_data("mnist")
def test_marked():
    pass


def test_fixture(set5):
    pass


def test_loader_raises():
    raise DataNotFoundError("fashion-mnist not found. Looked for ...")


def test_skipped_for_another_reason():
    pytest.skip("not on this platform")
'''


def run_tiny_suite(tmp_path, ci: str | None, *args) -> subprocess.CompletedProcess:
    """pytest on TINY_SUITE in a subprocess, with an empty $IMAGEGEN_DATA (so every set is absent)."""
    (tmp_path / "suite").mkdir(exist_ok=True)
    (tmp_path / "suite" / "test_tiny.py").write_text(TINY_SUITE)
    (tmp_path / "suite" / "conftest.py").write_text(
        "from needs_data import pytest_configure, pytest_runtest_makereport  # noqa: F401\n")
    (tmp_path / "empty").mkdir(exist_ok=True)
    # Without the installed plugins (nbval's imports alone take 2-3 s); the hooks come from conftest.py.
    env = {**os.environ, "IMAGEGEN_DATA": str(tmp_path / "empty"), "PYTHONPATH": str(Path(__file__).parent),
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("CI", None)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args,
                           str(tmp_path / "suite")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def test_missing_data_skips_with_a_reason_and_fails_under_ci(tmp_path):
    local = run_tiny_suite(tmp_path, None)
    assert local.returncode == 0, local.stdout + local.stderr
    assert "1 passed, 4 skipped" in local.stdout
    assert local.stdout.count("needs data:") == 3  # mark, fixture, and the loader's error
    assert "needs data: mnist not found in IMAGEGEN_DATA=" in local.stdout
    assert "needs data: fashion-mnist not found. Looked for ... — run `make data`" in local.stdout

    ci = run_tiny_suite(tmp_path, "true")
    assert ci.returncode == 1, ci.stdout + ci.stderr
    assert "data missing under CI=true" in ci.stdout
    assert "CI=true: 3 test(s) skipped for want of data, which fails the run" in ci.stdout
    for name in ("test_marked", "test_fixture", "test_loader_raises"):
        assert f"test_tiny.py::{name}: needs data:" in ci.stdout
    assert "test_skipped_for_another_reason:" not in ci.stdout  # other skips are not data skips

    other_skips_only = run_tiny_suite(tmp_path, "true", "-k", "without_data or another_reason")
    assert other_skips_only.returncode == 0, other_skips_only.stdout
