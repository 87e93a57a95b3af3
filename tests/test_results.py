"""The GPU studies' results the book reads (book/results/): each file is complete and traceable.

Their numbers come from runs on a GPU (scripts/gpu_study_q4.sh, scripts/gpu_study_sr.sh); what a test
here can check is that each record says how it was made and that the tables built from them hold
every recipe and seed the study ran.
"""

from __future__ import annotations

import json
from pathlib import Path

from imagegen_lib.toy.sweep import sweep_table

RESULTS = Path(__file__).resolve().parents[1] / "book" / "results"


def _load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _traceable(record: dict) -> None:
    assert record["command"].startswith("imagegen "), record["command"]
    assert len(record["git_commit"]) == 40 and record["device"] and record["torch"]


def test_toy_sweep_covers_every_recipe_and_seed():
    rows = sweep_table([RESULTS / "q4_toy_sweep_rest.json", RESULTS / "q4_toy_sweep_wgan-gp.json"])
    names = [r["variant"] for r in rows]
    assert {"baseline", "wgan-gp", "sn-hinge-ttur", "r1-0.1", "r1-1"} <= set(names)
    for row in rows:
        assert len(row["modes"]) == 8, row["variant"]  # 8 seeds each
        assert all(0 <= m <= 8 for m in row["modes"])
    for name in ("q4_toy_sweep_rest.json", "q4_toy_sweep_wgan-gp.json"):
        run = _load(name)["run"]
        assert run["command"].startswith("imagegen toy-sweep") and len(run["git_commit"]) == 40


def test_dcgan_study_pairs_raw_and_ema_for_every_seed_and_gamma():
    runs = _load("q4_dcgan_ema_r1.json")["runs"]
    assert sorted((r["r1_gamma"], r["seed"]) for r in runs) == [(g, s) for g in (0.0, 0.1, 1.0) for s in (0, 1, 2)]
    for r in runs:
        _traceable(r)
        assert r["raw"]["n"] == r["ema"]["n"] == 10_000 and r["raw"]["seed"] == r["ema"]["seed"]
        assert ("--r1" in r["command"]) == (r["r1_gamma"] > 0) and "--ema 0.999" in r["command"]


def test_sr_study_scores_every_run_on_both_sets():
    runs = _load("exb_sr_study.json")["runs"]
    losses = sorted((r["loss"], r["seed"]) for r in runs if r["init_from"] is None)
    assert losses == [("l1", 0), ("l1", 1), ("l1", 2), ("mse", 0), ("mse", 1), ("mse", 2)]
    assert sorted(r["adv_weight"] for r in runs if r["init_from"]) == [0.0, 0.005, 0.05]
    for r in runs:
        _traceable(r)
        assert r["Set5"]["n"] == 5 and r["Set14"]["n"] == 14
        assert len(r["Set5"]["images"]) == 5


def test_q6_study_has_every_curve_and_the_half_precision_check():
    evals = _load("q6_evals.json")["evals"]
    for record in evals:
        assert record["command"].startswith("imagegen eval ") and len(record["git_commit"]) == 40
        assert record["n"] == 10_000 and record["seed"] == 0 and record["fid"] > 0
    have = {(r["model"], r["tag"]) for r in evals}
    needed = ({("q6_eps_mnist", t) for t in ("ancestral1000", "ddim5", "ddim10", "ddim20", "ddim50", "ddim100",
                                             "dpmpp2m10", "dpmpp2m20", "heun5", "heun10")}
              | {("q6_flow_mnist", t) for t in ("euler5", "euler10", "euler20", "euler50", "euler100", "heun5",
                                                "heun10", "dpmpp2m10", "dpmpp2m20")}
              | {("q6_cfg_mnist", f"dpmpp2m20_w{w}") for w in ("0", "1", "1.5", "2", "3", "4", "6")}
              | {(f"q6_{m}_mnist", f"ddim{s}") for m in ("x0", "v", "eps_cosine") for s in (10, 50)})
    assert needed <= have, sorted(needed - have)
    by = {(r["model"], r["tag"]): r for r in evals}
    # float16 storage leaves the FID where float32 has it (same sampler, seed and n)
    assert abs(by[("q6_eps_mnist", "ddim50")]["fid"] - by[("q6_eps_mnist_fp32", "ddim50")]["fid"]) < 0.05
    cfg = [by[("q6_cfg_mnist", f"dpmpp2m20_w{w}")] for w in ("0", "1", "2", "6")]
    accuracy = [r["label_accuracy"] for r in cfg]
    assert accuracy == sorted(accuracy) and accuracy[0] < 0.2 < 0.9 < accuracy[-1]  # guidance obeys the label
    assert cfg[-1]["recall"] < cfg[1]["recall"]  # and costs diversity
