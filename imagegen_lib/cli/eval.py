"""``imagegen eval``: FID, KID, IS, precision/recall, class coverage and memorisation of a generator
checkpoint (any kind :mod:`imagegen_lib.generators` can sample), or of real data (``real``: the floor).

    imagegen eval checkpoints/dcgan_mnist.safetensors [--n 10000] [--json out.json] [--manifest]
    imagegen eval real --dataset mnist        # the real-data floor of every metric
    imagegen eval checkpoints/ddpm_mnist.safetensors --sampler ddim --steps 50 --manifest

``--manifest`` writes the metrics into ``checkpoints/MANIFEST.json``. For a diffusion model each
sampler is recorded under ``metrics.samplers.<key>`` (``ancestral1000``, ``ddim50``; ``_n500``
appended when ``--n`` is not 10000), and the default sampler (ancestral) also as the entry's
top-level metrics.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..core.data_files import DATASETS
from ..core.runtime import device_name, resolve_device
from .arg_types import positive_int
from .common import add_sampler_args, sampler_options, write_report
from .registry import command

__all__ = ["FULL_N", "METRIC_KEYS", "add_arguments", "run", "manifest_metrics"]

FULL_N = 10_000  # the protocol's n: keys of evaluations at another n say so ("_n500")

METRIC_KEYS = ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall", "coverage",
               "class_kl", "class_histogram", "memorisation_ratio", "memorisation_copies")


@command("eval", help="FID, KID, IS, precision/recall, class coverage of a generator (or 'real')",
         description="score a generator checkpoint against the test split; "
                     "'imagegen eval real' scores training images instead (the floor)")
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="NAME.safetensors of a generator, or the word 'real'")
    p.add_argument("--n", type=positive_int, default=FULL_N, help="samples to score (FID needs n > 128)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist",
                   help="for 'real' only (a generator's data set is read from its checkpoint)")
    p.add_argument("--classifier", type=Path, default=None,
                   help="feature extractor stem (default: checkpoints/classifier_<dataset>)")
    p.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    p.add_argument("--device", default="auto")
    add_sampler_args(p)
    p.add_argument("--manifest", action="store_true",
                   help="record the metrics in checkpoints/MANIFEST.json (shipped checkpoints and 'real')")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from ..metrics.evaluate import evaluate_generator, evaluate_real, format_report

    device = resolve_device(args.device)
    print(f"evaluating {args.checkpoint} on {device_name(device)} (about 30 s on 2 CPU cores)", file=sys.stderr)
    if str(args.checkpoint) == "real":
        result = evaluate_real(args.dataset, n=args.n, seed=args.seed, classifier_stem=args.classifier,
                               device=device)
    else:
        result = evaluate_generator(args.checkpoint, n=args.n, seed=args.seed, classifier_stem=args.classifier,
                                    device=device, **sampler_options(args))
    print(format_report(result))
    if args.manifest:
        _record_in_manifest(args.checkpoint, result, argv)
    if args.json is not None:
        write_report(args.json, result, argv, device, args.seed)
    return 0


def _record_in_manifest(checkpoint: Path, result: dict, argv: list[str]) -> None:
    """Write an eval's metrics into checkpoints/MANIFEST.json: the generator's entry, or the data floor."""
    from ..core.manifest import CHECKPOINT_DIR, record_floor, shipped_stem, update_metrics

    metrics = {k: result[k] for k in METRIC_KEYS}
    metrics.update({k: result[k] for k in ("label_accuracy", "network_calls") if k in result})  # when they apply
    metrics.update(eval_n=result["n"], eval_seed=result["seed"], eval_command="imagegen " + shlex.join(argv))
    if str(checkpoint) == "real":
        record_floor(result["dataset"], metrics)
        print(f"recorded the {result['dataset']} floor in {CHECKPOINT_DIR / 'MANIFEST.json'}", file=sys.stderr)
        return
    stem = shipped_stem(checkpoint, CHECKPOINT_DIR)
    update_metrics(stem.name, manifest_metrics(result, metrics))
    print(f"recorded the metrics of {stem.name} in {CHECKPOINT_DIR / 'MANIFEST.json'}", file=sys.stderr)


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
