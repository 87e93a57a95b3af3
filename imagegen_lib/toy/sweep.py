"""Q4's fixes over many seeds: train named recipes × seeds at once, save one JSON, read it back as a table.

    imagegen toy-sweep --set paper --seeds 5 --steps 6000 --device cuda --out runs/toy_sweep.json

:func:`run_sweep` trains every (recipe, seed) of :mod:`.recipes` on the ring, as populations
(:func:`~.population.train_population`): one per group of members that can step together —
WGAN-GP's 5 critic steps per generator step train in a population of their own. Every member's
mode coverage is logged every ``log_every`` steps, so a curve shows whether the step budget was
long enough. :func:`write_sweep` saves the result atomically; :func:`sweep_table` turns it into
the book's rows (mean ± sample std over seeds, and every seed).

The JSON (``format`` :data:`FORMAT`)::

    {"format", "data": {ring}, "metric": {eval_samples, eval_seed, k, min_count}, "steps", "log_every",
     "seeds": [...], "variants": [{"name", "label", "source", "config": {ToyGANConfig fields but seed}}],
     "populations": [{"members": [[variant, seed], ...], "d_steps", "seconds"}],
     "runs": [{"variant", "seed", "modes", "high_quality", "counts",
               "curve": {"step": [...], "modes": [...], "high_quality": [...], "loss_d": [...], "loss_g": [...]},
               "samples": [[x, y], ...]}],
     "run": {"command", "git_commit", "device", "torch", "wall_seconds",
             "plan": null or plan_steps()'s result}}   # "run" is added by the CLI
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

from ..core.checkpoint import atomic_write_bytes
from .gan import mode_coverage, ring_centres, ring_of_gaussians
from .population import coverage_score, population_groups, sample_population, train_population
from .recipes import RECIPES, RING, recipe_config

__all__ = ["FORMAT", "EVAL_SEED", "CURVE_ROWS", "run_sweep", "plan_steps", "write_sweep", "load_sweep",
           "sweep_table", "format_sweep_table", "settled_step"]

FORMAT = "imagegen-toy-sweep/1"
EVAL_SEED = 12345  # sample_population's default: the same evaluation noise for every member
CURVE_KEYS = ("modes", "high_quality", "loss_d", "loss_g")
CURVE_ROWS = 100  # points per curve unless log_every is given


def _ring_sampler(n, generator):
    return ring_of_gaussians(n, RING["modes"], RING["radius"], RING["std"], generator=generator)


def run_sweep(names: tuple[str, ...], seeds: list[int], steps: int, device="cpu", log_every: int | None = None,
              eval_samples: int = 2500, keep_samples: int = 1000,
              say: Callable[[str], None] = lambda line: None) -> dict:
    """Train every recipe in ``names`` with every seed for ``steps`` generator updates; score them.

    Returns the JSON's content (all but ``run``). ``log_every`` defaults to steps/:data:`CURVE_ROWS`
    (at least 1); ``keep_samples`` of each run's ``eval_samples`` final samples are kept, rounded to
    3 decimals.
    """
    log_every = log_every or max(1, steps // CURVE_ROWS)
    centres = ring_centres(RING["modes"], RING["radius"])
    members, configs = _members(names, seeds, steps, log_every)
    runs, populations = [None] * len(members), []
    for group in population_groups(configs):
        start = time.perf_counter()
        pop = train_population([configs[i] for i in group], sampler=_ring_sampler, device=device,
                               score=coverage_score(centres, RING["std"], eval_samples))
        samples = sample_population(pop.G, eval_samples, seed=EVAL_SEED).cpu()  # .cpu() waits for the GPU
        seconds = time.perf_counter() - start
        for j, i in enumerate(group):
            runs[i] = _run_record(members[i], pop.history, j, samples[j], centres, keep_samples)
        d_steps = configs[group[0]].d_steps
        populations.append({"members": [list(members[i]) for i in group], "d_steps": d_steps,
                            "seconds": round(seconds, 2)})
        say(f"trained {len(group)} GANs ({d_steps} D step(s) per G step) for {steps} steps in {seconds:.1f} s")
    return {"format": FORMAT, "data": {"dataset": "ring_of_gaussians", **RING},
            "metric": {"eval_samples": eval_samples, "eval_seed": EVAL_SEED, "k": 3.0,
                       "min_count": max(1, round(0.008 * eval_samples))},
            "steps": steps, "log_every": log_every, "seeds": list(seeds),
            "variants": [_variant_record(name, configs[members.index((name, seeds[0]))]) for name in names],
            "populations": populations, "runs": runs}


def _members(names, seeds, steps, log_every):
    members = [(name, seed) for name in names for seed in seeds]
    return members, [recipe_config(name, seed, steps, log_every) for name, seed in members]


def plan_steps(seconds: float, names: tuple[str, ...], seeds: list[int], device="cpu", probe_steps: int = 100,
               eval_samples: int = 2500, margin: float = 0.8) -> dict:
    """How many generator steps of this sweep fit in ``seconds`` on ``device``?

    Trains every population of the sweep for a few steps (a warm-up: CUDA's start, first launches),
    then ``probe_steps`` timed, and times one coverage evaluation; the probe's own time counts
    against ``seconds``. Of what is left, ``margin`` goes to training at the measured rate, less
    the :data:`CURVE_ROWS` evaluations. Returns ``{"steps" (a multiple of 100, at least 100),
    "seconds_per_step", "seconds_per_evaluation", "probe_seconds"}``.
    """
    start = time.perf_counter()
    centres = ring_centres(RING["modes"], RING["radius"])
    per_step = per_eval = 0.0
    probe_configs = _members(names, seeds, probe_steps, probe_steps)[1]
    for group in population_groups(probe_configs):
        configs = [probe_configs[i] for i in group]
        train_population([replace(c, steps=5, log_every=5) for c in configs], sampler=_ring_sampler, device=device)
        timed = time.perf_counter()
        pop = train_population(configs, sampler=_ring_sampler, device=device)
        per_step += (time.perf_counter() - timed) / probe_steps
        timed = time.perf_counter()
        coverage_score(centres, RING["std"], eval_samples)(pop.G)
        per_eval += time.perf_counter() - timed
    probe = time.perf_counter() - start
    left = margin * (seconds - probe) - CURVE_ROWS * per_eval
    steps = max(100, int(left / per_step) // 100 * 100)
    return {"steps": steps, "seconds_per_step": round(per_step, 6), "seconds_per_evaluation": round(per_eval, 4),
            "probe_seconds": round(probe, 2)}


def _variant_record(name, config) -> dict:
    recipe = RECIPES[name]
    fields = {k: v for k, v in asdict(config).items() if k != "seed"}
    return {"name": name, "label": recipe.label, "source": recipe.source, "config": fields}


def _run_record(member, history, j, samples, centres, keep) -> dict:
    """One (variant, seed): final coverage, the logged curve, and a few rounded samples for plots."""
    name, seed = member
    final = mode_coverage(samples, centres, RING["std"])
    curve = {"step": [row["step"] for row in history],
             **{k: [_rounded(row[k][j]) for row in history] for k in CURVE_KEYS}}
    points = [[round(x, 3), round(y, 3)] for x, y in samples[:keep].tolist()]
    return {"variant": name, "seed": seed, "modes": final["modes"], "high_quality": round(final["high_quality"], 4),
            "counts": final["counts"], "curve": curve, "samples": points}


def _rounded(value):
    return value if isinstance(value, int) else round(value, 4)


def write_sweep(path: str | Path, report: dict) -> None:
    """Save a sweep as one JSON file, atomically (a reader never sees half of it)."""
    text = json.dumps(report, separators=(",", ":"), ensure_ascii=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def load_sweep(path: str | Path) -> dict:
    """Read a file :func:`write_sweep` wrote; refuse anything else with a clear error."""
    sweep = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(sweep, dict) or sweep.get("format") != FORMAT:
        raise ValueError(f"{path} is not an `imagegen toy-sweep` result (expected format {FORMAT!r})")
    return sweep


def settled_step(steps: list[int], values: list, tol: float = 0) -> int | None:
    """From which logged step on does ``values`` stay within ``tol`` of its last value? (``None``
    for an empty curve.) For a mode count (``tol=0``): when it stopped changing — a step budget
    should end well past it. A count that flickers between 7 and 8 settles late: look at the curve."""
    if not values:
        return None
    i = len(values) - 1
    while i > 0 and abs(values[i - 1] - values[-1]) <= tol:
        i -= 1
    return steps[i]


def _sample_std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else math.nan


def sweep_table(sweep) -> list[dict]:
    """How did each recipe do? One row per variant, in the sweep's order: ``variant``, ``label``,
    ``steps``, ``seeds``, per-seed ``modes`` / ``high_quality`` / ``settled_at`` (:func:`settled_step`
    of the mode count), and ``modes_mean``, ``modes_std``, ``hq_mean``, ``hq_std`` (sample std,
    n - 1; NaN for one seed). ``sweep``: the dict or the path of its JSON, or a list of them (say,
    one sweep per population, each run in its own call) in which no variant appears twice."""
    sweeps = [s if isinstance(s, dict) else load_sweep(s) for s in (sweep if isinstance(sweep, list) else [sweep])]
    rows: list[dict] = []
    for one in sweeps:
        for variant in one["variants"]:
            if any(row["variant"] == variant["name"] for row in rows):
                raise ValueError(f"variant {variant['name']!r} is in more than one of the sweeps; keep one")
            rows.append(_table_row(one, variant))
    return rows


def _table_row(sweep: dict, variant: dict) -> dict:
    runs = sorted((r for r in sweep["runs"] if r["variant"] == variant["name"]), key=lambda r: r["seed"])
    modes, hq = [r["modes"] for r in runs], [r["high_quality"] for r in runs]
    return {"variant": variant["name"], "label": variant["label"], "steps": sweep["steps"],
            "seeds": [r["seed"] for r in runs], "modes": modes, "high_quality": hq,
            "settled_at": [settled_step(r["curve"]["step"], r["curve"]["modes"]) for r in runs],
            "modes_mean": statistics.fmean(modes), "modes_std": _sample_std(modes),
            "hq_mean": statistics.fmean(hq), "hq_std": _sample_std(hq)}


def format_sweep_table(rows: list[dict], n_modes: int = RING["modes"]) -> str:
    """The rows of :func:`sweep_table` as the fixed-width text table the book prints."""
    width = max([len("variant")] + [len(r["label"]) for r in rows])
    lines = [f"{'variant':{width}s} {'steps':>6s} {f'modes (of {n_modes})':>14s} {'high quality':>15s}   "
             f"per seed (modes / HQ)   mode count settled at step"]
    for r in rows:
        per_seed = "  ".join(f"{m}/{q:.0%}" for m, q in zip(r["modes"], r["high_quality"]))
        lines.append(f"{r['label']:{width}s} {r['steps']:6d} {r['modes_mean']:6.1f} ± {r['modes_std']:3.1f}   "
                     f"{r['hq_mean']:6.0%} ± {r['hq_std']:4.0%}   {per_seed}   "
                     f"{', '.join(str(s) for s in r['settled_at'])}")
    lines.append(f"(mean ± sample std over {len(rows[0]['seeds']) if rows else 0} seeds)")
    return "\n".join(lines)
