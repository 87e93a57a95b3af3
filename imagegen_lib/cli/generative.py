"""The ``imagegen`` commands for the models beyond the GAN (wired into :mod:`imagegen_lib.cli`).

    imagegen train cgan --epochs 30 --out runs/cgan                 # class-conditional DCGAN (the GAN parser)
    imagegen train vae --epochs 30 --out runs/vae [--beta 1] [--latent-dim 16]
    imagegen train ddpm --epochs 200 --time-budget 330 --out runs/ddpm --device cuda [--schedule cosine]
    imagegen sample runs/cgan/generator.safetensors --label 3 --n 16          # sixteen 3s
    imagegen sample runs/cgan/generator.safetensors --n 100 --nrow 10         # column k: class k
    imagegen sample runs/ddpm/model.safetensors --sampler ddim --steps 50
    imagegen eval checkpoints/ddpm_mnist.safetensors --sampler ddim --steps 50 --manifest

``--time-budget SECONDS`` ends training after that much time in this call and still writes the
final checkpoint (``--resume`` continues it). ``imagegen eval --manifest`` of a diffusion model
records each sampler under ``metrics.samplers.<key>`` (``ancestral1000``, ``ddim50``; ``_n500``
appended when ``--n`` is not 10000), and the default sampler (ancestral) also as the entry's
top-level metrics.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..core.data_files import DATASETS
from ..core.runtime import device_name, resolve_device, run_metadata
from .arg_types import non_negative_float as _non_negative_float

__all__ = ["add_train_parsers", "add_sampler_args", "sampler_options", "cmd_sample", "manifest_metrics"]

FULL_N = 10_000  # the protocol's n: keys of evaluations at another n say so ("_n500")


def _channels(text: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three widths like 32,64,128, got {text!r}") from None
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected three positive widths (28², 14², 7²) like 32,64,128, got {text!r}")
    return values


def _add_loop_args(p, positive_int, positive_float, log_every: int, sample_every: int, ckpt_every: int) -> None:
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    p.add_argument("--log-every", type=positive_int, default=log_every)
    p.add_argument("--sample-every", type=positive_int, default=sample_every)
    p.add_argument("--ckpt-every", type=positive_int, default=ckpt_every)
    p.add_argument("--time-budget", type=positive_float, default=None, metavar="SECONDS",
                   help="stop after this many seconds of training in this call (writes the final checkpoint)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA only)")


def add_train_parsers(models, add_common_train_args, positive_int, positive_float) -> None:
    """``imagegen train vae`` and ``imagegen train ddpm`` (the conditional GAN is one of cli.py's GAN parsers)."""
    from ..diffusion.train import DDPMConfig
    from ..vae.train import VAEConfig

    vae = models.add_parser("vae", help="convolutional VAE (Bernoulli likelihood, β option)",
                            description="convolutional VAE: ELBO with a Bernoulli likelihood on [0, 1] pixels")
    add_common_train_args(vae)
    _add_loop_args(vae, positive_int, positive_float, VAEConfig.log_every, VAEConfig.sample_every,
                   VAEConfig.ckpt_every)
    vae.add_argument("--latent-dim", type=positive_int, default=VAEConfig.latent_dim)
    vae.add_argument("--width", type=positive_int, default=VAEConfig.width, help="channels of the first conv")
    vae.add_argument("--hidden", type=positive_int, default=VAEConfig.hidden)
    vae.add_argument("--beta", type=_non_negative_float, default=VAEConfig.beta, help="KL weight (1: the ELBO)")
    vae.set_defaults(func=_cmd_train_vae, epochs=VAEConfig.epochs)

    ddpm = models.add_parser("ddpm", help="denoising diffusion (DDPM) with a small U-Net",
                             description="DDPM: ε-prediction U-Net, linear or cosine schedule, EMA weights")
    add_common_train_args(ddpm)
    _add_loop_args(ddpm, positive_int, positive_float, DDPMConfig.log_every, DDPMConfig.sample_every,
                   DDPMConfig.ckpt_every)
    ddpm.add_argument("--channels", type=_channels, default=DDPMConfig.channels,
                      help="U-Net widths at 28x28, 14x14, 7x7 (default 32,64,128: 1.7M parameters)")
    ddpm.add_argument("--no-attention", action="store_true", help="no self-attention at 7x7")
    ddpm.add_argument("--schedule", choices=["linear", "cosine"], default=DDPMConfig.schedule)
    ddpm.add_argument("--T", type=positive_int, default=DDPMConfig.T, help="diffusion steps")
    ddpm.add_argument("--warmup", type=int, default=DDPMConfig.warmup, help="learning-rate warm-up steps")
    ddpm.add_argument("--ema", type=_non_negative_float, default=DDPMConfig.ema, help="EMA decay (0: off)")
    ddpm.add_argument("--grad-clip", type=_non_negative_float, default=DDPMConfig.grad_clip)
    ddpm.set_defaults(func=_cmd_train_ddpm, epochs=DDPMConfig.epochs)


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


def _cmd_train_vae(args, argv) -> int:
    from ..vae.train import VAEConfig, train_vae

    config = VAEConfig(latent_dim=args.latent_dim, width=args.width, hidden=args.hidden, beta=args.beta,
                       lr=args.lr or VAEConfig.lr, **_common_config(args))
    device = resolve_device(args.device)
    print(f"training vae on {args.dataset} ({device_name(device)}) -> {args.out}", file=sys.stderr)
    run = train_vae(config, **_loop_kwargs(args, argv, device))
    _report("vae", run, args.out, ("recon", "kl"))
    return 0


def _cmd_train_ddpm(args, argv) -> int:
    from ..diffusion.train import DDPMConfig, train_ddpm

    config = DDPMConfig(channels=args.channels, attention=not args.no_attention, schedule=args.schedule, T=args.T,
                        warmup=args.warmup, ema=args.ema, grad_clip=args.grad_clip, lr=args.lr or DDPMConfig.lr,
                        **_common_config(args))
    device = resolve_device(args.device)
    print(f"training ddpm on {args.dataset} ({device_name(device)}) -> {args.out}", file=sys.stderr)
    run = train_ddpm(config, **_loop_kwargs(args, argv, device))
    _report("ddpm", run, args.out, ("loss",))
    return 0


# ---------------------------------------------------------------------------------------------
# sample and eval
# ---------------------------------------------------------------------------------------------

def add_sampler_args(p: argparse.ArgumentParser, positive_int, label: bool = False) -> None:
    """``--sampler/--steps/--eta`` for diffusion models (and ``--label`` for the conditional GAN's samples)."""
    if label:
        p.add_argument("--label", type=int, default=None,
                       help="conditional GAN: draw this class only (default: 0..9 in turn; --nrow 10 for columns)")
    p.add_argument("--sampler", choices=["ancestral", "ddim"], default=None,
                   help="diffusion models: ancestral (all T steps, the default) or ddim")
    p.add_argument("--steps", type=positive_int, default=None, help="DDIM steps (default 50)")
    p.add_argument("--eta", type=_non_negative_float, default=None, help="DDIM noise (0: deterministic)")


def sampler_options(args) -> dict:
    """The diffusion options given on the command line (none: every model's default)."""
    return {k: getattr(args, k) for k in ("sampler", "steps", "eta") if getattr(args, k, None) is not None}


def cmd_sample(args, argv) -> int:
    from ..core.viz import save_grid
    from ..generators.samplers import check_class_labels, load_sampler

    device = resolve_device(args.device)
    sampler = load_sampler(args.checkpoint, device=device)
    options = sampler_options(args)
    key = sampler.sampler_key(**options)
    labels = None
    if args.label is not None:
        if not sampler.conditional:
            raise ValueError(f"--label needs the conditional GAN (cgan); {args.checkpoint} is a {sampler.arch}")
        labels = check_class_labels(args.label, args.n)
    t0 = time.perf_counter()
    x = sampler.sample(args.n, seed=args.seed, device=device, labels=labels, **options)
    seconds = time.perf_counter() - t0
    path = save_grid(x, args.out, nrow=args.nrow)
    what = f", class {args.label}" if args.label is not None else ""
    how = f", {key}" if key else ""
    print(f"{args.n} samples from {sampler.arch} ({sampler.dataset}{what}{how}) in {seconds:.2f} s -> {path}")
    return 0


def manifest_metrics(result: dict, metrics: dict) -> dict:
    """What ``imagegen eval --manifest`` merges into an entry: top-level metrics and/or a per-sampler record."""
    timing = {k: result[k] for k in ("sample_seconds_per_1k", "sample_device") if k in result}
    if not result.get("sampler"):
        return {**metrics, **timing}
    key = result["sampler"] + ("" if result["n"] == FULL_N else f"_n{result['n']}")
    record = {"samplers": {key: {**metrics, **timing}}}
    if result.get("default_sampler"):
        record.update(metrics, **timing, sampler=result["sampler"])
    return record
