"""The shipped checkpoints and their manifest, ``checkpoints/MANIFEST.json``.

Every checkpoint the book loads was produced by our own CLI and then *shipped* with
``imagegen ship RUN/generator --name dcgan_mnist``, which copies the pair into ``checkpoints/``
and records in the manifest what a reader needs to trust and reproduce it: sha256 and size, the
exact command, seed, git commit, device, training time, and the metrics it reached (``imagegen
eval`` adds FID & co. later). A test re-checks every entry against the files.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from .checkpoint import atomic_write_bytes, checkpoint_paths, load_checkpoint, save_checkpoint, sha256_file
from .paths import book_root

__all__ = ["CHECKPOINT_DIR", "MAX_BYTES", "read_manifest", "ship", "update_metrics", "record_floor", "shipped"]

# The clone's checkpoints/, or outside a clone the folder the notebook's first cell fills (paths.py).
CHECKPOINT_DIR = book_root() / "checkpoints"
MAX_BYTES = 10 * 1024 * 1024  # the repository's budget per checkpoint

_RUN_KEYS = ("kind", "arch", "dataset", "command", "seed", "git_commit", "device", "torch",
             "train_seconds", "step", "epoch")


def manifest_path(directory: Path = CHECKPOINT_DIR) -> Path:
    return Path(directory) / "MANIFEST.json"


def read_manifest(directory: Path = CHECKPOINT_DIR) -> dict:
    path = manifest_path(directory)
    if not path.exists():
        return {"checkpoints": {}}
    return json.loads(path.read_text())


@contextlib.contextmanager
def _locked(directory: Path):
    """Hold an exclusive lock on the manifest while reading, changing and writing it.

    Several ``imagegen eval --manifest`` may run side by side (the GPU script does): without the
    lock, two read-modify-write cycles interleave and one silently loses the other's metrics.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no concurrent writers expected there
        yield
        return
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # Lock the folder, not MANIFEST.json: atomic writes replace the file (a new inode), which
    # would leave a later writer locking a different file than an earlier one.
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _deep_merge(old: dict, new: dict) -> dict:
    """``old`` updated with ``new``; nested dicts (per-sampler metrics, timings) merge key by key."""
    merged = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _write_manifest(manifest: dict, directory: Path) -> None:
    atomic_write_bytes(manifest_path(directory), (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())


def shipped(name: str, directory: Path = CHECKPOINT_DIR) -> Path:
    """The stem of a shipped checkpoint (``checkpoints/NAME``), with a clear error if it isn't there."""
    stem = Path(directory) / name
    if not checkpoint_paths(stem)[0].exists():
        known = sorted(read_manifest(directory)["checkpoints"])
        hint = "" if name not in known else (
            " (it is shipped, but not downloaded here: the notebook's first cell fetches what its chapter "
            "needs, see imagegen_lib.book.files.prepare_chapter)")
        raise FileNotFoundError(f"no shipped checkpoint {name!r} in {directory}; shipped: {known}{hint}")
    return stem


def shipped_stem(checkpoint, directory: Path | None = None) -> Path:
    """The stem of ``checkpoint`` if it is a shipped one (a file in ``directory``); else a ValueError.

    ``--manifest`` records metrics of shipped checkpoints only: the manifest describes the files in
    ``checkpoints/``, not runs elsewhere. ``directory`` defaults to :data:`CHECKPOINT_DIR`, looked up
    at call time (tests point it at a temporary folder).
    """
    directory = Path(directory if directory is not None else CHECKPOINT_DIR)
    checkpoint = Path(checkpoint)
    stem = checkpoint.with_suffix("") if checkpoint.suffix in (".safetensors", ".json") else checkpoint
    if stem.resolve().parent != directory.resolve():
        raise ValueError(f"--manifest records metrics of shipped checkpoints only (in {directory}); "
                         f"{checkpoint} is not one. Ship it first: imagegen ship {checkpoint} --name NAME")
    return stem


def ship(source, name: str, directory: Path = CHECKPOINT_DIR, half: bool = False, study: str | None = None) -> dict:
    """Copy a checkpoint pair into ``directory`` as ``NAME.*`` and record it in the manifest.

    ``half``: store its float tensors as float16 (half the bytes). Every loader copies them into
    float32 modules, so the model computes in float32 as before; only the weights are rounded
    (relative error ≤ 2⁻¹¹) — check that the metrics did not move (``imagegen eval`` both) before
    shipping a model this way. ``study``: the name of the comparison this model is one variant of (its
    entry then stays out of the default comparison table)."""
    src_weights, src_json = checkpoint_paths(source)
    tensors, meta = load_checkpoint(source)  # validates the pair (exists, untorn, readable)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    dst_weights, dst_json = checkpoint_paths(directory / name)
    if half:
        halved = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
        meta = {k: v for k, v in meta.items() if k not in ("tensors_file", "data_sha256", "tensors_sha256")}
        save_checkpoint(dst_weights, halved, dict(meta, stored_dtype="float16"))
        size = dst_weights.stat().st_size
    else:
        size = src_weights.stat().st_size
    if size > MAX_BYTES:
        if half:
            dst_weights.unlink(missing_ok=True)
            dst_json.unlink(missing_ok=True)
        raise ValueError(f"{src_weights} is {size / 2**20:.1f} MiB{' in float16' if half else ''}; shipped "
                         f"checkpoints must be <= {MAX_BYTES / 2**20:.0f} MiB (use a smaller --width"
                         f"{'' if half else ' or --half'})")
    if half:
        _, meta = load_checkpoint(dst_weights)
    else:
        atomic_write_bytes(dst_weights, src_weights.read_bytes())
        meta["tensors_file"] = dst_weights.name
        atomic_write_bytes(dst_json, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    history = _history_of(src_weights.parent)
    if history is not None:
        atomic_write_bytes(directory / f"{name}.history.json", (json.dumps(history) + "\n").encode())

    with _locked(directory):
        return _record_shipped(name, meta, size, dst_weights, dst_json, history, directory, study)


def _record_shipped(name, meta, size, dst_weights, dst_json, history, directory, study=None) -> dict:
    manifest = read_manifest(directory)
    old = manifest["checkpoints"].get(name, {})
    entry = {k: meta[k] for k in _RUN_KEYS if k in meta}
    entry.update(file=dst_weights.name, meta_file=dst_json.name, bytes=size, sha256=sha256_file(dst_weights),
                 history_file=f"{name}.history.json" if history is not None else None,
                 metrics={**({"test_accuracy": meta["test_accuracy"]} if "test_accuracy" in meta else {})},
                 config=meta.get("config", {}))
    if study:
        entry["study"] = study
    if old.get("sha256") == entry["sha256"]:
        entry["metrics"] = {**old.get("metrics", {}), **entry["metrics"]}  # same weights: keep metrics
    manifest["checkpoints"][name] = entry
    _write_manifest(manifest, directory)
    return entry


def update_metrics(name: str, metrics: dict, directory: Path = CHECKPOINT_DIR) -> dict:
    """Merge ``metrics`` into the manifest entry ``name`` (written by ``imagegen eval --manifest``).

    Nested dicts merge key by key: recording ``{"samplers": {"ddim50": …}}`` keeps ``ancestral1000``.
    """
    with _locked(directory):
        manifest = read_manifest(directory)
        if name not in manifest["checkpoints"]:
            raise KeyError(f"{name!r} is not in {manifest_path(directory)}; ship it first (imagegen ship)")
        entry = manifest["checkpoints"][name]
        entry["metrics"] = _deep_merge(entry.get("metrics", {}), metrics)
        _write_manifest(manifest, directory)
        return entry


def record_floor(dataset: str, metrics: dict, directory: Path = CHECKPOINT_DIR) -> None:
    """Store the real-data floor of the metrics (``imagegen eval real --manifest``) beside the entries."""
    with _locked(directory):
        manifest = read_manifest(directory)
        manifest.setdefault("floors", {})[dataset] = metrics
        _write_manifest(manifest, directory)


def _history_of(run_dir: Path):
    """The per-step training history saved in the run's ``last.json``, if the run folder has one."""
    last = run_dir / "last.json"
    if last.exists():
        return json.loads(last.read_text()).get("history")
    return None

