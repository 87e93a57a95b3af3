"""MNIST and Fashion-MNIST as whole tensors (and as a ``Dataset`` when you want one).

60,000 × 1 × 28 × 28 float32 images are 188 MB: they fit in RAM and on any GPU, so the training
loops index one big tensor instead of paying a ``DataLoader``'s per-item Python overhead.

Where the files are looked for, where missing ones are downloaded to and from, and :func:`ensure`
(what ``make data`` runs) live in :mod:`imagegen_lib.core.data_files`, which needs no torch; in short:
``root=`` if you pass one, else ``$IMAGEGEN_DATA`` if set (then *only* there: an explicit setting
that does not hold the data is an error naming it), else ``../shared/data`` beside the repository,
then ``~/.cache/imagegen/data``, where downloads go (``$IMAGEGEN_DATA_URL`` picks a mirror).

Each root is read in torchvision's layout, ``<root>/MNIST/raw/train-images-idx3-ubyte`` (or the
same name with ``.gz``). Every file is checked against the sha256 of the official release, and
its IDX header against its size, each time it is loaded, so a truncated or corrupted file fails
loudly with a message that says how to fix it instead of training on garbage.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

# Re-exported: the file-level half of this module lives in data_files (no torch there, see its docstring).
# USER_CACHE is deliberately not re-exported: a test patching data.USER_CACHE would patch a copy nobody reads.
from .data_files import (DATASETS, DataCorruptedError, DataError, DataNotFoundError, DatasetSpec, _file_in,
                         _spec, data_root, ensure, find_dataset_dir, search_roots)
from .data_files import download_dataset as download_to_cache

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "DataError",
    "DataNotFoundError",
    "DataCorruptedError",
    "search_roots",
    "data_root",
    "find_dataset_dir",
    "read_idx",
    "load_images",
    "ImageTensorDataset",
    "ensure",
    "download",
    "download_to_cache",
    "verify",
    "to_unit_range",
    "check_tanh_images",
]

_SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_IDX_DTYPES = {0x08: np.uint8}


def read_idx(path: str | os.PathLike, expected_sha256: str | None = None) -> np.ndarray:
    """Parse one IDX file (``.gz`` or not) into a numpy array, validating hash, header and size."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            blob = f.read()
    except (OSError, EOFError) as e:  # gzip raises these on a truncated/garbled archive
        raise DataCorruptedError(f"{path}: cannot be read ({e}). Delete it and download again.") from None
    if expected_sha256 is not None:
        digest = hashlib.sha256(blob).hexdigest()
        if digest != expected_sha256:
            raise DataCorruptedError(
                f"{path}: sha256 is {digest[:16]}…, expected {expected_sha256[:16]}… (the official file). "
                "The file is corrupted or not the official release: delete it and download again "
                "(imagegen data download)."
            )
    if len(blob) < 4:
        raise DataCorruptedError(f"{path}: only {len(blob)} bytes — not an IDX file (truncated download?).")
    zero, dtype_code, ndim = struct.unpack(">HBB", blob[:4])
    if zero != 0 or dtype_code not in _IDX_DTYPES or not 1 <= ndim <= 4:
        raise DataCorruptedError(
            f"{path}: bad IDX header {blob[:4].hex()} (expected 0000 08 0N for unsigned bytes). "
            "Not an IDX file, or corrupted."
        )
    header_end = 4 + 4 * ndim
    if len(blob) < header_end:
        raise DataCorruptedError(f"{path}: truncated inside the IDX header.")
    shape = struct.unpack(f">{ndim}I", blob[4:header_end])
    expected = header_end + int(np.prod(shape))
    if len(blob) != expected:
        raise DataCorruptedError(
            f"{path}: header promises shape {shape} = {expected} bytes, file has {len(blob)}. "
            "Truncated or padded download: delete it and download again."
        )
    return np.frombuffer(blob, dtype=np.uint8, offset=header_end).reshape(shape)


@lru_cache(maxsize=8)
def _load_uint8(name: str, split: str, raw: Path) -> tuple[np.ndarray, np.ndarray]:
    spec = _spec(name)
    img_stem, lbl_stem = _SPLIT_FILES[split]
    images = read_idx(_file_in(raw, img_stem), spec.sha256[img_stem])
    labels = read_idx(_file_in(raw, lbl_stem), spec.sha256[lbl_stem])
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise DataCorruptedError(f"{raw}: images {images.shape} and labels {labels.shape} don't match.")
    return images, labels


def load_images(
    name: str = "mnist",
    split: str = "train",
    value_range: tuple[float, float] = (-1.0, 1.0),
    root=None,
    download: bool = False,
    limit: int | None = None,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of a split as one ``(N, 1, 28, 28)`` float32 tensor, plus ``(N,)`` int64 labels.

    ``value_range=(-1, 1)`` matches a ``tanh`` generator; ``(0, 1)`` matches a sigmoid/Bernoulli
    decoder and most classifiers. ``limit`` keeps the first N (tests, quick demos).
    """
    if split not in _SPLIT_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    lo, hi = (float(v) for v in value_range)
    if (lo, hi) not in {(-1.0, 1.0), (0.0, 1.0)}:
        raise ValueError(f"value_range must be (-1, 1) or (0, 1), got {value_range!r}")
    try:
        raw = find_dataset_dir(name, root)
    except DataNotFoundError:
        if not download:
            raise
        raw = download_to_cache(name, root)  # into root= if given, else the data root (data_files.data_root)
    images, labels = _load_uint8(name, split, raw)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.copy()).to(device=device).unsqueeze(1).float().div_(255.0)
    if lo == -1.0:
        x = x.mul_(2.0).sub_(1.0)
    return x, torch.from_numpy(labels.astype(np.int64)).to(device)


def to_unit_range(x: torch.Tensor) -> torch.Tensor:
    """Map a ``[-1, 1]`` image batch (tanh output) to ``[0, 1]`` for display or a classifier."""
    return (x.clamp(-1, 1) + 1) / 2


def check_tanh_images(images: torch.Tensor) -> None:
    """Training data for the generators here must be ``(N, 1, 28, 28)`` in [-1, 1]: their outputs are
    tanh-shaped (GANs) or their noise schedule assumes that scale (DDPM: ᾱ_T ≈ 0 maps [-1, 1] data to
    N(0, I)). Catches the usual mistakes — uint8 or [0, 255] data, [0, 1] data — with the fix."""
    if not torch.is_tensor(images) or images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"images must be a (N, 1, 28, 28) tensor, got {shape}")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1.001 or hi > 1.001:
        raise ValueError(f"images must lie in [-1, 1], got [{lo:.3g}, {hi:.3g}] (the models' tanh range); "
                         "uint8 or [0, 255] data? use imagegen_lib.core.data.load_images(value_range=(-1, 1))")
    if lo >= 0 and hi <= 1 and images.numel() > 1000:
        raise ValueError(f"images lie in [{lo:.3g}, {hi:.3g}]: looks like [0, 1] data, but these models work in "
                         "[-1, 1]: rescale with x * 2 - 1 (or load_images(value_range=(-1, 1)))")


class ImageTensorDataset(Dataset):
    """The same tensors behind the standard ``Dataset`` interface (for ``DataLoader`` users)."""

    def __init__(self, name="mnist", split="train", value_range=(-1.0, 1.0), root=None, download=False):
        self.images, self.labels = load_images(name, split, value_range, root=root, download=download)
        self.classes = _spec(name).classes

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])


# One downloader for everything (imagegen_lib.core.download, through data_files): each file verified before
# it is kept, nothing partial left behind. ``data.download("mnist")`` is the short name.
download = download_to_cache


def verify(name: str = "mnist", root=None) -> Path:
    """Hash-check all four files of ``name``; return the folder. Raises a DataError on any problem."""
    spec = _spec(name)
    raw = find_dataset_dir(name, root)
    for stem, sha in spec.sha256.items():
        read_idx(_file_in(raw, stem), sha)
    return raw
