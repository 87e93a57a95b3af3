"""``imagegen sample``: draw a PNG grid from any generator checkpoint (GAN, conditional GAN, VAE, DDPM),
through the common sampling interface of :mod:`imagegen_lib.generators.samplers`.

    imagegen sample runs/dcgan/generator.safetensors --n 64 --out grid.png
    imagegen sample runs/cgan/generator.safetensors --label 3 --n 16          # sixteen 3s
    imagegen sample runs/cgan/generator.safetensors --n 100 --nrow 10         # column k: class k
    imagegen sample runs/ddpm/model.safetensors --sampler ddim --steps 50

The same checkpoint, seed and options draw the same grid.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..core.runtime import resolve_device
from .arg_types import positive_int
from .common import add_sampler_args, sampler_options
from .registry import command

__all__ = ["add_arguments", "run"]


@command("sample", help="draw a grid of samples from a generator checkpoint")
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="NAME.safetensors (with NAME.json beside it)")
    p.add_argument("--n", type=positive_int, default=64)
    p.add_argument("--nrow", type=positive_int, default=8)
    p.add_argument("--out", type=Path, default=Path("samples.png"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    add_sampler_args(p, label=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from ..core.viz import save_grid
    from ..generators.samplers import check_class_labels, load_sampler

    device = resolve_device(args.device)
    sampler = load_sampler(args.checkpoint, device=device)
    options = sampler_options(args)
    key = sampler.sampler_key(**options)
    labels = None
    if args.label is not None:
        if not sampler.conditional:
            raise ValueError(f"--label needs a class-conditional model (cgan, or a diffusion model trained with "
                             f"--cond-drop); {args.checkpoint} is an unconditional {sampler.arch}")
        labels = check_class_labels(args.label, args.n)
    t0 = time.perf_counter()
    x = sampler.sample(args.n, seed=args.seed, device=device, labels=labels, **options)
    seconds = time.perf_counter() - t0
    path = save_grid(x, args.out, nrow=args.nrow)
    what = f", class {args.label}" if args.label is not None else ""
    how = f", {key}" if key else ""
    print(f"{args.n} samples from {sampler.arch} ({sampler.dataset}{what}{how}) in {seconds:.2f} s -> {path}")
    return 0
