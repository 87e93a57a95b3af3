"""The data files on disk: where they are looked for, where missing ones come from, and
:func:`ensure`, which brings whatever is missing.

The sets: MNIST and Fashion-MNIST (four IDX files each, torchvision's layout
``<root>/MNIST/raw/train-images-idx3-ubyte[.gz]``) and the super-resolution sets Set5, Set14,
BSD100 and T91 (``<root>/sr/<Set>/<image>.png``). Reading them into tensors is ``data.py``'s and
``sr/data.py``'s business; this module only knows files, so it imports no torch: ``make data``
runs it before every build and test run, and with everything present it must answer in a
fraction of a second (importing torch alone takes ~2 s on 2 cores).

**Where they are looked for** (:func:`search_roots`):

1. ``root=``, when a function gets one: only there;
2. ``$IMAGEGEN_DATA``, when set: only there. An explicit setting is the user's word, so a folder
   that does not hold the data is an error that names it, never a silent fall-back to another copy;
3. otherwise a data folder beside the repository (``../shared/data``, also looked for beside the
   working directory's parent), then the user cache ``~/.cache/imagegen/data``
   (``$IMAGEGEN_CACHE/data``).

**Where missing files go** (:func:`data_root`): ``$IMAGEGEN_DATA`` when set, else the user cache.

**Where they come from**: ``$IMAGEGEN_DATA_URL`` when set, the base URL of a mirror whose paths are
a data root's layout (``python -m http.server -d ../shared/data`` serves one); otherwise the
official sources: MNIST and Fashion-MNIST from torchvision's mirror lists, the SR sets from pinned
commits of public GitHub copies. Every file goes through :func:`imagegen_lib.core.download.fetch_file`:
checked against the published sha256 before it is kept, nothing partial ever left behind.

Presence is all :func:`ensure` asks of a set it finds: the loaders hash every file each time they
read it, so hashing 150 MB here as well would only slow every build down.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .download import DownloadError, fetch_file
from .file_hashes import BSD100_SOURCE_NAMES, FILE_SHA256, T91_PIXEL_SHA256
from .paths import PACKAGE_REPO, user_cache

__all__ = [
    "DATASETS", "SR_SETS", "DataError", "DataNotFoundError", "DataCorruptedError", "DownloadError",
    "search_roots", "data_root", "mirror_url", "find_dataset_dir", "find_sr_set", "download_dataset",
    "download_sr_sets", "ensure", "Ensured", "DATA_NAMES",
]

REPO_ROOT = PACKAGE_REPO
USER_CACHE = user_cache() / "data"
DATA_ENV, MIRROR_ENV = "IMAGEGEN_DATA", "IMAGEGEN_DATA_URL"


class DataError(RuntimeError):
    """Base class: something is wrong with the data on disk. The message says how to fix it."""


class DataNotFoundError(DataError, FileNotFoundError):
    pass


class DataCorruptedError(DataError, ValueError):
    pass


# ---------------------------------------------------------------------------------------------
# The sets
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DatasetSpec:
    folder: str  # torchvision's folder name under the root
    classes: tuple[str, ...]
    # sha256 of the *uncompressed* official files (the same bytes whether you got them as .gz or not)
    sha256: dict[str, str]
    citation: str
    mirrors: tuple[str, ...]  # official sources (torchvision's list, in its order), each serving <stem>.gz


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
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
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
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    ),
}

# Where each SR set comes from (see ../shared/data/README.md): repository, commit, folder, and how a
# file is named there. Set5/Set14/BSD100 bytes are unchanged (sha256 = FILE_SHA256); T91 comes as
# BMP and is stored as PNG (checked by its decoded pixels).
_DENOISING = ("majedelhelou/denoising_datasets", "58234876fef6f1b56306705c78dfd40cdb837b86")
_DCSCN = ("jiny2001/dcscn-super-resolution", "d382bc30d41c94ac72f8cb148d61cc4864b3b380")


@dataclass(frozen=True)
class SRSetSpec:
    role: str  # 'train' | 'eval'
    repo: tuple[str, str]  # (owner/name, commit)
    source_folder: str
    citation: str


SR_SETS: dict[str, SRSetSpec] = {
    "Set5": SRSetSpec("eval", _DENOISING, "CSet5", "Bevilacqua et al., BMVC 2012"),
    "Set14": SRSetSpec("eval", _DENOISING, "CSet14", "Zeyde et al., Curves and Surfaces 2010"),
    "BSD100": SRSetSpec("eval", _DCSCN, "data/bsd100", "Martin et al., ICCV 2001 (BSDS300 test split)"),
    "T91": SRSetSpec("train", _DCSCN, "data/yang91", "Yang et al., IEEE TIP 2010"),
}

# What ensure() and `imagegen data download` accept: a set, or 'sr' for all four SR sets.
DATA_NAMES = (*DATASETS, "sr", *SR_SETS)


def _spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}") from None


def _sr_spec(name: str) -> SRSetSpec:
    if name not in SR_SETS:
        raise ValueError(f"unknown super-resolution set {name!r}; choose one of {list(SR_SETS)}")
    return SR_SETS[name]


def _files_of(name: str) -> list[str]:
    """File names of an SR set, in natural order (t2 before t10)."""
    files = [k.split("/", 1)[1] for k in FILE_SHA256 if k.startswith(name + "/")]

    def natural(f):
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", f)]
    return sorted(files, key=natural)


# ---------------------------------------------------------------------------------------------
# Where the files are
# ---------------------------------------------------------------------------------------------

def _explicit_root() -> Path | None:
    value = os.environ.get(DATA_ENV)
    return Path(value).expanduser().resolve() if value else None


def search_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """The data roots looked in, in order (see the module docstring)."""
    if root is not None:
        return [Path(root)]
    if (explicit := _explicit_root()) is not None:
        return [explicit]
    unique = []
    for r in (REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data", USER_CACHE):
        if (r := r.resolve()) not in unique:
            unique.append(r)
    return unique


def data_root() -> Path:
    """Where downloads go: ``$IMAGEGEN_DATA`` when set (it is then *the* data root), else the user cache."""
    return _explicit_root() or USER_CACHE


def mirror_url() -> str | None:
    """``$IMAGEGEN_DATA_URL`` without a trailing slash, or None (then the official sources are used)."""
    value = os.environ.get(MIRROR_ENV, "").strip()
    return value.rstrip("/") or None


def _file_in(raw: Path, stem: str) -> Path | None:
    for candidate in (raw / stem, raw / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _not_found(what: str, pattern: str, tried: list[Path], cli_name: str, root) -> DataNotFoundError:
    """The error for a set found nowhere: where it was looked for, and the fix that fits how the
    place was chosen (root= argument, $IMAGEGEN_DATA, or the default places)."""
    download = f"imagegen data download {cli_name}"
    if root is not None:
        return DataNotFoundError(
            f"{what} not found in root={root}: {tried[0]} does not hold {pattern}.\n"
            "Fix: copy the files there, or let the loader fetch them into it (download=True); "
            f"`{download}` fetches into {data_root()} instead.")
    if _explicit_root() is not None:
        return DataNotFoundError(
            f"{what} not found in {DATA_ENV}={os.environ[DATA_ENV]}: {tried[0]} does not hold {pattern}.\n"
            f"{DATA_ENV} is set, so it is the data root and the only place looked.\n"
            f"Fix: download it there with `{download}` (or `make data`); or copy the files into {tried[0]}; "
            f"or unset {DATA_ENV} to use a data folder beside the repository or {USER_CACHE} "
            "(missing sets are downloaded there).")
    where = "\n".join(f"  - {p}" for p in tried)
    return DataNotFoundError(
        f"{what} not found. Looked for {pattern} in:\n{where}\n"
        f"Fix: download it with `{download}` (or `make data`), which puts it in {data_root()}; or point "
        f"{DATA_ENV} at a folder that holds it (torchvision layout: <root>/MNIST/raw/..., <root>/sr/Set5/...).")


def find_dataset_dir(name: str = "mnist", root=None) -> Path:
    """The ``raw/`` folder that holds all four IDX files of ``name``; a clear error if none does."""
    spec = _spec(name)
    tried = [r / spec.folder / "raw" for r in search_roots(root)]
    for raw in tried:
        if all(_file_in(raw, stem) for stem in spec.sha256):
            return raw
    raise _not_found(name, "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]", tried, name, root)


def find_sr_set(name: str, root=None) -> Path:
    """The folder ``<root>/sr/<name>`` that holds every file of the set; a clear error if none does."""
    _sr_spec(name)
    files = _files_of(name)
    tried = [r / "sr" / name for r in search_roots(root)]
    for folder in tried:
        if all((folder / f).is_file() for f in files):
            return folder
    raise _not_found(f"super-resolution set {name}", f"its {len(files)} images", tried, "sr", root)


# ---------------------------------------------------------------------------------------------
# Checks of downloaded bytes (they raise ValueError; fetch_file turns that into a DownloadError)
# ---------------------------------------------------------------------------------------------

def _idx_check(expected: str, gz: bool) -> Callable[[bytes], None]:
    """The check of one IDX file: the sha256 of its *uncompressed* bytes is the published one."""
    def check(blob: bytes) -> None:
        if gz:
            try:
                blob = gzip.decompress(blob)
            except (OSError, EOFError, zlib.error) as e:  # what gzip raises on a cut or garbled archive
                raise ValueError(f"not a readable gzip file ({e})") from None
        digest = hashlib.sha256(blob).hexdigest()
        if digest != expected:
            raise ValueError(f"sha256 of the {'uncompressed ' if gz else ''}bytes is {digest[:16]}…, expected "
                             f"{expected[:16]}… — not the published file (corrupted in transit, or a wrong mirror)")
    return check


def pixel_sha256(img) -> str:
    """sha256 of an image's decoded pixels (``b"MODE WxH\\n" + raw bytes``): T91's identity (see file_hashes)."""
    return hashlib.sha256(f"{img.mode} {img.size[0]}x{img.size[1]}\n".encode() + img.tobytes()).hexdigest()


def _decode(blob: bytes):
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(blob))
        img.load()
    except OSError as e:
        raise ValueError(f"not a readable image ({e})") from None
    return img


def _sr_check(name: str, filename: str) -> Callable[[bytes], None]:
    """The check of one SR image: its published bytes, or for T91 its published pixels (a PNG's
    bytes depend on the encoder, so a re-encoded T91 image is still the same image)."""
    expected = FILE_SHA256[f"{name}/{filename}"]

    def check(blob: bytes) -> None:
        if hashlib.sha256(blob).hexdigest() == expected:
            return
        if name == "T91" and pixel_sha256(_decode(blob)) == T91_PIXEL_SHA256[Path(filename).stem]:
            return
        raise ValueError(f"sha256 differs from the published file {name}/{filename} ({expected[:12]}…)")
    return check


def _t91_bmp_check(stem: str) -> Callable[[bytes], None]:
    def check(blob: bytes) -> None:
        if pixel_sha256(_decode(blob).convert("RGB")) != T91_PIXEL_SHA256[stem]:
            raise ValueError(f"pixels differ from the published T91 image {stem}")
    return check


# ---------------------------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------------------------

def _download_fix(folder: Path) -> str:
    if (mirror := mirror_url()) is not None:
        return (f"Fix: check that {MIRROR_ENV}={mirror} is up and serves a data root's layout "
                f"({mirror}/MNIST/raw/<file>[.gz], {mirror}/sr/Set5/baby.png, ...), or unset {MIRROR_ENV} to "
                f"download from the official sources; or copy the files into {folder}.")
    return (f"Fix: check your network (and proxy settings) and run it again; or set {MIRROR_ENV} to a mirror "
            "that serves a data root's layout (`python -m http.server -d <data folder>` on a machine that has "
            f"it); or copy the files into {folder}.")


def _fetch_first(sources: list[tuple[str, str]], folder: Path, check_for: Callable[[str], Callable],
                 desc: str, progress: bool = True) -> Path:
    """Fetch the first of ``sources`` (URL, file name to keep) that serves a file passing its check.

    A failing source (404, network error, wrong bytes) is not fatal while another may work; if none
    does, the DownloadError lists every attempt and the fix."""
    failures = []
    for url, filename in sources:
        try:
            return fetch_file(url, folder / filename, check=check_for(filename), desc=desc, progress=progress)
        except DownloadError as e:
            failures.append(f"  - {e}")
    raise DownloadError(f"could not download {desc} into {folder}; tried:\n" + "\n".join(failures) + "\n"
                        + _download_fix(folder), url=sources[-1][0] if sources else None)


def _idx_sources(spec: DatasetSpec, stem: str) -> list[tuple[str, str]]:
    """(URL, file name kept) in the order tried: a mirror's ``.gz`` then its plain file; else each
    official mirror's ``.gz``. The file keeps the name it was served under (the loader reads both)."""
    if (mirror := mirror_url()) is not None:
        base = f"{mirror}/{spec.folder}/raw/{stem}"
        return [(f"{base}.gz", f"{stem}.gz"), (base, stem)]
    return [(f"{m}{stem}.gz", f"{stem}.gz") for m in spec.mirrors]


def _verify_idx_folder(name: str, raw: Path) -> None:
    """Every file of the set in ``raw`` is the published one (those there before the download too)."""
    for stem, sha in _spec(name).sha256.items():
        path = _file_in(raw, stem)
        try:
            _idx_check(sha, path.suffix == ".gz")(path.read_bytes())
        except ValueError as e:
            raise DataCorruptedError(f"{path}: {e}. Delete it and run `imagegen data download {name}` again.") from None


def download_dataset(name: str = "mnist", root: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Download the IDX files of ``name`` missing from ``<root>/<folder>/raw`` (default root: :func:`data_root`),
    each verified before it is kept, then verify the whole folder; return it."""
    spec = _spec(name)
    raw = Path(root if root is not None else data_root()) / spec.folder / "raw"
    for stem, sha in spec.sha256.items():
        if _file_in(raw, stem) is None:
            _fetch_first(_idx_sources(spec, stem), raw, lambda f, sha=sha: _idx_check(sha, f.endswith(".gz")),
                         desc=f"{name} {stem}", progress=progress)
    _verify_idx_folder(name, raw)
    return raw


def _sr_sources(name: str) -> list[tuple[str, str]]:
    """``[(URL, file name here), …]`` of a set: the mirror's ``sr/<name>/<file>``, else the pinned
    commit's raw file (T91 as ``.bmp``: converted to PNG after its check)."""
    if (mirror := mirror_url()) is not None:
        return [(f"{mirror}/sr/{name}/{f}", f) for f in _files_of(name)]
    spec = _sr_spec(name)
    repo, commit = spec.repo
    if name == "BSD100":
        pairs = sorted(BSD100_SOURCE_NAMES.items())
    elif name == "T91":
        pairs = [(f"{Path(f).stem}.bmp", f) for f in _files_of(name)]
    else:
        pairs = [(f, f) for f in _files_of(name)]
    base = f"https://raw.githubusercontent.com/{repo}/{commit}/{spec.source_folder}"
    return [(f"{base}/{src}", dst) for src, dst in pairs]


def _bmp_to_png(bmp: Path, png: Path) -> None:
    """Store a verified T91 BMP as the PNG the loader reads (written beside it, then renamed: atomic)."""
    from PIL import Image

    part = png.with_name(png.name + ".part")
    try:
        with Image.open(bmp) as img:
            img.convert("RGB").save(part, format="PNG")
        os.replace(part, png)
    finally:
        part.unlink(missing_ok=True)
        bmp.unlink(missing_ok=True)


def _fetch_sr_file(name: str, url: str, folder: Path, filename: str) -> None:
    desc = f"{name}/{filename}"
    if url.endswith(".bmp"):
        stem = Path(filename).stem
        bmp = _fetch_first([(url, f"{stem}.bmp")], folder, lambda f: _t91_bmp_check(stem), desc, progress=False)
        _bmp_to_png(bmp, folder / filename)
    else:
        _fetch_first([(url, filename)], folder, lambda f: _sr_check(name, filename), desc, progress=False)


def _verify_sr_folder(name: str, folder: Path) -> None:
    for f in _files_of(name):
        try:
            _sr_check(name, f)((folder / f).read_bytes())
        except ValueError as e:
            fix = "Delete it and run `imagegen data download sr` again."
            raise DataCorruptedError(f"{folder / f}: {e}. {fix}") from None


def _download_sr_set(name: str, target: Path, progress: bool = True) -> Path:
    from tqdm.auto import tqdm

    folder = target / "sr" / name
    missing = [(url, f) for url, f in _sr_sources(name) if not (folder / f).is_file()]
    for url, f in tqdm(missing, desc=name, unit="file", leave=False, disable=not progress or not missing):
        _fetch_sr_file(name, url, folder, f)
    _verify_sr_folder(name, folder)
    return folder


def download_sr_sets(names=None, root: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Download the SR sets' missing images into ``<root>/sr/<Set>/`` (default root: :func:`data_root`),
    each verified before it is kept (Set5/Set14/BSD100 byte for byte, T91 by its pixels); return ``<root>/sr``."""
    target = Path(root if root is not None else data_root())
    for name in names or SR_SETS:
        _sr_spec(name)
        _download_sr_set(name, target, progress)
    return target / "sr"


# ---------------------------------------------------------------------------------------------
# ensure: what `make data` and `imagegen data download` run
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ensured:
    name: str  # 'mnist', 'fashion-mnist', 'Set5', ...
    folder: Path  # where the set's files are
    downloaded: bool  # fetched (and verified) now, rather than found


def _expand(names) -> list[str]:
    if isinstance(names, str):
        names = [names]
    out = []
    for name in names or [*DATASETS, "sr"]:
        if name not in DATA_NAMES:
            raise ValueError(f"unknown data set {name!r}; choose from {', '.join(DATA_NAMES)}")
        out += list(SR_SETS) if name == "sr" else [name]
    return list(dict.fromkeys(out))


def _source_label() -> str:
    mirror = mirror_url()
    return f"{MIRROR_ENV}={mirror}" if mirror else "the official sources"


def ensure(names=None, progress: bool = True) -> list[Ensured]:
    """Make sure the named sets are on disk: a set found in :func:`search_roots` is left as it is
    (presence only: the loaders verify every file they read); a missing one is downloaded into
    :func:`data_root`, every file verified. ``names``: 'mnist', 'fashion-mnist', 'sr' (the four SR
    sets) or one SR set ('Set5', ...); default: all. Raises DownloadError / DataError with the fix."""
    done = []
    for name in _expand(names):
        is_idx = name in DATASETS
        try:
            done.append(Ensured(name, find_dataset_dir(name) if is_idx else find_sr_set(name), False))
            continue
        except DataNotFoundError:
            pass
        if progress:
            print(f"{name}: not found; downloading it into {data_root()} from {_source_label()}", file=sys.stderr)
        folder = download_dataset(name, progress=progress) if is_idx else _download_sr_set(name, data_root(), progress)
        done.append(Ensured(name, folder, True))
    return done
