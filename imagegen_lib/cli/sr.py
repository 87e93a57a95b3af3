"""``imagegen train sr``: train a super-resolution CNN (SRCNN, ESPCN or a residual net) on T91 patches.

    imagegen train sr --arch resnet --scale 3 --out runs/sr_resnet_x3 --minutes 6 [--device cuda --bf16]
    imagegen train sr --arch espcn --scale 3 --out runs/espcn --steps 20000 [--resume]
    imagegen train sr --arch resnet --scale 3 --color y --out runs/sr_gan_x3 --steps 3000 --lr 1e-4 \
        --init-from checkpoints/sr_resnet_x3.safetensors --adv-weight 5e-3    # + a GAN term: sharper, lower PSNR

Its flags are its own, not the GANs' (:mod:`.common`): the schedule is counted in steps and/or
minutes, not epochs. ``imagegen eval-sr`` (:mod:`.eval_sr`) scores the result.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.runtime import device_name, resolve_device, run_metadata
from .arg_types import int_at_least, non_negative_float, positive_float, scale_factors

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..sr.data import FSRCNN_DOWNSCALES
    from ..sr.train import SRConfig

    d = SRConfig.__dataclass_fields__
    p.add_argument("--arch", required=True, choices=["srcnn", "espcn", "resnet"])
    p.add_argument("--scale", type=int, choices=[2, 3, 4], default=3)
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, history, model)")
    p.add_argument("--steps", type=int_at_least(1), default=None, help="optimizer steps")
    p.add_argument("--minutes", type=positive_float, default=None,
                   help="wall-time budget (setup included); the cosine schedule ends when it ends")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA only)")
    p.add_argument("--channels-last", action="store_true", help="NHWC layout (faster on tensor cores)")
    p.add_argument("--color", choices=["rgb", "y"], default=None,
                   help="work on RGB or on the luma only (default: y for srcnn/espcn as in their papers, rgb for resnet)")
    p.add_argument("--width", type=int_at_least(1), default=d["width"].default,
                   help="resnet: body channels; srcnn/espcn: first-layer filters (default 64)")
    p.add_argument("--blocks", type=int_at_least(1), default=d["blocks"].default, help="resnet: residual blocks")
    p.add_argument("--res-scale", type=positive_float, default=d["res_scale"].default,
                   help="resnet: residual branch scaling")
    p.add_argument("--global-skip", action=argparse.BooleanOptionalAction, default=None,
                   help="add the bicubic upscale to the output (default: on for resnet only)")
    p.add_argument("--patch", type=int_at_least(1), default=d["patch"].default, help="LR patch side in pixels")
    p.add_argument("--batch-size", type=int_at_least(1), default=d["batch_size"].default)
    p.add_argument("--lr", type=positive_float, default=d["lr"].default, help="peak learning rate")
    p.add_argument("--loss", choices=["l1", "mse"], default=d["loss"].default)
    p.add_argument("--adv-weight", type=non_negative_float, default=d["adv_weight"].default,
                   help="weight W of an adversarial term: loss = pixel loss + W * GAN loss against a patch "
                        "discriminator (default 0: off; e.g. 5e-3 to fine-tune an --init-from model)")
    p.add_argument("--d-lr", type=positive_float, default=d["d_lr"].default,
                   help="the discriminator's peak learning rate (with --adv-weight; default %(default)g)")
    p.add_argument("--warmup", type=float, default=d["warmup"].default, help="fraction of the schedule")
    p.add_argument("--downscales", type=scale_factors, default=FSRCNN_DOWNSCALES,
                   help="T91 also shrunk by these factors (default: FSRCNN's 1,0.9,0.8,0.7,0.6; '1' for none)")
    p.add_argument("--ema", type=float, default=d["ema"].default, help="EMA decay of the weights (0: off)")
    p.add_argument("--grad-clip", type=float, default=d["grad_clip"].default, help="max gradient norm (0: off)")
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from a trained sr-model of the same arch (e.g. x3 -> x2: all but the upsampler)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int_at_least(1), default=d["log_every"].default)
    p.add_argument("--eval-every", type=int_at_least(0), default=d["eval_every"].default,
                   help="steps between Set5 PSNR checks (0: only at the end)")
    p.add_argument("--ckpt-every", type=int_at_least(1), default=d["ckpt_every"].default)
    p.add_argument("--max-steps", type=int_at_least(1), default=None,
                   help="stop after this many steps (resume later to finish)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _log_lines(args):
    """Without a progress bar (logs of GPU jobs): every PSNR check, and every 20th loss reading."""
    if not args.no_progress:
        return None

    def log(row: dict) -> None:
        if "loss" not in row or row["step"] % (20 * args.log_every) == 0:
            print("  " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
                  file=sys.stderr, flush=True)
    return log


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from ..sr.train import SRConfig, train_sr

    if args.steps is None and args.minutes is None:
        raise ValueError("say how long to train: --steps N and/or --minutes M")
    config = SRConfig(arch=args.arch, scale=args.scale, color=args.color, width=args.width, blocks=args.blocks,
                      res_scale=args.res_scale, global_skip=args.global_skip, patch=args.patch,
                      batch_size=args.batch_size, lr=args.lr, loss=args.loss, adv_weight=args.adv_weight,
                      d_lr=args.d_lr, steps=args.steps,
                      minutes=args.minutes, warmup=args.warmup, downscales=args.downscales, ema=args.ema,
                      grad_clip=args.grad_clip, seed=args.seed, log_every=args.log_every,
                      eval_every=args.eval_every, ckpt_every=args.ckpt_every, bf16=args.bf16,
                      channels_last=args.channels_last,
                      init_from=str(args.init_from) if args.init_from else None)
    device = resolve_device(args.device)
    meta = run_metadata(argv, device, args.seed)
    print(f"training {args.arch} x{args.scale} ({config.color}) on T91 ({device_name(device)}) -> {args.out}",
          file=sys.stderr)
    result = train_sr(config, out_dir=args.out, resume=args.resume, device=device, progress=not args.no_progress,
                      max_steps=args.max_steps, extra_meta=meta, on_log=_log_lines(args))
    last_loss = next((r["loss"] for r in reversed(result.history) if "loss" in r), float("nan"))
    psnr = f"{config.eval_set} x{config.scale} Y-PSNR {result.final_psnr:.2f} dB" if result.final_psnr else \
        "schedule not finished (resume to continue)"
    print(f"done: {result.steps} steps in {result.seconds:.1f} s; L1/MSE {last_loss:.4f}; {psnr}; "
          f"model: {args.out / 'model.safetensors'}")
    return 0
