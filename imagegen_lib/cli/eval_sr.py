"""``imagegen eval-sr``: Y-PSNR / SSIM of a super-resolution checkpoint, or of bicubic upscaling,
on Set5/Set14/BSD100, by the SRCNN/EDSR protocol unless flags change one step of it.

    imagegen eval-sr runs/sr_resnet_x3/model.safetensors --set Set5 Set14 [--self-ensemble] [--json out.json]
    imagegen eval-sr bicubic --set Set5 --scale 3            # the published baseline: 30.39 dB
    imagegen eval-sr bicubic --set Set5 --scale 3 --channel rgb --no-shave --lr-resize pil   # other protocols

Beside PSNR and SSIM (distortion) it prints the gradient energy ratio (image statistics: 1 = as
much fine detail as the ground truth; :func:`imagegen_lib.sr.metrics.gradient_energy_ratio`).

``--manifest`` records the standard protocol's numbers in ``checkpoints/MANIFEST.json``: a shipped
model's entry, or the ``sr-bicubic-x<scale>`` floor.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..core.runtime import device_name, resolve_device
from .common import write_report
from .registry import command

__all__ = ["EVAL_SETS", "add_arguments", "run"]

EVAL_SETS = ("Set5", "Set14", "BSD100")


@command("eval-sr", help="Y-PSNR / SSIM of a super-resolution checkpoint (or 'bicubic') on Set5/Set14/BSD100",
         description="Score super-resolution with the SRCNN/EDSR protocol: HR cropped to a multiple "
                     "of the scale, LR by MATLAB's bicubic imresize, PSNR and SSIM on the Y channel "
                     "(BT.601, [16, 235]) with `scale` pixels shaved per side. The flags change one "
                     "step at a time, to show how much each matters.")
def add_arguments(p: argparse.ArgumentParser) -> None:
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
    p.set_defaults(func=run)


def _checkpoint_stem(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        return path / "model"
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path


def run(args: argparse.Namespace, argv: list[str]) -> int:
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
        write_report(args.json, report, argv, device, seed=0)
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
