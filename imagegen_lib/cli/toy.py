"""``imagegen toy-sweep``: Q4's fixes on the 8-Gaussians ring — named recipes × seeds, trained at
once as stacked populations — written to one JSON that the book's table reads
(:mod:`imagegen_lib.toy.sweep`).

    imagegen toy-sweep --set paper --seeds 5 --steps 6000 --device cuda --out runs/toy_sweep.json
    imagegen toy-sweep --set all --minutes 3.5 --device cuda --out runs/toy_sweep.json   # as many steps as fit
    imagegen toy-sweep --variants baseline,wgan-gp --seeds 2 --steps 20 --device cpu --out /tmp/s.json

``--minutes M`` times a short probe of every population first (:func:`~imagegen_lib.toy.sweep.plan_steps`)
and picks the step budget that fits in M minutes, probe included; the JSON records the plan.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from ..core.runtime import device_name, resolve_device, run_metadata
from .arg_types import int_at_least, positive_float, positive_int
from .registry import command

__all__ = ["DEFAULT_STEPS", "add_arguments", "run"]

DEFAULT_STEPS = 6000  # the baseline's mode count and sample quality have levelled off by then (CPU check)


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected recipe names like baseline,wgan-gp, got {text!r}")
    return names


@command("toy-sweep", help="Q4's toy-GAN recipes x seeds on the 8-Gaussians ring, into one JSON",
         description="train named toy-GAN recipes (imagegen_lib.toy.recipes) over several seeds on the "
                     "ring of 8 Gaussians and write their mode coverage, curves and samples to one JSON")
def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..toy.recipes import RECIPE_SETS  # here: `imagegen --help` must not wait for torch

    p.add_argument("--set", dest="recipe_set", choices=sorted(RECIPE_SETS), default="paper",
                   help="which recipes: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in RECIPE_SETS.items()))
    p.add_argument("--variants", type=_names, default=None, help="only these recipes of the set, e.g. baseline,wgan-gp")
    p.add_argument("--seeds", type=positive_int, default=5, help="seeds 0..N-1 per recipe")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=positive_int, default=None, help="generator updates per GAN (default 6000)")
    budget.add_argument("--minutes", type=positive_float, default=None,
                        help="instead of --steps: as many steps as fit in this wall time (timed by a probe)")
    p.add_argument("--log-every", type=positive_int, default=None, help="curve resolution (default: steps/100)")
    p.add_argument("--eval-samples", type=positive_int, default=2500, help="samples scored per GAN")
    p.add_argument("--keep-samples", type=int_at_least(0), default=1000, help="samples per GAN kept in the JSON")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--out", type=Path, required=True, help="the JSON to write")
    p.set_defaults(func=run)


def _check_writable(path: Path) -> None:
    """Fail before minutes of training, not after them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK):
        raise OSError(f"cannot write {path}: its folder is not writable")


def run(args: argparse.Namespace, argv: list[str]) -> int:
    from ..toy.recipes import recipe_names
    from ..toy.sweep import format_sweep_table, plan_steps, run_sweep, sweep_table, write_sweep

    names = recipe_names(args.recipe_set, args.variants)
    device = resolve_device(args.device)
    _check_writable(args.out)
    seeds, start, plan = list(range(args.seeds)), time.perf_counter(), None
    steps = args.steps or DEFAULT_STEPS
    if args.minutes is not None:
        plan = plan_steps(60 * args.minutes, names, seeds, device=device, eval_samples=args.eval_samples)
        steps = plan["steps"]
        print(f"toy-sweep: {1000 * plan['seconds_per_step']:.1f} ms per step (probe: {plan['probe_seconds']:.0f} s) "
              f"-> {steps} steps in {args.minutes:g} minutes", file=sys.stderr)
    print(f"toy-sweep: {len(names)} recipes x {args.seeds} seeds, {steps} steps on {device_name(device)}",
          file=sys.stderr)
    report = run_sweep(names, seeds, steps, device=device, log_every=args.log_every,
                       eval_samples=args.eval_samples, keep_samples=args.keep_samples,
                       say=lambda line: print(line, file=sys.stderr))
    meta = {k: v for k, v in run_metadata(argv, device, seed=0).items() if k != "seed"}  # seeds: report["seeds"]
    report["run"] = {**meta, "wall_seconds": round(time.perf_counter() - start, 2), "plan": plan}
    write_sweep(args.out, report)
    print(format_sweep_table(sweep_table(report)))
    print(f"wrote {args.out} ({report['run']['wall_seconds']:.1f} s)", file=sys.stderr)
    return 0
