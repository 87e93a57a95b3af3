#!/usr/bin/env python
"""How fast can you train a GAN? The MNIST DCGAN, one way of training it after another, in one run.

    python benchmarks/train_speed.py                      # on the GPU (the device tool)
    python benchmarks/train_speed.py --device cpu         # the CPU numbers the notebooks' budget rests on
    python benchmarks/train_speed.py --device cpu --quick # a smoke test (seconds)

Every variant trains the *same* model (the library's DCGAN, width 64, z 100) with the same loss,
Adam settings and batch size (128) for a fixed number of steps: ``--warmup`` steps untimed (data
loader start, cuDNN's first calls, compilation, graph capture), then ``--repeats`` timed runs of
``--steps`` steps each, the clock read after ``torch.cuda.synchronize()``. On a GPU each variant
runs in a fresh process (``--isolate``): see :func:`run_isolated` for why. A row reports the
median's images/s, the time an epoch (468 steps) takes at that rate, the speed-up over the
tutorial baseline, and the model arithmetic it sustains as a fraction of the matrix units' peak,
measured in the same run (a large ``torch.matmul``). Each variant runs in its own ``try``: one that
fails prints its error and the others still run. The table is saved as JSON and Markdown in
``--out-dir`` (``benchmarks/results/train_speed_<device>.{json,md}``), with the device, the torch
version and the date, for the book page to render.

The variants, and the lever each isolates:

* ``tutorial``      — pytorch/examples' dcgan: ``torchvision.datasets.MNIST`` + ``DataLoader``
  (2 workers, per-item ``ToTensor``/``Normalize``), float32, ``cudnn.benchmark``, two ``backward``
  calls for D, ``.item()`` on five statistics and a log line every step.
* ``shipped-eager`` — :func:`imagegen_lib.gan.train.train_gan` with ``fast=False`` (``--eager``): the
  data set resident on the device, but noise drawn on the CPU and copied every step (a sync).
* ``resident``      — the plain step on the resident data set, noise drawn on the device, statistics
  read every 50 steps: no host synchronisation in between. Then, each on top of ``resident``:
  ``+fused-adam``, ``+bf16`` (autocast), ``+channels-last``, ``+compile`` (default mode) and
  ``+compile-ro`` (``mode="reduce-overhead"``: Inductor's own CUDA graphs).
* ``graph``         — :class:`imagegen_lib.gan.fast_step.FastGANStep`: the whole D+G update (fused,
  capturable Adam; batch gathered by ``index_select``; cuDNN's benchmark mode at capture) captured
  as one CUDA graph and replayed. Then ``+freeze-D`` (no D weight gradients in the G step), and on
  top of it: ``+4-steps`` (four updates per replay), ``+channels-last-graph`` (fp32), and
  cumulatively ``+bf16-graph``, ``+bf16-cl-graph`` (bf16 + channels_last), ``+side-streams`` (D's
  real-batch branch beside G's forward pass, the statistics on a third stream), ``+compile-D``
  (``torch.compile(D)`` inside the graph), ``+projection-matmul`` (G's first layer as one GEMM:
  the shipped settings, ``fast_step.SHIPPED_OPTIONS``); and ``+compile-G-too`` beside it. Each is a
  :class:`~imagegen_lib.gan.fast_step.FastStepOptions` (see :data:`GRAPH_ONLY`) plus bf16 or not.
* ``shipped``       — :func:`~imagegen_lib.gan.train.train_gan` as the CLI runs it by default (on a GPU
  the fast path with ``fast_step.SHIPPED_OPTIONS``; on a CPU the plain loop), logging every 50
  steps and drawing a sample grid every 500, without writing checkpoints.
* ``fast-eager``    — (CPU) the fast path's step functions without a graph: D frozen in the G step.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout (the GPU machine) without installing

import torch  # noqa: E402
from torch import nn  # noqa: E402

from imagegen_lib.core import data  # noqa: E402
from imagegen_lib.core.runtime import git_commit  # noqa: E402
from imagegen_lib.gan.fast_step import SHIPPED_OPTIONS, FastGANStep, FastStepOptions, adam_options  # noqa: E402
from imagegen_lib.gan.fast_step import gan_train_step_frozen_d  # noqa: E402
from imagegen_lib.gan.losses import g_loss_nonsaturating  # noqa: E402
from imagegen_lib.gan.models import build_gan  # noqa: E402
from imagegen_lib.gan.step import gan_train_step  # noqa: E402
from imagegen_lib.gan.train import GANConfig, train_gan  # noqa: E402

LOG_EVERY = 50  # the shipped loop reads its statistics every 50 steps; the variants do the same
GPU_VARIANTS = ["tutorial", "shipped-eager", "resident", "+fused-adam", "+bf16", "+channels-last",
                "graph", "+freeze-D", "+4-steps", "+channels-last-graph", "+bf16-graph", "+bf16-cl-graph",
                "+side-streams", "+compile-D", "+projection-matmul", "+compile-G-too", "shipped",
                "+compile", "+compile-ro"]  # eager compile last: slowest to warm up
CPU_VARIANTS = ["tutorial", "shipped", "resident", "+channels-last", "fast-eager"]


# ---------------------------------------------------------------------------------------------
# Set-up
# ---------------------------------------------------------------------------------------------

class Bench:
    """What every variant shares: device, data, sizes, timing protocol."""

    def __init__(self, args):
        self.device = torch.device(args.device)
        self.B, self.z_dim, self.width = args.batch_size, args.z_dim, args.width
        self.steps, self.repeats, self.warmup = args.steps, args.repeats, args.warmup
        self.workers, self.limit = args.workers, args.limit
        self.images_cpu, _ = data.load_images("mnist", "train", (-1, 1), limit=args.limit)
        self.images = self.images_cpu.to(self.device)
        self.n = self.images.shape[0]
        self.steps_per_epoch = self.n // self.B
        self.full_epoch_steps = 60_000 // self.B  # what "time per epoch" means in the table

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def models(self, seed: int = 0):
        torch.manual_seed(seed)
        G, D = build_gan("dcgan", z_dim=self.z_dim, width=self.width)
        return G.to(self.device), D.to(self.device)

    def adam(self, module, **kw):
        return torch.optim.Adam(module.parameters(), lr=2e-4, betas=(0.5, 0.999), **kw)

    def time_steps(self, step, steps_per_call: int = 1) -> list[float]:
        """Warm up, then ``repeats`` timed runs of ``steps`` steps; ``step()`` makes ``steps_per_call``."""
        calls = max(1, self.steps // steps_per_call)
        for _ in range(max(1, self.warmup // steps_per_call)):
            step()
        self.sync()
        times = []
        for _ in range(self.repeats):
            self.sync()
            t0 = time.perf_counter()
            for _ in range(calls):
                step()
            self.sync()
            times.append(time.perf_counter() - t0)
        return [t * self.steps / (calls * steps_per_call) for t in times]  # seconds per `steps` steps


# ---------------------------------------------------------------------------------------------
# (a) The tutorial way
# ---------------------------------------------------------------------------------------------

def tutorial_dataset(bench: Bench, tmp: Path):
    """torchvision's MNIST with per-item ToTensor + Normalize, read from an uncompressed copy of the
    same IDX files (torchvision won't open .gz files without trying to download). Without torchvision,
    a Dataset doing the same per item (PIL image -> tensor -> normalise)."""
    raw_in = data.find_dataset_dir("mnist")
    raw_out = tmp / "MNIST" / "raw"
    raw_out.mkdir(parents=True, exist_ok=True)
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        src = data._file_in(raw_in, stem)
        (raw_out / stem).write_bytes(__import__("gzip").decompress(src.read_bytes()) if src.suffix == ".gz"
                                     else src.read_bytes())
    try:
        import torchvision
        from torchvision import transforms

        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
        ds = torchvision.datasets.MNIST(str(tmp), train=True, download=False, transform=tf)
        source = f"torchvision {torchvision.__version__} datasets.MNIST + ToTensor/Normalize"
    except ImportError:
        ds, source = _IdxDataset(raw_out / "train-images-idx3-ubyte"), "IDX Dataset, per-item PIL->tensor->normalise (no torchvision)"
    if bench.limit:
        ds = torch.utils.data.Subset(ds, range(bench.limit))
    return ds, source


class _IdxDataset(torch.utils.data.Dataset):
    def __init__(self, path: Path):
        self.images = data.read_idx(path)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        import numpy as np
        from PIL import Image

        img = Image.fromarray(self.images[i], mode="L")  # what torchvision's MNIST hands its transform
        x = torch.from_numpy(np.array(img, dtype=np.float32) / 255.0).unsqueeze(0)  # ToTensor
        return (x - 0.5) / 0.5, 0  # Normalize((0.5,), (0.5,))


def run_tutorial(bench: Bench) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ds, source = tutorial_dataset(bench, Path(tmp))
        loader = torch.utils.data.DataLoader(ds, batch_size=bench.B, shuffle=True, num_workers=bench.workers,
                                             drop_last=True)  # drop_last: every timed step has B images

        def batches():
            while True:  # epoch after epoch, the workers restarting each time (as in the example)
                yield from loader

        it = batches()
        benchmark_before = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True  # as the example's main.py sets it
        G, D = bench.models()
        opt_g, opt_d = bench.adam(G), bench.adam(D)
        criterion = nn.BCEWithLogitsLoss()  # our D returns logits; the example's sigmoid + BCELoss
        sink = open(os.devnull, "w")

        def step():
            real = next(it)[0].to(bench.device)
            b = real.size(0)
            label = torch.full((b,), 1.0, device=bench.device)
            D.zero_grad()
            out = D(real)
            err_d_real = criterion(out, label)
            err_d_real.backward()
            d_x = out.sigmoid().mean().item()
            noise = torch.randn(b, bench.z_dim, device=bench.device)
            fake = G(noise)
            label.fill_(0.0)
            out = D(fake.detach())
            err_d_fake = criterion(out, label)
            err_d_fake.backward()
            d_g_z1 = out.sigmoid().mean().item()
            err_d = err_d_real + err_d_fake
            opt_d.step()
            G.zero_grad()
            label.fill_(1.0)
            out = D(fake)
            err_g = criterion(out, label)
            err_g.backward()
            d_g_z2 = out.sigmoid().mean().item()
            opt_g.step()
            print(f"Loss_D: {err_d.item():.4f} Loss_G: {err_g.item():.4f} D(x): {d_x:.4f} "
                  f"D(G(z)): {d_g_z1:.4f} / {d_g_z2:.4f}", file=sink)

        try:
            return {"times": bench.time_steps(step), "notes": f"{source}; DataLoader(num_workers={bench.workers}); "
                                                              "cudnn.benchmark"}
        finally:
            sink.close()
            torch.backends.cudnn.benchmark = benchmark_before


# ---------------------------------------------------------------------------------------------
# (c)-(f) Resident data, eager steps
# ---------------------------------------------------------------------------------------------

def run_resident(bench: Bench, fused_adam=False, bf16=False, channels_last=False, compile_mode=None,
                 step_fn=gan_train_step) -> dict:
    G, D = bench.models()
    opt_kw = {"fused": True} if fused_adam else {}
    opt_g, opt_d = bench.adam(G, **opt_kw), bench.adam(D, **opt_kw)
    images = bench.images
    if channels_last:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    G_run, D_run = G, D
    if compile_mode is not None:
        G_run, D_run = torch.compile(G, mode=compile_mode), torch.compile(D, mode=compile_mode)
    autocast = ((lambda: torch.autocast(bench.device.type, dtype=torch.bfloat16)) if bf16
                else contextlib.nullcontext)
    gen = torch.Generator(bench.device).manual_seed(0)
    state = {"i": bench.steps_per_epoch, "order": None, "sums": torch.zeros(4, device=bench.device), "k": 0}

    def step():
        if state["i"] >= bench.steps_per_epoch:
            state["order"], state["i"] = torch.randperm(bench.n, device=bench.device, generator=gen), 0
        i = state["i"]
        real = images[state["order"][i * bench.B:(i + 1) * bench.B]]
        z = torch.randn(bench.B, bench.z_dim, device=bench.device, generator=gen)
        if compile_mode == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # one training iteration = one graph-tree step
        stats = step_fn(G_run, D_run, opt_g, opt_d, real, z, g_loss_nonsaturating, autocast)
        state["sums"] += torch.stack([v.float() for v in stats.values()])
        state["i"] += 1
        state["k"] += 1
        if state["k"] % LOG_EVERY == 0:
            float(state["sums"][0])  # the log line's read: one sync every 50 steps

    return {"times": bench.time_steps(step)}


# ---------------------------------------------------------------------------------------------
# (g) The whole step as a CUDA graph (imagegen_lib.gan.fast_step)
# ---------------------------------------------------------------------------------------------

# The ``graph`` row: the step captured as a CUDA graph (capturable fused Adam, resident batch, cuDNN's
# benchmark mode at capture) and every other lever off; the rows below it turn them on one by one.
GRAPH_ONLY = FastStepOptions(freeze_d=False, channels_last=False, side_streams=False, compile_mode=None,
                             projection_as_matmul=False, use_graph=True)
FREEZE_D = GRAPH_ONLY.replace(freeze_d=True)


def run_graph(bench: Bench, options: FastStepOptions = GRAPH_ONLY, bf16: bool = False) -> dict:
    G, D = bench.models()
    opt_kw = adam_options(bench.device, fast=True)
    opt_g, opt_d = bench.adam(G, **opt_kw), bench.adam(D, **opt_kw)
    stepper = FastGANStep(G, D, opt_g, opt_d, bench.images, bench.B, bench.z_dim, g_loss_nonsaturating,
                          bf16=bf16, options=options)
    noise_gen = torch.Generator().manual_seed(1)
    K = stepper.steps_per_call
    state = {"i": bench.steps_per_epoch, "k": 0, "epoch": 0}

    def step():  # K updates per call
        if state["i"] + K > bench.steps_per_epoch:
            order = torch.randperm(bench.n, generator=torch.Generator().manual_seed(state["epoch"]))
            stepper.begin_epoch(order, 0)
            state["i"], state["epoch"] = 0, state["epoch"] + 1
        stepper.run(K, noise_gen)
        state["i"] += K
        state["k"] += K
        if state["k"] % LOG_EVERY < K:
            float(stepper.take_sums()["loss_d"])  # the log line's read, every ~50 steps

    times = bench.time_steps(step, steps_per_call=K)
    note = "CUDA graph" if stepper.graphs is not None else "eager (no graph)"
    return {"times": times, "notes": note}


# ---------------------------------------------------------------------------------------------
# (b) The shipped loop, through its public entry point
# ---------------------------------------------------------------------------------------------

def run_shipped(bench: Bench, fast=None) -> dict:
    """train_gan itself: its own timing of every S-step stretch, read from its log rows (each row is
    written after a loss has been read back from the device, so the clock is synchronised)."""
    S = bench.steps  # timed stretch: its end is a log row
    log_every = LOG_EVERY if S % LOG_EVERY == 0 else S  # the CLI's 50 where it divides the stretch
    warm = max(1, math.ceil(bench.warmup / S))
    total = S * (warm + bench.repeats)
    config = GANConfig(arch="dcgan", z_dim=bench.z_dim, width=bench.width, batch_size=bench.B,
                       epochs=total // bench.steps_per_epoch + 1, log_every=log_every, seed=0)
    with warnings.catch_warnings(record=True) as caught:  # a failed graph capture must show in the table
        warnings.simplefilter("always", RuntimeWarning)
        result = train_gan(config, images=bench.images_cpu, device=bench.device, progress=False, max_steps=total,
                           fast=fast)
    fallback = [str(w.message) for w in caught if "graph capture failed" in str(w.message)]
    at = {row["step"]: row["seconds"] for row in result.history}
    marks = [S * k for k in range(warm, warm + bench.repeats + 1)]
    times = [at[b] - at[a] for a, b in zip(marks, marks[1:])]
    mode = ("fast path " + json.dumps(asdict(SHIPPED_OPTIONS)) if (fast is not False and bench.device.type == "cuda")
            else "plain loop")
    return {"times": times, "notes": f"{mode}; log every {log_every} steps" + "".join(f"; {m}" for m in fallback)}


VARIANTS = {
    # name: (what it is, how to run it)
    "tutorial": ("pytorch/examples style: torchvision MNIST + DataLoader, per-item transforms, fp32, cudnn.benchmark, "
                 ".item() every step",
                 run_tutorial),
    "shipped-eager": ("train_gan --eager: resident data, CPU noise copied every step", lambda b: run_shipped(b, fast=False)),
    "resident": ("resident data, noise drawn on the device, no per-step sync; eager fp32, default Adam", run_resident),
    "+fused-adam": ("resident + fused Adam", lambda b: run_resident(b, fused_adam=True)),
    "+bf16": ("resident + bf16 autocast", lambda b: run_resident(b, bf16=True)),
    "+channels-last": ("resident + channels_last", lambda b: run_resident(b, channels_last=True)),
    "+compile": ("resident + torch.compile(G), torch.compile(D)", lambda b: run_resident(b, compile_mode="default")),
    "+compile-ro": ("resident + torch.compile(mode='reduce-overhead') (Inductor CUDA graphs)",
                    lambda b: run_resident(b, compile_mode="reduce-overhead")),
    "graph": ("whole D+G step as one CUDA graph: capturable fused Adam, index_select batch", run_graph),
    "+freeze-D": ("graph + D frozen in the G step (no D weight grads)", lambda b: run_graph(b, FREEZE_D)),
    "+4-steps": ("graph + freeze-D, 4 updates per graph replay",
                 lambda b: run_graph(b, FREEZE_D.replace(steps_per_graph=4))),
    "+channels-last-graph": ("graph + freeze-D + channels_last (fp32)",
                             lambda b: run_graph(b, FREEZE_D.replace(channels_last=True))),
    "+bf16-graph": ("graph + freeze-D + bf16 autocast", lambda b: run_graph(b, FREEZE_D, bf16=True)),
    "+bf16-cl-graph": ("graph + freeze-D + bf16 + channels_last",
                       lambda b: run_graph(b, FREEZE_D.replace(channels_last=True), bf16=True)),
    "+side-streams": ("graph + freeze-D + bf16 + channels_last + D(real) on a second stream, statistics on a third",
                      lambda b: run_graph(b, FREEZE_D.replace(channels_last=True, side_streams=True), bf16=True)),
    "+compile-D": ("+side-streams with torch.compile(D) inside the graph",
                   lambda b: run_graph(b, SHIPPED_OPTIONS.replace(projection_as_matmul=False), bf16=True)),
    "+projection-matmul": ("+compile-D with G's first layer (7x7 transposed conv of a 1x1 input) as one matmul "
                           "(= the shipped settings)", lambda b: run_graph(b, SHIPPED_OPTIONS, bf16=True)),
    "+compile-G-too": ("+compile-D with G compiled as well (its first layer a convolution again)",
                       lambda b: run_graph(b, SHIPPED_OPTIONS.replace(compile_which="GD",
                                                                      projection_as_matmul=False), bf16=True)),
    "shipped": ("train_gan as the CLI runs it by default (logs every 50, samples every 500, no checkpoints)",
                lambda b: run_shipped(b)),
    "fast-eager": ("the fast path's step without a graph: D frozen in the G step (CPU)",
                   lambda b: run_graph(b, FREEZE_D.replace(use_graph=False))),
}


# ---------------------------------------------------------------------------------------------
# Work per image, and the machine's peak
# ---------------------------------------------------------------------------------------------

def count_flops(bench: Bench) -> dict:
    """FLOPs of one training step (convolutions and matrix products, forward and backward), counted
    by torch.utils.flop_counter on the CPU, for the plain step and for the one with D frozen in the G step."""
    from torch.utils.flop_counter import FlopCounterMode

    out = {}
    for name, fn in (("plain_step", gan_train_step), ("frozen_d_step", gan_train_step_frozen_d)):
        torch.manual_seed(0)
        G, D = build_gan("dcgan", z_dim=bench.z_dim, width=bench.width)
        opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
        real, z = bench.images_cpu[:bench.B], torch.randn(bench.B, bench.z_dim)
        with FlopCounterMode(display=False) as counter:
            fn(G, D, opt_g, opt_d, real, z, g_loss_nonsaturating)
        out[name] = counter.get_total_flops() / bench.B
    return out  # per image


def matmul_peak(device: torch.device) -> dict:
    """TFLOP/s of a large square matrix product in bf16 and in fp32 with TF32 (CUDA), or fp32 (CPU)."""
    def rate(n, dtype, precision, reps):
        before = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision(precision)
        try:
            gen = torch.Generator(device).manual_seed(0)
            a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
            b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
            for _ in range(2):
                a @ b
            samples = []
            for _ in range(3):
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t0 = time.perf_counter()
                for _ in range(reps):
                    a @ b
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                samples.append((time.perf_counter() - t0) / reps)
            return 2 * n ** 3 / statistics.median(samples) / 1e12
        finally:
            torch.set_float32_matmul_precision(before)

    if device.type == "cuda":
        return {"bf16": rate(8192, torch.bfloat16, "highest", 20), "tf32": rate(8192, torch.float32, "high", 10)}
    return {"fp32": rate(1024, torch.float32, "highest", 3)}


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------

def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def summarise(name: str, outcome: dict, bench: Bench, flops: dict, peak: dict, baseline: float | None) -> dict:
    times = outcome["times"]
    per_step = [t / bench.steps for t in times]
    ips = [bench.B / s for s in per_step]
    median_ips = statistics.median(ips)
    work = flops.get("frozen_d_step", 0.0)  # the arithmetic a training step *needs* (see count_flops)
    row = {"variant": name, "what": VARIANTS[name][0], "images_per_s": median_ips,
           "images_per_s_min": min(ips), "images_per_s_max": max(ips),
           "ms_per_step": 1e3 * bench.B / median_ips,
           "seconds_per_epoch": bench.full_epoch_steps * bench.B / median_ips,
           "speedup_vs_tutorial": (median_ips / baseline) if baseline else None,
           "model_tflops": median_ips * work / 1e12, "notes": outcome.get("notes", ""), "error": None}
    for unit, tflops in peak.items():
        row[f"fraction_of_{unit}_peak"] = row["model_tflops"] / tflops
    return row


def to_markdown(result: dict) -> str:
    peak = result["peak_tflops"]
    units = list(peak)
    lines = [f"**{result['device']}** · torch {result['torch']} · {result['date']} · batch {result['batch_size']} · "
             f"median of {result['repeats']} × {result['steps']} steps · commit {result['git_commit']}", "",
             "| variant | images/s | ms/step | s/epoch | × tutorial | "
             + " | ".join(f"% {u} peak" for u in units) + " | what |",
             "|---|---:|---:|---:|---:|" + "---:|" * len(units) + "---|"]
    for r in result["rows"]:
        if r.get("error"):
            status = "not run: time budget spent" if r["error"].startswith("skipped") else f"failed: {r['error'][:120]}"
            lines.append(f"| {r['variant']} | {status} | | | |" + " |" * len(units) + f" {r['what']} |")
            continue
        speed = f"{r['speedup_vs_tutorial']:.2f}" if r["speedup_vs_tutorial"] else "–"
        lines.append(f"| {r['variant']} | {r['images_per_s']:,.0f} | {r['ms_per_step']:.2f} | "
                     f"{r['seconds_per_epoch']:.2f} | {speed} | "
                     + " | ".join(f"{100 * r[f'fraction_of_{u}_peak']:.1f}" for u in units) + f" | {r['what']} |")
    f = result["flops_per_image"]
    lines += ["", f"Model work: {f['frozen_d_step'] / 1e9:.3f} GFLOP per image per training step "
              f"({f['plain_step'] / 1e9:.3f} with D's unused weight gradients in the G step); measured peak: "
              + ", ".join(f"{u} {v:.3g} TFLOP/s" for u, v in peak.items()) + " (a large torch.matmul, same run)."]
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="smoke test: a few steps of a small model")
    p.add_argument("--variants", default=None, help="comma-separated subset (default: all for the device)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--z-dim", type=int, default=100)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--steps", type=int, default=None, help="steps per timed repeat")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers of the tutorial (default 2)")
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    p.add_argument("--time-budget", type=float, default=None,
                   help="seconds; variants that would start later are skipped (default: 600 GPU, 600 CPU)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                   help="each variant in its own process (default: on a GPU; see run_isolated)")
    p.add_argument("--outcome-json", type=Path, default=None, help=argparse.SUPPRESS)  # run_isolated's child
    args = p.parse_args(argv)
    cuda = args.device.startswith("cuda")
    defaults = (dict(steps=3, repeats=2, warmup=1, workers=0, limit=1024, batch_size=32, width=16)
                if args.quick else dict(steps=100 if cuda else 10, repeats=5 if cuda else 3,
                                        warmup=30 if cuda else 3, workers=2))
    for k, v in defaults.items():
        if getattr(args, k) is None or (args.quick and k in ("batch_size", "width")):
            setattr(args, k, v)
    if args.time_budget is None:
        args.time_budget = 600.0  # the whole GPU table takes ~450 s, each variant in its own process
    if args.isolate is None:
        args.isolate = cuda and args.outcome_json is None
    names = args.variants.split(",") if args.variants else (GPU_VARIANTS if cuda else CPU_VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    args.variants = names
    return args


def run_isolated(name: str, args) -> dict:
    """One variant in a fresh Python process, so that nothing carries over from the variants before
    it: cuDNN caches its algorithm choice per convolution shape, and a choice made by an eager
    variant (heuristics, benchmark mode off) was reused by a later graph variant of the same shapes,
    costing it up to half its speed. Compiled code and the memory allocator's state stay behind too."""
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "outcome.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--variants", name, "--outcome-json", str(dest),
               "--device", args.device, "--batch-size", str(args.batch_size), "--z-dim", str(args.z_dim),
               "--width", str(args.width), "--steps", str(args.steps), "--repeats", str(args.repeats),
               "--warmup", str(args.warmup), "--workers", str(args.workers)]
        for flag, value in (("--limit", args.limit), ("--threads", args.threads)):
            if value:
                cmd += [flag, str(value)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not dest.exists():
            raise RuntimeError(f"the variant's process failed (exit {proc.returncode}): {proc.stderr[-600:]}")
        return json.loads(dest.read_text())


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    bench = Bench(args)
    if args.outcome_json:  # a child of run_isolated: one variant, its raw timings, nothing else
        outcome = VARIANTS[args.variants[0]][1](bench)
        args.outcome_json.write_text(json.dumps(outcome))
        return outcome
    label = device_label(bench.device)
    print(f"train_speed: {label}, torch {torch.__version__}, batch {bench.B}, "
          f"{args.repeats} x {args.steps} steps after {args.warmup} warm-up", flush=True)
    flops = count_flops(bench)
    print(f"  model work: {flops['frozen_d_step'] / 1e9:.3f} GFLOP/image/step "
          f"(plain step {flops['plain_step'] / 1e9:.3f})", flush=True)
    peak = matmul_peak(bench.device)
    print("  matmul peak: " + ", ".join(f"{k} {v:.3g} TFLOP/s" for k, v in peak.items()), flush=True)

    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") if bench.device.type == "cuda" else "cpu"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    variant = "_quick" if args.quick else ("" if (bench.width, bench.B) == (64, 128) else f"_w{bench.width}_b{bench.B}")
    stem = args.out_dir / f"train_speed_{slug}{variant}"
    result = {"benchmark": "train_speed", "device": label, "device_type": bench.device.type,
              "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
              "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "git_commit": git_commit(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
              "threads": torch.get_num_threads(), "batch_size": bench.B, "z_dim": bench.z_dim, "width": bench.width,
              "steps": args.steps, "repeats": args.repeats, "warmup": args.warmup, "quick": args.quick,
              "flops_per_image": flops, "peak_tflops": peak, "shipped_options": asdict(SHIPPED_OPTIONS), "rows": []}
    baseline = None
    for name in args.variants:
        if time.perf_counter() - t_start > args.time_budget:
            row = {"variant": name, "what": VARIANTS[name][0], "error": "skipped: time budget spent"}
        else:
            t0 = time.perf_counter()
            try:
                outcome = run_isolated(name, args) if args.isolate else VARIANTS[name][1](bench)
                row = summarise(name, outcome, bench, flops, peak, baseline)
                if name == "tutorial":
                    baseline = row["images_per_s"]
                    row["speedup_vs_tutorial"] = 1.0
            except Exception as e:  # noqa: BLE001 - one failing variant must not cost the others
                traceback.print_exc()
                row = {"variant": name, "what": VARIANTS[name][0], "error": f"{type(e).__name__}: {e}"}
            row["wall_seconds"] = round(time.perf_counter() - t0, 1)
            _clean_up(bench)
        result["rows"].append(row)
        _print_row(row)
        _save(result, stem)  # after every variant: a run cut short still leaves its table
    print("\n" + to_markdown(result), flush=True)
    print(f"saved {stem}.json and {stem}.md ({time.perf_counter() - t_start:.0f} s)")
    return result


def _print_row(row: dict) -> None:
    if row.get("error"):
        print(f"  {row['variant']:<22} FAILED  {row['error'][:300]}", flush=True)
    else:
        x = f"{row['speedup_vs_tutorial']:.2f}x" if row.get("speedup_vs_tutorial") else ""
        print(f"  {row['variant']:<22} {row['images_per_s']:>10,.0f} img/s  {row['ms_per_step']:7.2f} ms/step "
              f"{x:>7}  ({row['wall_seconds']} s) {row['notes']}", flush=True)


def _clean_up(bench: Bench) -> None:
    with contextlib.suppress(Exception):
        torch._dynamo.reset()
    gc.collect()
    if bench.device.type == "cuda":
        with contextlib.suppress(Exception):
            torch.cuda.synchronize(bench.device)
            torch.cuda.empty_cache()


def _save(result: dict, stem: Path) -> None:
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(to_markdown(result))


if __name__ == "__main__":
    main()
