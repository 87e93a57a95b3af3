#!/usr/bin/env python
"""Render scripts/gpu_bench.sh's quality check (quality.json) as the Markdown table the book includes.

    python benchmarks/render_quality.py benchmarks/results/quality.json > benchmarks/results/quality.md
"""
import json
import sys


def render(report: dict) -> str:
    lines = ["| mode | seed | epochs | FID | KID | precision | recall |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        mode = "fast path (shipped: bf16, CUDA graph, …)" if r["mode"] == "fast" else "plain loop (--eager, fp32)"
        lines.append(f"| {mode} | {r['seed']} | {r['epochs']} | {r['fid']:.2f} | {r['kid_mean']:.3f} | "
                     f"{r['precision']:.2f} | {r['recall']:.2f} |")
    lines += ["", "FID/KID/precision/recall from `imagegen eval --n 10000` (our MNIST classifier's features), "
              f"H100, same commit as the speed table; {report['note']}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        sys.stdout.write(render(json.load(f)))
