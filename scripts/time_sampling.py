"""Measure how long each shipped generator takes to draw 1000 images, and record it in the manifest.

    python scripts/time_sampling.py                      # CPU, 1 thread, every shipped generator
    python scripts/time_sampling.py --device cuda        # on the GPU machine (scripts/gpu_train_q5.sh runs it)
    python scripts/time_sampling.py --names ddpm_mnist --ddim-steps 10,50 --dry-run
    python scripts/time_sampling.py --names q6_flow_mnist --samplers euler10,heun10,dpmpp2m20

Writes ``metrics.sampling_time.<cpu|cuda>.<key>`` of each entry (``key``: ``default`` for one-shot
generators, the sampler for a diffusion model: ``ancestral1000``, ``ddim50``, ...) with the
seconds per 1000 images, the device, the thread count and *how* it was measured: a diffusion
sampler too slow to run whole (1000 U-Net calls on a CPU) is timed on a few calls and multiplied
by its number of calls, and the record says so. ``imagegen_lib.generators.compare`` reads these numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def parse_sampler_key(key: str) -> dict:
    """``'dpmpp2m20_w1.5'`` -> ``{'sampler': 'dpmpp2m', 'steps': 20, 'guidance': 1.5}`` (the inverse of sampler_key)."""
    import re

    m = re.fullmatch(r"(ancestral|ddim|euler|heun|dpmpp2m)(\d+)(?:_w([0-9.]+))?", key)
    if not m:
        raise SystemExit(f"time_sampling: {key!r} is not a sampler key like ddim50, heun10 or dpmpp2m20_w1.5")
    options = {"sampler": m[1], "steps": int(m[2])}
    if m[3] is not None:
        options["guidance"] = float(m[3])
    return options


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads); default 1")
    p.add_argument("--names", default=None, help="comma-separated manifest names (default: every generator)")
    p.add_argument("--ddim-steps", default="10,20,50,100", help="DDIM step counts to time besides ancestral")
    p.add_argument("--samplers", default=None, metavar="KEYS",
                   help="diffusion/flow samplers to time instead, as keys: ancestral1000,ddim50,heun10,dpmpp2m20,"
                        "euler50,dpmpp2m20_w1.5 (_wW: guidance scale W)")
    p.add_argument("--batch", type=int, default=None, help="images per timed batch (default: 1000 GPU, 100 CPU)")
    p.add_argument("--max-seconds", type=float, default=60.0,
                   help="run a diffusion sampler whole only if it takes at most this long; else extrapolate")
    p.add_argument("--dry-run", action="store_true", help="print, don't write the manifest")
    args = p.parse_args(argv)

    import torch

    from imagegen_lib.core.runtime import device_name
    from imagegen_lib.generators.samplers import (DDPMSampler, GENERATOR_KINDS, load_sampler,
                                                  measure_sampling_time)
    from imagegen_lib.core.manifest import CHECKPOINT_DIR, read_manifest, update_metrics

    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
        where = f"cpu ({cpu_model()}, {args.threads} thread{'s' if args.threads > 1 else ''})"
    else:
        where = device_name(device)
    batch = args.batch or (1000 if device.type == "cuda" else 100)
    entries = read_manifest()["checkpoints"]
    names = args.names.split(",") if args.names else sorted(k for k, v in entries.items()
                                                             if v.get("kind") in GENERATOR_KINDS)
    for name in names:
        if name not in entries:
            raise SystemExit(f"time_sampling: {name!r} is not in the manifest; shipped: {sorted(entries)}")
        sampler = load_sampler(CHECKPOINT_DIR / name, device=device)
        if isinstance(sampler, DDPMSampler) and args.samplers:
            jobs = {}
            for key in args.samplers.split(","):
                options = parse_sampler_key(key)
                try:
                    jobs[sampler.sampler_key(**options)] = options
                except ValueError as e:  # a sampler this model can't use (DDIM on a flow model, guidance unconditional)
                    print(f"{name:>16} {key:>14}: skipped ({e})", flush=True)
        elif isinstance(sampler, DDPMSampler):
            jobs = {sampler.sampler_key(): {}}
            for s in (int(v) for v in args.ddim_steps.split(",") if v):
                jobs[sampler.sampler_key(sampler="ddim", steps=s)] = {"sampler": "ddim", "steps": s}
        else:
            jobs = {"default": {}}
        records = {}
        for key, options in jobs.items():
            t0 = time.perf_counter()
            rec = measure_sampling_time(sampler, device, batch=batch if isinstance(sampler, DDPMSampler) else 1000,
                                        max_seconds=args.max_seconds, **options)
            rec.update(device=where, torch=torch.__version__, measured_at=time.strftime("%Y-%m-%d"),
                       host_cpus=os.cpu_count())
            records[key] = rec
            print(f"{name:>16} {key:>14}: {rec['seconds_per_1k']:10.4g} s / 1000 images on {where} "
                  f"[{rec['method']}; {time.perf_counter() - t0:.1f} s]", flush=True)
        if not args.dry_run:
            update_metrics(name, {"sampling_time": {device.type: records}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
