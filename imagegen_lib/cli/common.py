"""The arguments several ``imagegen`` commands share, written once: what every ``train`` model takes,
how often a training loop logs, samples and checkpoints, the diffusion sampler options of ``sample``
and ``eval``, and the ``--json`` report of ``eval`` and ``eval-sr``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core.runtime import run_metadata
from .arg_types import non_negative_float, positive_float, positive_int

__all__ = ["add_train_args", "add_every_args", "add_sampler_args", "sampler_options", "write_report"]


def add_train_args(p: argparse.ArgumentParser) -> None:
    """The flags of every ``imagegen train`` model except ``sr`` (whose schedule is in steps and minutes)."""
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, samples)")
    p.add_argument("--epochs", type=positive_int, default=20)
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate (default: 2e-4 for GANs, 2e-3 peak for the classifier)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--limit", type=positive_int, default=None, help="use only the first N training images")
    p.add_argument("--max-steps", type=positive_int, default=None,
                   help="stop after this many steps (resume later to finish)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")


def add_every_args(p: argparse.ArgumentParser, log_every: int, sample_every: int, ckpt_every: int) -> None:
    """``--log-every/--sample-every/--ckpt-every`` in steps, with the model's own defaults."""
    p.add_argument("--log-every", type=positive_int, default=log_every)
    p.add_argument("--sample-every", type=positive_int, default=sample_every)
    p.add_argument("--ckpt-every", type=positive_int, default=ckpt_every)


def add_sampler_args(p: argparse.ArgumentParser, label: bool = False) -> None:
    """``--sampler/--steps/--eta`` for diffusion models (and ``--label`` for the conditional GAN's samples)."""
    if label:
        p.add_argument("--label", type=int, default=None,
                       help="conditional GAN: draw this class only (default: 0..9 in turn; --nrow 10 for columns)")
    p.add_argument("--sampler", choices=["ancestral", "ddim", "euler", "heun", "dpmpp2m"], default=None,
                   help="diffusion models: ancestral (all T steps; the DDPM's default), ddim, or an ODE solver "
                        "(euler = DDIM with eta 0, heun, dpmpp2m = DPM-Solver++(2M); euler is the flow default)")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="steps of every sampler but ancestral (default 50; Heun evaluates the network 2*steps-1 times)")
    p.add_argument("--eta", type=non_negative_float, default=None, help="DDIM noise (0: deterministic)")
    p.add_argument("--guidance", type=non_negative_float, default=None,
                   help="classifier-free guidance scale w of a class-conditional diffusion model "
                        "(1: none, the default; 0: unconditional; >1: stronger class evidence, less diversity)")


def sampler_options(args: argparse.Namespace) -> dict:
    """The diffusion options given on the command line (none: every model's default)."""
    return {k: getattr(args, k) for k in ("sampler", "steps", "eta", "guidance") if getattr(args, k, None) is not None}


def write_report(path: Path, report: dict, argv: list[str], device, seed: int) -> None:
    """``--json PATH``: the results, with the command, commit and device that made them."""
    report["run"] = run_metadata(argv, device, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
