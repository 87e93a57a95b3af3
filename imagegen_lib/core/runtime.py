"""Where a run happens and what made it: the device, its name, the commit, the command.

Every training command records these in its checkpoint's metadata (and ``imagegen ship`` copies
them into ``checkpoints/MANIFEST.json``), so that a shipped file says how to make it again. The
library and the CLI both use them; they live here, below both, so that neither imports the other.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from typing import TYPE_CHECKING

from .paths import PACKAGE_REPO

if TYPE_CHECKING:
    import torch

__all__ = ["resolve_device", "device_name", "git_commit", "run_metadata"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None): the CUDA GPU if torch sees one, else the CPU; a named device must exist."""
    import torch  # here, not at the top: `imagegen --help` must not wait for torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no CUDA GPU here; use --device cpu")
    return device


def git_commit() -> str:
    """The commit the code runs from (``-dirty`` if it has uncommitted changes), or 'unknown'.

    ``IMAGEGEN_GIT_COMMIT`` wins when set: a copy of the tree sent to another machine may carry a stale
    ``.git``, so the sender passes the commit it knows."""
    if os.environ.get("IMAGEGEN_GIT_COMMIT"):
        return os.environ["IMAGEGEN_GIT_COMMIT"]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PACKAGE_REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PACKAGE_REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("IMAGEGEN_GIT_COMMIT", "unknown")


def device_name(device) -> str:
    """The GPU's model name, or the CPU with its core and thread count (recorded with every run)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def run_metadata(argv: list[str], device, seed: int) -> dict:
    """What a checkpoint records about the run that made it: the exact command, seed, commit, device, torch."""
    return {"command": "imagegen " + shlex.join(argv), "seed": seed, "git_commit": git_commit(),
            "device": device_name(device), "torch": _torch_version()}


def _torch_version() -> str:
    import torch

    return torch.__version__
