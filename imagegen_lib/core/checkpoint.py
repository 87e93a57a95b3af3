"""Checkpoints: tensors in safetensors (never pickle), everything else in a small JSON file.

A checkpoint ``NAME`` is the pair ``NAME.safetensors`` + ``NAME.json``. The JSON records the
sha256 of the tensor file it belongs to, so a pair torn apart (new weights, old JSON) is detected
instead of silently mixing two runs. Both files are written atomically: to a temp file in the
same folder, ``fsync``, then ``os.replace`` — a crash leaves the old file or the new one, never
half of one.

One window remains between the two renames. To close it, the tensor file also carries the
metadata in its own header, with the sha256 of its tensor bytes: when the JSON turns out to be
the previous one, the weights are still self-describing and verifiable, and loading goes on with
their embedded metadata. Training therefore always resumes from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

__all__ = ["CheckpointError", "atomic_write_bytes", "save_checkpoint", "load_checkpoint",
           "checkpoint_paths", "sha256_file", "optimizer_tensors", "load_optimizer", "open_run_dir"]


class CheckpointError(RuntimeError):
    """A checkpoint is missing, torn, corrupted or not the kind the caller expected."""


_UMASK = os.umask(0)
os.umask(_UMASK)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def checkpoint_paths(stem: str | os.PathLike) -> tuple[Path, Path]:
    """``run/last`` or ``run/last.safetensors`` or ``run/last.json`` -> both paths of the pair."""
    stem = Path(stem)
    if stem.suffix in {".safetensors", ".json"}:
        stem = stem.with_suffix("")
    # Appended, not with_suffix: a stem may hold dots of its own (``adv-0.05_x3``).
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_checkpoint(stem, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Save tensors + JSON-able metadata as the pair ``stem.safetensors`` / ``stem.json``."""
    st_path, json_path = checkpoint_paths(stem)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    embedded = dict(meta, tensors_file=st_path.name, data_sha256=hashlib.sha256(_data_section(st_save(tensors))).hexdigest())
    blob = st_save(tensors, metadata={_META_KEY: json.dumps(embedded, sort_keys=True)})
    meta = dict(embedded, tensors_sha256=hashlib.sha256(blob).hexdigest())
    atomic_write_bytes(st_path, blob)
    atomic_write_bytes(json_path, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())
    return st_path


def load_checkpoint(stem, expect_kind: str | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Load a pair written by :func:`save_checkpoint`, checking it is whole and of the right kind."""
    st_path, json_path = checkpoint_paths(stem)
    for p in (st_path, json_path):
        if not p.is_file():
            raise CheckpointError(
                f"checkpoint file {p} does not exist. A checkpoint is a pair NAME.safetensors + NAME.json; "
                "pass either file or the common stem."
            )
    try:
        meta = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{json_path} is not valid JSON ({e}); the checkpoint is corrupted.") from None
    blob = st_path.read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if meta.get("tensors_sha256") not in (None, digest) and (embedded := _embedded_meta(blob)) is not None:
        meta = dict(embedded, tensors_sha256=digest)  # the JSON is the previous one: trust the weights
    elif meta.get("tensors_sha256") not in (None, digest):
        raise CheckpointError(
            f"{st_path} does not match {json_path.name} (sha256 {digest[:12]}… vs recorded "
            f"{meta['tensors_sha256'][:12]}…): the pair is torn or the weights were modified. "
            "Re-download or re-train it."
        )
    if expect_kind is not None and meta.get("kind") != expect_kind:
        raise CheckpointError(
            f"{json_path} holds a {meta.get('kind')!r} checkpoint, but a {expect_kind!r} one is needed here."
        )
    try:
        tensors = st_load(blob)
    except (SafetensorError, ValueError) as e:
        raise CheckpointError(f"{st_path} is not a valid safetensors file ({e}).") from None
    return tensors, meta


_META_KEY = "imagegen_meta"


def _data_section(blob: bytes) -> bytes:
    """The tensor bytes of a safetensors file (after the 8-byte length and the JSON header)."""
    return blob[8 + int.from_bytes(blob[:8], "little"):]


def _embedded_meta(blob: bytes) -> dict | None:
    """The metadata a tensor file carries in its header, if its tensor bytes still match it."""
    try:
        header = json.loads(blob[8:8 + int.from_bytes(blob[:8], "little")])
        meta = json.loads(header["__metadata__"][_META_KEY])
    except (ValueError, KeyError, TypeError):
        return None
    if meta.get("data_sha256") != hashlib.sha256(_data_section(blob)).hexdigest():
        return None  # the weights were modified after saving
    return meta


def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict, dict]:
    """Adam & co.: moments as tensors (for safetensors), hyper-parameters as JSON."""
    sd = opt.state_dict()
    tensors = {f"{prefix}.{i}.{k}": v for i, st in sd["state"].items() for k, v in st.items()
               if torch.is_tensor(v)}
    return tensors, {"param_groups": sd["param_groups"]}


# How an optimizer runs, not what it learns: a checkpoint written by the GPU's fused, capturable
# Adam must resume on a CPU's plain Adam and vice versa, so these follow the optimizer being loaded.
_IMPLEMENTATION_KEYS = ("foreach", "fused", "capturable", "differentiable")


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict, prefix: str, meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    groups = [dict(saved, **{k: current[k] for k in _IMPLEMENTATION_KEYS if k in current})
              for saved, current in zip(meta["param_groups"], opt.param_groups)]
    groups += meta["param_groups"][len(groups):]  # a count mismatch: let load_state_dict say so
    opt.load_state_dict({"state": state, "param_groups": groups})


def open_run_dir(out_dir, resume: bool) -> Path | None:
    """Prepare a training run's folder (``None``: no folder, nothing saved).

    Refuses to overwrite an existing run unless ``resume``, and refuses ``resume`` when there is
    no run to continue: every training loop shares these rules, and their messages.
    """
    if out_dir is None:
        if resume:
            raise ValueError("resume=True needs out_dir (where the run's checkpoint is)")
        return None
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise PermissionError(f"cannot write to output folder {out}: {e.strerror}. Choose another --out.") from None
    has_run = checkpoint_paths(out / "last")[0].exists()
    if resume and not has_run:
        raise FileNotFoundError(f"--resume: {out} holds no checkpoint (last.safetensors); start without --resume first.")
    if has_run and not resume:
        raise FileExistsError(f"{out} already holds a training run (last.safetensors). Pass --resume to continue it, "
                              "or choose another --out.")
    return out

