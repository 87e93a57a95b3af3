"""MNIST and Fashion-MNIST as whole tensors (and as a ``Dataset`` when you want one).

60,000 × 1 × 28 × 28 float32 images are 188 MB: they fit in RAM and on any GPU, so the training
loops index one big tensor instead of paying a ``DataLoader``'s per-item Python overhead.

Where the files come from, in order:

1. ``root=`` if you pass one;
2. ``$IMAGEGEN_DATA``;
3. ``../shared/data`` next to this repository (the course machines);
4. ``~/.cache/imagegen/data`` — where ``download=True`` (torchvision's downloader, official
   mirrors) puts them for users elsewhere.

Each root is read in torchvision's layout, ``<root>/MNIST/raw/train-images-idx3-ubyte`` (or the
same name with ``.gz``). Every file is checked against the sha256 of the official release, and
its IDX header against its size, so a truncated or corrupted download fails loudly with a
message that says how to fix it instead of training on garbage.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "DATASETS",
    "DataError",
    "DataNotFoundError",
    "DataCorruptedError",
    "search_roots",
    "find_dataset_dir",
    "read_idx",
    "load_images",
    "ImageTensorDataset",
    "download",
    "to_unit_range",
    "check_tanh_images",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
USER_CACHE = Path(os.environ.get("IMAGEGEN_CACHE", Path.home() / ".cache" / "imagegen")) / "data"


@dataclass(frozen=True)
class DatasetSpec:
    folder: str  # torchvision's folder name under the root
    classes: tuple[str, ...]
    # sha256 of the *uncompressed* official files (the same bytes whether you got them as .gz or not)
    sha256: dict[str, str]
    citation: str


_SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        folder="MNIST",
        classes=tuple(str(i) for i in range(10)),
        sha256={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        citation="LeCun, Bottou, Bengio, Haffner (1998), CC BY-SA 3.0",
    ),
    "fashion-mnist": DatasetSpec(
        folder="FashionMNIST",
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        sha256={
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        citation="Xiao, Rasul, Vollgraf (2017), MIT license",
    ),
}


class DataError(RuntimeError):
    """Base class: something is wrong with the data on disk. The message says how to fix it."""


class DataNotFoundError(DataError, FileNotFoundError):
    pass


class DataCorruptedError(DataError, ValueError):
    pass


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}") from None


def search_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """The data roots tried, in order (see the module docstring)."""
    if root is not None:
        return [Path(root)]
    roots = []
    if os.environ.get("IMAGEGEN_DATA"):
        roots.append(Path(os.environ["IMAGEGEN_DATA"]))
    roots += [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data", USER_CACHE]
    unique = []
    for r in roots:
        r = r.resolve()
        if r not in unique:
            unique.append(r)
    return unique


def _file_in(raw: Path, stem: str) -> Path | None:
    for candidate in (raw / stem, raw / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def find_dataset_dir(name: str = "mnist", root=None) -> Path:
    """The ``raw/`` folder that holds all four IDX files of ``name``; a clear error if none does."""
    spec = _spec(name)
    tried = []
    for r in search_roots(root):
        raw = r / spec.folder / "raw"
        tried.append(raw)
        if all(_file_in(raw, stem) for stem in spec.sha256):
            return raw
    where = "\n".join(f"  - {p}" for p in tried)
    raise DataNotFoundError(
        f"{name} not found. Looked for {spec.folder}/raw/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte[.gz] in:\n"
        f"{where}\n"
        "Fix: point IMAGEGEN_DATA at a folder that holds it (torchvision layout), or download it once with\n"
        f"  imagegen data download {name}     (or, in Python: imagegen_lib.data.download({name!r}))"
    )


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
        raw = download_to_cache(name)
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
                         "uint8 or [0, 255] data? use imagegen_lib.data.load_images(value_range=(-1, 1))")
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


def download_to_cache(name: str = "mnist", root: str | os.PathLike | None = None) -> Path:
    """Download the official files with torchvision (md5-checked), then sha256-check them here."""
    import torchvision.datasets as tvd

    spec = _spec(name)
    target = Path(root) if root is not None else USER_CACHE
    target.mkdir(parents=True, exist_ok=True)
    cls = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST}[name]
    try:
        for train in (True, False):
            cls(root=str(target), train=train, download=True)
    except Exception as e:  # network errors come in many types; the fix is the same
        raise DataNotFoundError(
            f"downloading {name} into {target} failed: {e}\n"
            "Fix: check your network, or copy the four official IDX files into "
            f"{target / spec.folder / 'raw'} (or anywhere, and set IMAGEGEN_DATA)."
        ) from None
    raw = target / spec.folder / "raw"
    for stem, sha in spec.sha256.items():
        read_idx(_file_in(raw, stem), sha)
    return raw


download = download_to_cache


def verify(name: str = "mnist", root=None) -> Path:
    """Hash-check all four files of ``name``; return the folder. Raises a DataError on any problem."""
    spec = _spec(name)
    raw = find_dataset_dir(name, root)
    for stem, sha in spec.sha256.items():
        read_idx(_file_in(raw, stem), sha)
    return raw
