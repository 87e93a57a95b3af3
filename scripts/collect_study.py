#!/usr/bin/env python3
"""Collect a GPU study's run folders into one JSON under book/results/ (what the book's tables read).

    python scripts/collect_study.py q4 OUT_DIR     # from scripts/gpu_study_q4.sh
    python scripts/collect_study.py sr OUT_DIR...  # from scripts/gpu_study_sr.sh (several folders: more seeds)
    python scripts/collect_study.py q6 EVALS_DIR   # the curves phase of scripts/gpu_train_q6.sh

Each record keeps the exact command, commit, device and torch version the run wrote, so every number
in a table can be traced to the command that made it.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "book" / "results"
GAN_METRICS = ("fid", "kid_mean", "kid_std", "is_mean", "precision", "recall", "n", "seed")
RUN_KEYS = ("command", "git_commit", "device", "torch", "train_seconds", "step", "seed")


def _write(name: str, data: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS / f".{name}.tmp"
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    tmp.replace(RESULTS / name)
    print(f"wrote {RESULTS / name}")


def collect_q4(out: Path) -> None:
    runs = []
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and p.name.startswith("dcgan_")):
        meta = json.loads((folder / "generator.json").read_text())
        record = {k: meta[k] for k in RUN_KEYS}
        record.update(r1_gamma=meta["config"]["r1"], r1_every=meta["config"]["r1_every"],
                      ema_decay=meta["config"]["ema"], epochs=meta["config"]["epochs"])
        for weights in ("generator", "generator_ema"):
            scores = json.loads((folder / f"{weights}.eval.json").read_text())
            record["ema" if weights.endswith("ema") else "raw"] = {k: scores[k] for k in GAN_METRICS}
        runs.append(record)
    _write("q4_dcgan_ema_r1.json", {
        "what": "MNIST DCGAN, eager float32, with and without R1 (lazy, every 16 steps); FID etc. of the raw "
                "generator and of the EMA of its weights, same seeds (imagegen eval, n = 10,000, test split)",
        "made_by": "scripts/gpu_study_q4.sh, collected by scripts/collect_study.py q4", "runs": runs})
    for part in ("rest", "wgan-gp"):
        shutil.copyfile(out / f"toy_sweep_{part}.json", RESULTS / f"q4_toy_sweep_{part}.json")
        print(f"copied {RESULTS / f'q4_toy_sweep_{part}.json'}")


def collect_sr(outs: list[Path]) -> None:
    runs = []
    for out in outs:
        for folder in sorted(p for p in out.iterdir() if p.is_dir() and p.name.startswith("sr_")):
            meta = json.loads((folder / "model.json").read_text())
            cfg = meta["config"]
            record = {k: meta[k] for k in RUN_KEYS}
            record.update(loss=cfg["loss"], adv_weight=cfg.get("adv_weight", 0.0), init_from=meta.get("init_from"),
                          steps_planned=cfg["steps"])
            scores = json.loads((folder / "eval.json").read_text())["results"]["single"]
            for s in scores:
                record[s["set"]] = {k: s[k] for k in ("psnr", "ssim", "grad_energy_ratio", "n")}
                record[s["set"]]["images"] = s["images"]
            runs.append(record)
    _write("exb_sr_study.json", {
        "what": "residual net x3 (Y channel): from scratch with L1 vs MSE (same recipe, steps, seeds); and "
                "fine-tunes of the shipped L1 model with an adversarial term of weight adv_weight "
                "(0: the same fine-tune without D). Scored by imagegen eval-sr (SRCNN/EDSR protocol).",
        "made_by": "scripts/gpu_study_sr.sh, collected by scripts/collect_study.py sr", "runs": runs})


Q6_METRICS = ("fid", "kid_mean", "precision", "recall", "coverage", "label_accuracy", "network_calls",
              "sample_seconds_per_1k", "sample_device", "n", "seed")


def collect_q6(evals: Path) -> None:
    """Every `imagegen eval --json` of the Q6 study, one record each (model, sampler, guidance, metrics)."""
    records = []
    for path in sorted(evals.glob("*.json")):
        scores = json.loads(path.read_text())
        name, _, tag = path.stem.partition(".")
        records.append({"model": name, "tag": tag, "sampler": scores["sampler"],
                        **{k: scores[k] for k in Q6_METRICS if k in scores},
                        "command": scores["run"]["command"], "git_commit": scores["run"].get("git_commit")})
    _write("q6_evals.json", {
        "what": "Q6's MNIST diffusion and flow-matching models (scripts/gpu_train_q6.sh): FID and friends against the "
                "test split (n = 10,000, seed 0, the classifier's features) for each sampler, number of steps and "
                "guidance scale; sampling times were measured with several evaluations sharing the GPU",
        "made_by": "scripts/gpu_train_q6.sh curves, collected by scripts/collect_study.py q6", "evals": records})


if __name__ == "__main__":
    kind, *folders = sys.argv[1:]
    {"q4": lambda: collect_q4(Path(folders[0])), "sr": lambda: collect_sr([Path(f) for f in folders]),
     "q6": lambda: collect_q6(Path(folders[0]))}[kind]()
