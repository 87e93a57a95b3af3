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
