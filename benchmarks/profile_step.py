#!/usr/bin/env python
"""Where does a GAN training step's GPU time go? The replayed CUDA graph's kernels, traced.

    python benchmarks/profile_step.py [--configs +bf16-cl-graph,+compile-D] [--json out.json]

For each setting, :class:`imagegen_lib.gan.fast_step.FastGANStep` is captured and replayed under
``torch.profiler`` (CUPTI reports each kernel of a graph). Per step it reports: the wall time, the
number of kernels, their summed duration, the time at least one kernel is running ("busy") and so
the time the GPU sits between dependent kernels ("idle"), and the most expensive kernels. Busy is
below the sum when two streams overlap.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from imagegen_lib.core import data  # noqa: E402
from imagegen_lib.gan.fast_step import SHIPPED_OPTIONS, FastGANStep, FastStepOptions, adam_options  # noqa: E402
from imagegen_lib.gan.losses import g_loss_nonsaturating  # noqa: E402
from imagegen_lib.gan.models import build_gan  # noqa: E402

# The graph with D frozen in the G step (and cuDNN's benchmark mode at capture), every other lever off.
FREEZE_D = FastStepOptions(channels_last=False, side_streams=False, compile_mode=None, projection_as_matmul=False)
CONFIGS = {  # name (as in train_speed's table): (bf16, the FastGANStep's options)
    "+freeze-D": (False, FREEZE_D),
    "+bf16-cl-graph": (True, FREEZE_D.replace(channels_last=True)),
    "+side-streams": (True, FREEZE_D.replace(channels_last=True, side_streams=True)),
    "+compile-D": (True, SHIPPED_OPTIONS.replace(projection_as_matmul=False)),
    "+projection-matmul": (True, SHIPPED_OPTIONS),  # the shipped settings
}


def make_stepper(images, bf16: bool, options: FastStepOptions, batch=128, z_dim=100, width=64, seed=0):
    torch.manual_seed(seed)
    G, D = build_gan("dcgan", z_dim=z_dim, width=width)
    G, D = G.to(images.device), D.to(images.device)
    kw = adam_options(images.device, fast=True)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), **kw)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), **kw)
    stepper = FastGANStep(G, D, opt_g, opt_d, images, batch, z_dim, g_loss_nonsaturating, bf16=bf16, options=options)
    stepper.begin_epoch(torch.randperm(images.shape[0], generator=torch.Generator().manual_seed(seed)))
    return stepper


def _union(intervals):
    total, end = 0.0, float("-inf")
    for s, e in sorted(intervals):
        if e > end:
            total += e - max(s, end)
            end = e
    return total


def trace(images, config: tuple[bool, FastStepOptions], steps: int) -> dict:
    stepper = make_stepper(images, *config)
    noise = torch.Generator().manual_seed(1)
    stepper.run(20, noise)  # capture + warm replays
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    stepper.run(100, noise)
    torch.cuda.synchronize()
    wall_ms = (time.perf_counter() - t0) / 100 * 1e3
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        stepper.run(steps, noise)
        torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA
               and "memcpy" not in e.name.lower() and "memset" not in e.name.lower() and "#" not in e.name]
    spans = [(e.time_range.start, e.time_range.end) for e in kernels]
    by_name = defaultdict(lambda: [0, 0.0])
    for e in kernels:
        by_name[e.name][0] += 1
        by_name[e.name][1] += e.time_range.elapsed_us()
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    busy = _union(spans)
    ranked = sorted(by_name.items(), key=lambda kv: -kv[1][1])
    return {"wall_ms_per_step": wall_ms, "traced_ms_per_step": (last - first) / steps / 1e3,
            "kernels_per_step": len(kernels) / steps,
            "kernel_ms_per_step": sum(e - s for s, e in spans) / steps / 1e3,
            "busy_ms_per_step": busy / steps / 1e3, "idle_ms_per_step": ((last - first) - busy) / steps / 1e3,
            "streams": len({getattr(e, "device_resource_id", None) for e in kernels}),
            "kernels": [{"kernel": k[:160], "calls_per_step": n / steps, "us_per_step": t / steps}
                        for k, (n, t) in ranked]}


def to_markdown(out: dict) -> str:
    """The traced settings as the table the book includes."""
    lines = [f"**{out['device']}** · torch {out['torch']} · each setting captured, then {out.get('steps', 10)} "
             "replays traced", "",
             "| setting | ms/step | kernels/step | kernel time | GPU busy | GPU idle between kernels |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in out["configs"].items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error'][:80]} | | | | |")
            continue
        lines.append(f"| {name} | {r['wall_ms_per_step']:.2f} | {r['kernels_per_step']:.0f} | "
                     f"{r['kernel_ms_per_step']:.2f} ms | {r['busy_ms_per_step']:.2f} ms | {r['idle_ms_per_step']:.2f} ms |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--render", type=Path, default=None, help="print a saved --json result as Markdown and exit")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.render:
        print(to_markdown(json.loads(args.render.read_text())), end="")
        return
    images = data.load_images("mnist", "train", (-1, 1))[0].cuda()
    out = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "steps": args.steps, "configs": {}}
    for name in args.configs.split(","):
        t0 = time.perf_counter()
        try:
            r = trace(images, CONFIGS[name], args.steps)
        except Exception as e:  # noqa: BLE001 - one failing setting must not cost the others
            r = {"error": f"{type(e).__name__}: {e}"}
        r["seconds"] = round(time.perf_counter() - t0, 1)
        out["configs"][name] = r
        if args.json:
            args.json.write_text(json.dumps(out, indent=2) + "\n")
        if "error" in r:
            print(f"== {name}: FAILED {r['error'][:300]}", flush=True)
            continue
        print(f"== {name}: {r['wall_ms_per_step']:.3f} ms/step wall; traced {r['traced_ms_per_step']:.3f} ms: "
              f"{r['kernels_per_step']:.0f} kernels on {r['streams']} stream(s), {r['kernel_ms_per_step']:.3f} ms of "
              f"kernels, busy {r['busy_ms_per_step']:.3f}, idle {r['idle_ms_per_step']:.3f}", flush=True)
        for row in r["kernels"][:12]:
            print(f"   {row['us_per_step']:7.1f} us  x{row['calls_per_step']:4.1f}  {row['kernel'][:110]}", flush=True)


if __name__ == "__main__":
    main()
