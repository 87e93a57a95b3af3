"""The super-resolution commands of ``imagegen`` (wired into :mod:`imagegen_lib.cli`).

    imagegen train sr --arch resnet --scale 3 --out runs/sr_resnet_x3 --minutes 6 [--device cuda --bf16]
    imagegen train sr --arch espcn --scale 3 --out runs/espcn --steps 20000 [--resume]
    imagegen eval-sr runs/sr_resnet_x3/model.safetensors --set Set5 Set14 [--self-ensemble] [--json out.json]
    imagegen eval-sr bicubic --set Set5 --scale 3            # the published baseline: 30.39 dB
    imagegen eval-sr bicubic --set Set5 --scale 3 --channel rgb --no-shave --lr-resize pil   # other protocols
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from ..core.runtime import device_name, resolve_device, run_metadata
from .arg_types import int_at_least as _int_at_least
from .arg_types import positive_float as _positive_float

__all__ = ["add_train_sr_parser", "add_eval_sr_parser"]

EVAL_SETS = ("Set5", "Set14", "BSD100")


def _factors(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated factors like 1,0.9,0.8, got {text!r}") from None
    if not all(0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"factors must lie in (0, 1], got {text!r}")
    return values


# ---------------------------------------------------------------------------------------------
# imagegen train sr
# ---------------------------------------------------------------------------------------------

def add_train_sr_parser(models) -> None:
    from ..sr.data import FSRCNN_DOWNSCALES
    from ..sr.train import SRConfig

    d = SRConfig.__dataclass_fields__
    p = models.add_parser("sr", help="a super-resolution CNN on T91 patches (SRCNN, ESPCN, residual net)",
                          description="Train a super-resolution CNN on random T91 patches (flips/rotations, L1 "
                                      "or MSE, Adam, warm-up + cosine LR, EMA of the weights). Say how long "
                                      "with --steps and/or --minutes (whichever ends first ends the schedule).")
    p.add_argument("--arch", required=True, choices=["srcnn", "espcn", "resnet"])
    p.add_argument("--scale", type=int, choices=[2, 3, 4], default=3)
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, history, model)")
    p.add_argument("--steps", type=_int_at_least(1), default=None, help="optimizer steps")
    p.add_argument("--minutes", type=_positive_float, default=None,
                   help="wall-time budget (setup included); the cosine schedule ends when it ends")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA only)")
    p.add_argument("--channels-last", action="store_true", help="NHWC layout (faster on tensor cores)")
    p.add_argument("--color", choices=["rgb", "y"], default=None,
                   help="work on RGB or on the luma only (default: y for srcnn/espcn as in their papers, rgb for resnet)")
    p.add_argument("--width", type=_int_at_least(1), default=d["width"].default,
                   help="resnet: body channels; srcnn/espcn: first-layer filters (default 64)")
    p.add_argument("--blocks", type=_int_at_least(1), default=d["blocks"].default, help="resnet: residual blocks")
    p.add_argument("--res-scale", type=_positive_float, default=d["res_scale"].default,
                   help="resnet: residual branch scaling")
    p.add_argument("--global-skip", action=argparse.BooleanOptionalAction, default=None,
                   help="add the bicubic upscale to the output (default: on for resnet only)")
    p.add_argument("--patch", type=_int_at_least(1), default=d["patch"].default, help="LR patch side in pixels")
    p.add_argument("--batch-size", type=_int_at_least(1), default=d["batch_size"].default)
    p.add_argument("--lr", type=_positive_float, default=d["lr"].default, help="peak learning rate")
    p.add_argument("--loss", choices=["l1", "mse"], default=d["loss"].default)
    p.add_argument("--warmup", type=float, default=d["warmup"].default, help="fraction of the schedule")
    p.add_argument("--downscales", type=_factors, default=FSRCNN_DOWNSCALES,
                   help="T91 also shrunk by these factors (default: FSRCNN's 1,0.9,0.8,0.7,0.6; '1' for none)")
    p.add_argument("--ema", type=float, default=d["ema"].default, help="EMA decay of the weights (0: off)")
    p.add_argument("--grad-clip", type=float, default=d["grad_clip"].default, help="max gradient norm (0: off)")
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from a trained sr-model of the same arch (e.g. x3 -> x2: all but the upsampler)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=_int_at_least(1), default=d["log_every"].default)
    p.add_argument("--eval-every", type=_int_at_least(0), default=d["eval_every"].default,
                   help="steps between Set5 PSNR checks (0: only at the end)")
    p.add_argument("--ckpt-every", type=_int_at_least(1), default=d["ckpt_every"].default)
    p.add_argument("--max-steps", type=_int_at_least(1), default=None,
                   help="stop after this many steps (resume later to finish)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train_sr)


def _log_lines(args):
    """Without a progress bar (logs of GPU jobs): every PSNR check, and every 20th loss reading."""
    if not args.no_progress:
        return None

    def log(row: dict) -> None:
        if "loss" not in row or row["step"] % (20 * args.log_every) == 0:
            print("  " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()),
                  file=sys.stderr, flush=True)
    return log


def _cmd_train_sr(args, argv) -> int:
    from ..sr.train import SRConfig, train_sr

    if args.steps is None and args.minutes is None:
        raise ValueError("say how long to train: --steps N and/or --minutes M")
    config = SRConfig(arch=args.arch, scale=args.scale, color=args.color, width=args.width, blocks=args.blocks,
                      res_scale=args.res_scale, global_skip=args.global_skip, patch=args.patch,
                      batch_size=args.batch_size, lr=args.lr, loss=args.loss, steps=args.steps,
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


# ---------------------------------------------------------------------------------------------
# imagegen eval-sr
# ---------------------------------------------------------------------------------------------

def add_eval_sr_parser(sub) -> None:
    p = sub.add_parser("eval-sr", help="Y-PSNR / SSIM of a super-resolution checkpoint (or 'bicubic') on Set5/Set14/BSD100",
                       description="Score super-resolution with the SRCNN/EDSR protocol: HR cropped to a multiple "
                                   "of the scale, LR by MATLAB's bicubic imresize, PSNR and SSIM on the Y channel "
                                   "(BT.601, [16, 235]) with `scale` pixels shaved per side. The flags change one "
                                   "step at a time, to show how much each matters.")
    p.add_argument("checkpoint", help="an sr-model checkpoint (NAME.safetensors, or a run folder), or 'bicubic'")
    p.add_argument("--set", nargs="+", choices=EVAL_SETS, default=["Set5"], dest="sets", metavar="SET",
                   help=f"one or more of {', '.join(EVAL_SETS)} (default Set5)")
    p.add_argument("--scale", type=int, choices=[2, 3, 4], default=None,
                   help="needed for bicubic; a checkpoint knows its own")
    p.add_argument("--channel", choices=["y", "rgb"], default="y")
    p.add_argument("--no-shave", action="store_true", help="score the border pixels too")
    p.add_argument("--lr-resize", choices=["matlab", "pil", "torch"], default="matlab",
                   help="how LR images are made (matlab: the protocol)")
    p.add_argument("--self-ensemble", action="store_true",
                   help="also score the x8 flip/rotation ensemble (EDSR's '+'), reported on its own lines")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    p.add_argument("--manifest", action="store_true",
                   help="record the metrics in checkpoints/MANIFEST.json (shipped checkpoints, or bicubic)")
    p.add_argument("--verbose", action="store_true", help="one line per image too")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_cmd_eval_sr)


def _checkpoint_stem(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        return path / "model"
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path


def _cmd_eval_sr(args, argv) -> int:
    from ..sr.metrics import evaluate_sr, format_sr_report
    from ..sr.train import load_sr_model, sr_upscaler

    device = resolve_device(args.device)
    protocol = {"channel": args.channel, "shave_border": not args.no_shave, "lr_resize": args.lr_resize}
    if args.checkpoint == "bicubic":
        if args.scale is None:
            raise ValueError("eval-sr bicubic needs --scale (2, 3 or 4)")
        if args.self_ensemble:
            raise ValueError("--self-ensemble applies to trained models, not to bicubic (it would not change it)")
        scale, label, upscalers = args.scale, "bicubic", {"single": "bicubic"}
    else:
        stem = _checkpoint_stem(args.checkpoint)
        model, meta = load_sr_model(stem, device=device)
        if args.scale is not None and args.scale != model.scale:
            raise ValueError(f"{args.checkpoint} is a x{model.scale} model; --scale {args.scale} does not match it")
        scale, label = model.scale, f"{meta['arch']} x{model.scale}"
        upscalers = {"single": sr_upscaler(model, device)}
        if args.self_ensemble:
            upscalers["self_ensemble"] = sr_upscaler(model, device, ensemble=True)
    print(f"evaluating {label} on {', '.join(args.sets)} ({device_name(device)})", file=sys.stderr)
    report = {"model": args.checkpoint, "scale": scale, "protocol": protocol, "results": {}}
    for kind, upscale in upscalers.items():
        results = [evaluate_sr(upscale, s, scale, **protocol) for s in args.sets]
        report["results"][kind] = results
        prefix = f"{label}{' + self-ensemble x8' if kind == 'self_ensemble' else ''}: "
        print(format_sr_report(results, label=prefix, verbose=args.verbose))
    if args.manifest:
        _record_sr_in_manifest(args, report, argv)
    if args.json is not None:
        report["run"] = run_metadata(argv, device, 0)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _record_sr_in_manifest(args, report: dict, argv) -> None:
    """Store the standard-protocol numbers under keys like ``set5_x3_psnr_y`` (``…_plus``: self-ensemble)."""
    from ..core import manifest
    from ..core.manifest import read_manifest, record_floor, shipped_stem, update_metrics

    directory = manifest.CHECKPOINT_DIR  # looked up at call time: tests point it at a temporary folder
    if report["protocol"] != {"channel": "y", "shave_border": True, "lr_resize": "matlab"}:
        raise ValueError("--manifest records the standard protocol only (Y channel, shave, MATLAB LR); "
                         "drop --channel/--no-shave/--lr-resize")
    metrics = {}
    for kind, results in report["results"].items():
        suffix = "_plus" if kind == "self_ensemble" else ""
        for r in results:
            key = f"{r['set'].lower()}_x{r['scale']}"
            metrics[f"{key}_psnr_y{suffix}"] = round(r["psnr"], 4)
            metrics[f"{key}_ssim_y{suffix}"] = round(r["ssim"], 5)
    metrics["eval_sr_command"] = "imagegen " + shlex.join(argv)
    if args.checkpoint == "bicubic":
        key = f"sr-bicubic-x{report['scale']}"
        old = read_manifest(directory).get("floors", {}).get(key, {})
        record_floor(key, {**old, **metrics}, directory=directory)  # merged: keeps the other sets' numbers
        print(f"recorded the bicubic baseline in {directory / 'MANIFEST.json'}", file=sys.stderr)
        return
    stem = shipped_stem(_checkpoint_stem(args.checkpoint), directory)
    try:
        update_metrics(stem.name, metrics, directory=directory)
    except KeyError as e:  # the file is in checkpoints/ but was never shipped
        raise ValueError(str(e).strip('"')) from None
    print(f"recorded the metrics of {stem.name} in {directory / 'MANIFEST.json'}", file=sys.stderr)
