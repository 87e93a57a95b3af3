"""``imagegen train vae|ddpm``: the likelihood-based models of Q5, trained by the shared loop
(:mod:`imagegen_lib.core.loop`) on MNIST or Fashion-MNIST.

    imagegen train vae --epochs 30 --out runs/vae [--beta 1] [--latent-dim 16]
    imagegen train ddpm --epochs 200 --time-budget 330 --out runs/ddpm --device cuda [--schedule cosine]
    imagegen train ddpm --prediction v --zero-terminal-snr --out runs/ddpm_v     # what the net predicts
    imagegen train ddpm --cond-drop 0.1 --out runs/ddpm_cfg                       # class-conditional, for CFG
    imagegen train flow --epochs 20 --out runs/flow --device cuda                 # flow matching, same U-Net

``--time-budget SECONDS`` ends training after that much time in this call and still writes the
final checkpoint (``--resume`` continues it). The defaults are the models' config classes'.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.data_files import DATASETS
from ..core.runtime import device_name, resolve_device, run_metadata
from .arg_types import non_negative_float, positive_float, positive_int, unet_widths
from .common import add_every_args, add_train_args

__all__ = ["add_vae_arguments", "run_vae", "add_ddpm_arguments", "run_ddpm", "add_flow_arguments", "run_flow"]


def _add_loop_args(p: argparse.ArgumentParser, config) -> None:
    """The flags of the shared loop, after the common training flags; defaults from ``config``."""
    add_train_args(p)
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    add_every_args(p, config.log_every, config.sample_every, config.ckpt_every)
    p.add_argument("--time-budget", type=positive_float, default=None, metavar="SECONDS",
                   help="stop after this many seconds of training in this call (writes the final checkpoint)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA only)")
    p.set_defaults(epochs=config.epochs)


def add_vae_arguments(p: argparse.ArgumentParser) -> None:
    from ..vae.train import VAEConfig  # imports torch: only when this parser is built

    _add_loop_args(p, VAEConfig)
    p.add_argument("--latent-dim", type=positive_int, default=VAEConfig.latent_dim)
    p.add_argument("--width", type=positive_int, default=VAEConfig.width, help="channels of the first conv")
    p.add_argument("--hidden", type=positive_int, default=VAEConfig.hidden)
    p.add_argument("--beta", type=non_negative_float, default=VAEConfig.beta, help="KL weight (1: the ELBO)")


def _add_unet_args(p: argparse.ArgumentParser, config) -> None:
    """The flags diffusion and flow matching share: the U-Net, the optimiser's extras, conditioning."""
    _add_loop_args(p, config)
    p.add_argument("--channels", type=unet_widths, default=config.channels,
                   help="U-Net widths at 28x28, 14x14, 7x7 (default 32,64,128: 1.7M parameters)")
    p.add_argument("--no-attention", action="store_true", help="no self-attention at 7x7")
    p.add_argument("--warmup", type=int, default=config.warmup, help="learning-rate warm-up steps")
    p.add_argument("--ema", type=non_negative_float, default=config.ema, help="EMA decay (0: off)")
    p.add_argument("--grad-clip", type=non_negative_float, default=config.grad_clip)
    p.add_argument("--cond-drop", type=non_negative_float, default=config.cond_drop, metavar="P",
                   help="> 0: class-conditional, each label replaced by 'no label' with probability P "
                        "(0.1 is usual), for classifier-free guidance (--guidance when sampling)")


def add_ddpm_arguments(p: argparse.ArgumentParser) -> None:
    from ..diffusion.train import DDPMConfig  # imports torch: only when this parser is built

    _add_unet_args(p, DDPMConfig)
    p.add_argument("--schedule", choices=["linear", "cosine"], default=DDPMConfig.schedule)
    p.add_argument("--T", type=positive_int, default=DDPMConfig.T, help="diffusion steps")
    p.add_argument("--prediction", choices=["eps", "x0", "v"], default="eps",
                   help="what the U-Net predicts: the noise (Ho et al.), the clean image, or v = a*eps - s*x0")
    p.add_argument("--min-snr-gamma", type=non_negative_float, default=DDPMConfig.min_snr_gamma, metavar="GAMMA",
                   help="Min-SNR-gamma loss weighting (Hang et al. 2023 use 5; 0: off)")
    p.add_argument("--zero-terminal-snr", action="store_true",
                   help="rescale the schedule so the last step is pure noise (needs --prediction v or x0)")


def add_flow_arguments(p: argparse.ArgumentParser) -> None:
    from ..diffusion.train import DDPMConfig

    _add_unet_args(p, DDPMConfig)


def _loop_kwargs(args, argv, device) -> dict:
    return dict(out_dir=args.out, resume=args.resume, device=device, progress=not args.no_progress,
                max_steps=args.max_steps, time_budget=args.time_budget,
                extra_meta=run_metadata(argv, device, args.seed))


def _common_config(args) -> dict:
    return dict(dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                limit=args.limit, log_every=args.log_every, sample_every=args.sample_every,
                ckpt_every=args.ckpt_every, bf16=args.bf16)


def _report(kind: str, run, out: Path, keys: tuple[str, ...]) -> None:
    last = run.history[-1] if run.history else {}
    losses = ", ".join(f"{k} {last.get(k, float('nan')):.4g}" for k in keys)
    why = {"time_budget": " (time budget reached)", "max_steps": " (--max-steps)"}.get(run.stopped_by, "")
    print(f"done: {run.steps} steps in {run.seconds:.1f} s{why}; {losses}; {kind}: {out / 'model.safetensors'}")


def run_vae(args: argparse.Namespace, argv: list[str]) -> int:
    from ..vae.train import VAEConfig, train_vae

    config = VAEConfig(latent_dim=args.latent_dim, width=args.width, hidden=args.hidden, beta=args.beta,
                       lr=args.lr or VAEConfig.lr, **_common_config(args))
    device = resolve_device(args.device)
    print(f"training vae on {args.dataset} ({device_name(device)}) -> {args.out}", file=sys.stderr)
    run = train_vae(config, **_loop_kwargs(args, argv, device))
    _report("vae", run, args.out, ("recon", "kl"))
    return 0


def _unet_config(args) -> dict:
    from ..diffusion.train import DDPMConfig

    return dict(channels=args.channels, attention=not args.no_attention, warmup=args.warmup, ema=args.ema,
                grad_clip=args.grad_clip, lr=args.lr or DDPMConfig.lr, cond_drop=args.cond_drop,
                **_common_config(args))


def _run_unet_model(kind: str, config, args, argv) -> int:
    from ..diffusion.train import train_ddpm

    device = resolve_device(args.device)
    print(f"training {kind} on {args.dataset} ({device_name(device)}) -> {args.out}", file=sys.stderr)
    run = train_ddpm(config, **_loop_kwargs(args, argv, device))
    _report(kind, run, args.out, ("loss",))
    return 0


def run_ddpm(args: argparse.Namespace, argv: list[str]) -> int:
    from ..diffusion.train import DDPMConfig

    config = DDPMConfig(schedule=args.schedule, T=args.T, prediction=args.prediction,
                        min_snr_gamma=args.min_snr_gamma, zero_terminal_snr=args.zero_terminal_snr,
                        **_unet_config(args))
    return _run_unet_model("ddpm", config, args, argv)


def run_flow(args: argparse.Namespace, argv: list[str]) -> int:
    from ..diffusion.train import DDPMConfig

    return _run_unet_model("flow", DDPMConfig(objective="flow", **_unet_config(args)), args, argv)
