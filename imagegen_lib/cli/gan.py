"""``imagegen train dcgan|mlpgan|cgan``: train a GAN on MNIST or Fashion-MNIST, alone or under torchrun.

    imagegen train dcgan --epochs 20 --out runs/dcgan [--device cuda] [--resume]
    imagegen train mlpgan --epochs 50 --out runs/mlpgan
    imagegen train cgan --epochs 30 --out runs/cgan                 # class-conditional DCGAN
    imagegen train dcgan --ema 0.999 --r1 1 --out runs/stable       # + EMA generator, lazy R1 penalty
    torchrun --standalone --nproc_per_node 2 -m imagegen_lib.cli train dcgan --out runs/ddp

On a GPU the step runs as one CUDA graph in bf16 (``--fp32``: float32; ``--eager``: the plain
PyTorch loop). Under ``torchrun`` each process joins the process group (:mod:`imagegen_lib.core.distributed`)
and rank 0 alone prints. ``--ema`` also writes ``generator_ema.safetensors`` (score it with
``imagegen eval``, as ``generator.safetensors``); ``--r1`` trains with the plain step (said in one line).
"""

from __future__ import annotations

import argparse
import sys

from ..core.data_files import DATASETS
from ..core.runtime import device_name, resolve_device, run_metadata
from .arg_types import decay, non_negative_float, positive_int
from .common import add_every_args, add_train_args

__all__ = ["add_arguments", "add_mlp_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser, width: bool = True) -> None:
    """The convolutional GANs' flags (dcgan, cgan); ``width=False`` for the MLP, which has no channels."""
    add_train_args(p)
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    p.add_argument("--z-dim", type=positive_int, default=100)
    if width:
        p.add_argument("--width", type=positive_int, default=64, help="channel width (64: 1.9M-param G)")
    p.add_argument("--g-loss", choices=["nonsaturating", "saturating"], default="nonsaturating")
    p.add_argument("--beta1", type=float, default=0.5)
    p.add_argument("--ema", type=decay, default=0.0, metavar="DECAY",
                   help="keep an EMA of G's weights with this decay (e.g. 0.999) and export it as "
                        "generator_ema.safetensors beside generator.safetensors (default 0: off)")
    p.add_argument("--r1", type=non_negative_float, default=0.0, metavar="GAMMA",
                   help="R1 penalty GAMMA/2·E||∇D(x_real)||² on D (default 0: off; runs the plain step on a GPU)")
    p.add_argument("--r1-every", type=positive_int, default=16, metavar="K",
                   help="lazy R1: an extra D step on the penalty weighted by K, every K-th step "
                        "(default 16, as StyleGAN2)")
    add_every_args(p, log_every=50, sample_every=500, ckpt_every=1000)
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--bf16", action="store_true", default=None,
                           help="bf16 autocast (CUDA only; the default with the fast GPU step, not with --eager)")
    precision.add_argument("--fp32", dest="bf16", action="store_false",
                           help="float32 throughout, also with the fast GPU step")
    p.add_argument("--eager", action="store_true",
                   help="on a GPU, the plain float32 PyTorch loop instead of the CUDA-graph step (debugging: "
                        "the same updates as the fast step with --fp32, up to rounding)")


def add_mlp_arguments(p: argparse.ArgumentParser) -> None:
    add_arguments(p, width=False)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from ..core import distributed
    from ..gan.train import GANConfig, train_gan

    arch = args.model  # the row of `imagegen train` that was chosen: dcgan, mlpgan or cgan
    config = GANConfig(arch=arch, dataset=args.dataset, z_dim=args.z_dim,
                       width=getattr(args, "width", 64), epochs=args.epochs, batch_size=args.batch_size,
                       lr=args.lr or GANConfig.lr, beta1=args.beta1, g_loss=args.g_loss, seed=args.seed,
                       limit=args.limit, log_every=args.log_every, sample_every=args.sample_every,
                       ckpt_every=args.ckpt_every, bf16=args.bf16, ema=args.ema, r1=args.r1,
                       r1_every=args.r1_every)
    dist_info = distributed.init_from_env(args.device)  # under torchrun: join its process group; else None
    device = dist_info.device if dist_info else resolve_device(args.device)
    meta = run_metadata(argv, device, args.seed)
    say = print if distributed.is_main() else (lambda *a, **k: None)  # rank 0 speaks for all
    say(f"training {arch} on {args.dataset} ({device_name(device)}"
        f"{f' x {dist_info.world_size} processes' if dist_info else ''}) -> {args.out}", file=sys.stderr)
    try:
        result = train_gan(config, out_dir=args.out, resume=args.resume, device=device,
                           progress=not args.no_progress, max_steps=args.max_steps, extra_meta=meta,
                           fast=False if args.eager else None)
    finally:
        distributed.shutdown()
    last = result.history[-1] if result.history else {}
    say(f"done: {result.steps} steps in {result.seconds:.1f} s; "
        f"D loss {last.get('loss_d', float('nan')):.3f}, G loss {last.get('loss_g', float('nan')):.3f}; "
        f"generator: {args.out / 'generator.safetensors'}"
        + (f", EMA generator: {args.out / 'generator_ema.safetensors'}" if result.G_ema is not None else ""))
    return 0
