"""Training on several processes with DistributedDataParallel, launched by ``torchrun``.

    torchrun --standalone --nproc_per_node 4 -m imagegen_lib.cli train dcgan --epochs 30 --out runs/dcgan

Started without ``torchrun`` nothing here does anything: every helper is the identity, and the
single-process loop is unchanged. Under ``torchrun`` (it sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``PORT``) :func:`init_from_env` joins the process group: NCCL with
one GPU per process (``cuda:LOCAL_RANK``), gloo on CPUs.

The choices, and why:

* **``--batch-size`` is the global batch.** Each of the ``W`` ranks trains on ``B / W`` images
  per step, so the learning rate, the steps per epoch and the checkpoints mean the same thing
  whatever ``W`` is, and a run can even be resumed on a different number of GPUs.
* **Sharding like ``DistributedSampler``**: every rank computes the epoch's permutation from
  ``(seed, epoch)`` (the single-process rule), takes the global batch ``order[i·B:(i+1)·B]`` and
  keeps every ``W``-th image from position ``rank``. The union over ranks is exactly the batch a
  single process would take.
* **Noise per rank, from one generator**: every rank draws the global batch's noise from the
  run's noise generator (same seed) and keeps its rows ``rank::W``. The ranks see *different*
  noise (not ``W`` copies of the same fakes), and the noise, like the data, is the single-process
  run's. Nothing depends on per-rank seeds, so nothing depends on ``W``.
* **Gradients**: DDP averages them, so a BN-free model (the MLP GAN) follows the single-process
  trajectory up to float rounding (``tests/test_distributed.py`` checks it). The G step
  back-propagates through D, so D's DDP hooks fire there too and D's (unused) gradients are
  all-reduced once more: a small cost for keeping :func:`~imagegen_lib.gan.step.gan_train_step`
  the single source of truth; the next D step's ``zero_grad`` discards them.
* **Batch norm stays per rank** (plain ``BatchNorm2d``, not ``SyncBatchNorm``): each rank
  normalises its ``B / W`` images by their own statistics, as ``B / W`` on one GPU would.
  SyncBatchNorm would reproduce the single-process statistics but adds two all-reduces per BN
  layer per forward pass, and D runs three forward passes a step: for this launch-bound model
  that would cost more than the extra GPUs gain, and gloo (the CPU tests) does not support it.
  So the DCGAN under DDP is a slightly different estimator than one process with batch ``B``:
  keep ``B / W`` at 64 or more.
* **``broadcast_buffers=False``**: with it on, DDP overwrites D's BN statistics from rank 0 at
  each of D's three forward passes, *in place*, between a forward and its backward. The running
  statistics aren't used in training mode anyway; instead, before each checkpoint every rank
  averages them (:func:`average_buffers`), so the saved generator's eval-mode statistics describe
  all ranks' batches, and every rank continues from the same state.
* **Rank 0 alone** prints, draws the progress bar, renders sample grids and writes checkpoints;
  the others wait at a barrier after each write, so a checkpoint on disk is always complete
  before any rank moves on. Every checkpoint also records each rank's weight digest: equal
  digests prove the replicas did not drift.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from . import checkpoint as ckpt

__all__ = ["DistInfo", "launched_by_torchrun", "init_from_env", "shutdown", "is_distributed", "rank",
           "world_size", "is_main", "barrier", "wrap", "shard", "check_global_batch", "mean_over_ranks",
           "average_buffers", "replica_record", "open_run_dir"]


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def init_from_env(device: str = "auto") -> DistInfo | None:
    """Join the process group ``torchrun`` describes in the environment (``None`` if not launched by it).

    ``device``: ``auto`` picks CUDA when there is a GPU; any CUDA request becomes ``cuda:LOCAL_RANK``
    (one GPU per process); ``cpu`` uses gloo even on a GPU machine.
    """
    if not launched_by_torchrun():
        return None
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed; run without torchrun")
    local_rank = int(os.environ["LOCAL_RANK"])
    wants_cuda = (device in (None, "auto") and torch.cuda.is_available()) or str(device).startswith("cuda")
    if wants_cuda:
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for, but torch sees no CUDA GPU here; use --device cpu")
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s) here: "
                             "use --nproc_per_node <= the number of GPUs")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        dev, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, **({"device_id": dev} if backend == "nccl" else {}))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, backend, dev)


def shutdown() -> None:
    if is_distributed():
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def wrap(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in DistributedDataParallel when distributed (see the module notes), else itself."""
    if not is_distributed():
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    with warnings.catch_warnings():  # newer torch renames the flag; 2.11 (the GPU machines) knows only this one
        warnings.filterwarnings("ignore", message=".*broadcast_buffers.*", category=FutureWarning)
        return DDP(module, device_ids=ids, broadcast_buffers=False)


def check_global_batch(batch_size: int) -> None:
    if batch_size % world_size():
        raise ValueError(f"--batch-size {batch_size} is the global batch and must split evenly over the "
                         f"{world_size()} processes; use a multiple of {world_size()}")


def shard(x: torch.Tensor) -> torch.Tensor:
    """This rank's share of a global batch: rows ``rank, rank + W, ...`` (DistributedSampler's rule)."""
    return x[rank()::world_size()] if is_distributed() else x


def mean_over_ranks(stats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Average each (scalar) statistic over the ranks, so the logged loss is the global batch's."""
    if not is_distributed() or not stats:
        return stats
    keys = sorted(stats)
    stacked = torch.stack([torch.as_tensor(stats[k]).float() for k in keys])
    dist.all_reduce(stacked)
    return dict(zip(keys, (stacked / world_size()).unbind()))


@torch.no_grad()
def average_buffers(*modules: nn.Module) -> None:
    """Average the floating-point buffers (batch-norm running statistics) over the ranks, in place."""
    if not is_distributed():
        return
    for module in modules:
        for buf in module.buffers():
            if buf.is_floating_point():
                dist.all_reduce(buf)
                buf.div_(world_size())


def _digest(modules) -> str:
    h = hashlib.sha256()
    for module in modules:
        for name, value in module.state_dict().items():
            h.update(name.encode())
            h.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def replica_record(*modules: nn.Module) -> dict:
    """``{"ddp": {...}}`` for a checkpoint's metadata: world size, backend and each rank's weight
    digest (a collective: every rank must call it). ``{}`` when not distributed."""
    if not is_distributed():
        return {}
    digests = [None] * world_size()
    dist.all_gather_object(digests, _digest(modules))
    if is_main() and len(set(digests)) > 1:
        warnings.warn(f"DDP replicas differ: weight digests {[d[:12] for d in digests]}", RuntimeWarning)
    return {"ddp": {"world_size": world_size(), "backend": dist.get_backend(),
                    "state_sha256_by_rank": digests}}


def open_run_dir(out_dir, resume: bool) -> Path | None:
    """:func:`imagegen_lib.core.checkpoint.open_run_dir`, checked by rank 0 alone (no racing probes), its
    verdict shared: every rank raises the same error, or every rank gets the folder."""
    if not is_distributed():
        return ckpt.open_run_dir(out_dir, resume)
    verdict: list = [None]
    if is_main():
        try:
            ckpt.open_run_dir(out_dir, resume)
        except (OSError, ValueError) as e:
            verdict[0] = e
    dist.broadcast_object_list(verdict, src=0)
    if verdict[0] is not None:
        raise verdict[0]
    return None if out_dir is None else Path(out_dir)
