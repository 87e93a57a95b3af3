"""Q5's comparison table: every shipped generator of one data set, scored the same way.

Nothing in the table is typed in. Each row is read from ``checkpoints/MANIFEST.json`` — the
metrics ``imagegen eval --manifest`` recorded (same classifier features, same ``n``, same seed,
same test split for every model), the training time the run recorded, the sampling times
``scripts/time_sampling.py`` measured — and the parameter count is taken from the checkpoint
itself. A diffusion model gives one row per recorded sampler (ancestral, DDIM with S steps).

    from imagegen_lib.generators.compare import comparison_table
    table = comparison_table(dataset="mnist")   # a ComparisonTable: .rows (dicts), .to_markdown(), .to_html()
    table                                       # renders as HTML in a notebook

:data:`PUBLISHED` holds the Inception-feature FIDs of Dai & Wipf (2019, Table 1) for context; see
its ``caveat`` for why they can't be compared with ours number for number.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..core.manifest import CHECKPOINT_DIR, read_manifest

__all__ = ["comparison_table", "ComparisonTable", "PUBLISHED", "published_table", "MODEL_NAMES"]

MODEL_NAMES = {"mlpgan": "MLP GAN", "dcgan": "DCGAN", "cgan": "conditional DCGAN", "vae": "VAE", "ddpm": "DDPM"}
_ORDER = list(MODEL_NAMES)
_GENERATOR_KINDS = ("gan-generator", "vae", "ddpm")
FULL_N = 10_000

# Dai & Wipf (2019), "Diagnosing and Enhancing VAE Models", ICLR 2019, Table 1: FID (mean ± std)
# with Inception-v3 features, "neutral architecture". The GAN rows are the best FIDs of the
# large-scale hyper-parameter search of Lucic et al. (2018); the VAE rows one default setting.
PUBLISHED = {
    "source": "Dai & Wipf (2019), Diagnosing and Enhancing VAE Models, ICLR 2019, Table 1",
    "features": "Inception-v3",
    "caveat": ("Computed with Inception-v3 features on a different sample size, preprocessing and "
               "architecture; the GAN values are the best of a large hyper-parameter search, the VAE "
               "values one default setting. The feature space sets the scale of FID, so these numbers "
               "are not comparable with ours; only the ranking within each table carries over."),
    "fid": {
        "mnist": {"MM GAN": (9.8, 0.9), "NS GAN": (6.8, 0.5), "LSGAN": (7.8, 0.6), "WGAN": (6.7, 0.4),
                  "WGAN-GP": (20.3, 5.0), "DRAGAN": (7.6, 0.4), "BEGAN": (13.1, 1.0),
                  "VAE (cross-entropy)": (16.6, 0.4), "VAE (fixed γ)": (52.0, 0.6), "VAE (learned γ)": (54.5, 1.0),
                  "VAE + Flow": (54.8, 2.8), "WAE-MMD": (115.0, 1.1), "2-Stage VAE": (12.6, 1.5)},
        "fashion-mnist": {"MM GAN": (29.6, 1.6), "NS GAN": (26.5, 1.6), "LSGAN": (30.7, 2.2),
                          "WGAN": (21.5, 1.6), "WGAN-GP": (24.5, 2.1), "DRAGAN": (27.7, 1.2),
                          "BEGAN": (22.9, 0.9), "VAE (cross-entropy)": (43.6, 0.7),
                          "VAE (fixed γ)": (84.6, 0.9), "VAE (learned γ)": (60.0, 1.1),
                          "VAE + Flow": (62.1, 1.6), "WAE-MMD": (101.7, 0.8), "2-Stage VAE": (29.3, 1.0)},
    },
    # Our model -> the published row of the same family (same loss / likelihood), where there is one.
    "counterpart": {"mlpgan": "NS GAN", "dcgan": "NS GAN", "cgan": None, "vae": "VAE (cross-entropy)", "ddpm": None},
}

COLUMNS = [
    ("model", "model"), ("sampler", "sampler"), ("fid", "FID ↓"), ("kid", "KID ↓"), ("precision", "precision ↑"),
    ("recall", "recall ↑"), ("classes_drawn", "classes drawn ↑"), ("params", "parameters"),
    ("train_time", "training time"), ("gpu_per_1k", "sampling / 1k, GPU"), ("cpu_per_1k", "sampling / 1k, CPU"),
    ("published", "published FID (Inception)"),
]


@dataclass
class ComparisonTable:
    dataset: str
    rows: list[dict]  # one per model (and per sampler of a diffusion model); raw values, None when missing
    notes: list[str] = field(default_factory=list)
    columns: list[tuple[str, str]] = field(default_factory=lambda: list(COLUMNS))

    def formatted(self) -> list[dict[str, str]]:
        """The rows as display strings, keyed like :attr:`columns`."""
        return [_format_row(r) for r in self.rows]

    def to_markdown(self) -> str:
        head = "| " + " | ".join(label for _, label in self.columns) + " |"
        rule = "|" + "|".join("---" for _ in self.columns) + "|"
        body = ["| " + " | ".join(r[k] for k, _ in self.columns) + " |" for r in self.formatted()]
        notes = [f"\n- {n}" for n in self.notes]
        return "\n".join([head, rule, *body]) + ("\n" + "".join(notes) if notes else "")

    def to_html(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(label)}</th>" for _, label in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{esc(r[k])}</td>" for k, _ in self.columns) + "</tr>"
                       for r in self.formatted())
        notes = "".join(f"<li>{esc(n)}</li>" for n in self.notes)
        return (f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                + (f"<ul>{notes}</ul>" if notes else ""))

    def _repr_html_(self) -> str:  # Jupyter shows the table
        return self.to_html()


def comparison_table(names: list[str] | None = None, dataset: str = "mnist", manifest: dict | None = None,
                     checkpoint_dir: Path = CHECKPOINT_DIR, live_params: bool = True,
                     include_floor: bool = True) -> ComparisonTable:
    """The table for ``names`` (default: every shipped generator of ``dataset`` that is not part of a
    *study* — variants of one model trained to compare one factor, such as Q6's, which are tabled in
    their own chapter: pass their names to add them), from the manifest.

    ``live_params``: count parameters by loading each checkpoint (the network that samples: G,
    the VAE's decoder, the U-Net); otherwise that column is empty.
    """
    manifest = manifest if manifest is not None else read_manifest(checkpoint_dir)
    entries = manifest.get("checkpoints", {})
    if names is None:
        names = sorted((k for k, v in entries.items() if v.get("kind") in _GENERATOR_KINDS
                        and v.get("dataset") == dataset and not v.get("study")),
                       key=lambda k: (_ORDER.index(entries[k].get("arch")) if entries[k].get("arch") in _ORDER
                                      else len(_ORDER), k))
    unknown = [k for k in names if k not in entries]
    if unknown:
        raise KeyError(f"not in the manifest: {unknown}; shipped: {sorted(entries)}")
    rows, notes = [], []
    floor = manifest.get("floors", {}).get(dataset)
    if include_floor and floor:
        rows.append(_metric_row("real data (floor)", None, floor, {}))
    for name in names:
        entry = entries[name]
        if entry.get("dataset") != dataset:
            raise ValueError(f"{name} was trained on {entry.get('dataset')!r}, not {dataset!r}: FIDs of "
                             "different data sets are in different feature spaces and can't share a table")
        params = _params(checkpoint_dir / name) if live_params else None
        model_rows = _rows_of(name, entry, params, dataset)
        if not model_rows:
            notes.append(f"{name}: no metrics recorded yet — run `imagegen eval checkpoints/{name}.safetensors "
                         "--manifest` on the GPU machine")
        rows += model_rows
    evals = {(r["n"], r["seed"]) for r in rows if r.get("n") is not None}
    if len(evals) > 1:
        notes.append(f"rows were evaluated with different (n, seed): {sorted(evals)} — FID and KID depend on n")
    elif evals:
        (n, seed), = evals
        notes.append(f"every row: n = {n} samples, seed {seed}, against the {dataset} test split, in the "
                     f"feature space of checkpoints/classifier_{'mnist' if dataset == 'mnist' else 'fashion'}")
    notes.append("published FID: " + PUBLISHED["source"] + " — " + PUBLISHED["caveat"])
    return ComparisonTable(dataset, rows, notes)


def published_table(dataset: str = "mnist") -> ComparisonTable:
    """Dai & Wipf's Table 1 column for ``dataset`` (Inception features), as a table of its own."""
    fids = PUBLISHED["fid"].get(dataset)
    if fids is None:
        raise ValueError(f"no published FIDs for {dataset!r}; known: {sorted(PUBLISHED['fid'])}")
    rows = [{"model": k, "fid": v[0], "fid_std": v[1]} for k, v in fids.items()]
    return ComparisonTable(dataset, rows, [PUBLISHED["source"], PUBLISHED["caveat"]],
                           columns=[("model", "model (Dai & Wipf 2019)"), ("fid_pm", "FID (Inception) ↓")])


# ---------------------------------------------------------------------------------------------

def _params(stem: Path) -> int | None:
    from .samplers import load_sampler

    try:
        return load_sampler(stem).n_params
    except (OSError, RuntimeError, ValueError):
        return None


def _sampler_order(key: str) -> tuple:
    kind = "ancestral" if key.startswith("ancestral") else "ddim"
    steps = int("".join(c for c in key.split("_")[0] if c.isdigit()) or 0)
    return (kind != "ancestral", -steps, key)


def _rows_of(name: str, entry: dict, params, dataset: str) -> list[dict]:
    metrics = entry.get("metrics", {})
    timing = metrics.get("sampling_time", {})
    arch = entry.get("arch")
    base = {"name": name, "arch": arch, "params": params, "train_seconds": entry.get("train_seconds"),
            "train_device": entry.get("device")}
    published = PUBLISHED["counterpart"].get(arch)
    if published:
        base["published"] = (published, *PUBLISHED["fid"].get(dataset, {}).get(published, (None, None)))
    if entry.get("kind") != "ddpm":
        if "fid" not in metrics:
            return []
        return [_metric_row(MODEL_NAMES.get(arch, arch), None, metrics, timing.get("cpu", {}).get("default"),
                            timing.get("cuda", {}).get("default"), **base)]
    rows = []
    for key in sorted(metrics.get("samplers", {}), key=_sampler_order):
        record = metrics["samplers"][key]
        if record.get("eval_n") != FULL_N:
            continue  # the CPU check (n=500) and other small evaluations aren't table rows
        rows.append(_metric_row(MODEL_NAMES["ddpm"], key, record, timing.get("cpu", {}).get(key),
                                timing.get("cuda", {}).get(key), **base))
    return rows


def _metric_row(model: str, sampler: str | None, m: dict, cpu_timing: dict | None = None,
                gpu_timing: dict | None = None, **extra) -> dict:
    eval_device = str(m.get("sample_device", ""))
    gpu = (gpu_timing or {}).get("seconds_per_1k")
    cpu = (cpu_timing or {}).get("seconds_per_1k")
    if gpu is None and eval_device and not eval_device.startswith("cpu"):
        gpu = m.get("sample_seconds_per_1k")  # timed during `imagegen eval` on the GPU
    if cpu is None and eval_device.startswith("cpu"):
        cpu = m.get("sample_seconds_per_1k")
    coverage = m.get("coverage")
    return {"model": model, "sampler": sampler, "fid": m.get("fid"), "kid_mean": m.get("kid_mean"),
            "kid_std": m.get("kid_std"), "precision": m.get("precision"), "recall": m.get("recall"),
            "classes_drawn": None if coverage is None else round(coverage * 10), "n": m.get("eval_n"),
            "seed": m.get("eval_seed"), "gpu_per_1k": gpu, "cpu_per_1k": cpu,
            "cpu_timing_method": (cpu_timing or {}).get("method"), **extra}


def _num(x, fmt: str) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _seconds(x) -> str:
    if x is None:
        return "—"
    return f"{x:.3g} s" if x < 100 else f"{x:,.0f} s"


def _sampler_label(key: str | None) -> str:
    if not key:
        return "—"
    head = key.split("_")[0]
    steps = "".join(c for c in head if c.isdigit())
    kind = "ancestral" if head.startswith("ancestral") else "DDIM"
    eta = [p for p in key.split("_") if p.startswith("eta")]
    return f"{kind}, {steps} steps" + (f", η={eta[0][3:]}" if eta else "")


def _format_row(r: dict) -> dict[str, str]:
    published = r.get("published")
    device = str(r.get("train_device") or "")
    short_device = device.replace("NVIDIA ", "").split(" ")[0] if device and not device.startswith("cpu") else device
    return {
        "model": r["model"],
        "sampler": _sampler_label(r.get("sampler")),
        "fid": _num(r.get("fid"), ".2f"),
        "kid": "—" if r.get("kid_mean") is None else f"{r['kid_mean']:.4f} ± {r['kid_std']:.4f}",
        "precision": _num(r.get("precision"), ".3f"),
        "recall": _num(r.get("recall"), ".3f"),
        "classes_drawn": "—" if r.get("classes_drawn") is None else f"{r['classes_drawn']}/10",
        "params": "—" if r.get("params") is None else (f"{r['params'] / 1e6:.2f} M" if r["params"] >= 10_000
                                                       else f"{r['params']:,}"),
        "train_time": "—" if r.get("train_seconds") is None else f"{r['train_seconds']:.0f} s ({short_device})",
        "gpu_per_1k": _seconds(r.get("gpu_per_1k")),
        "cpu_per_1k": _seconds(r.get("cpu_per_1k")),
        "published": ("—" if not published or published[1] is None
                      else f"{published[1]} ± {published[2]} ({published[0]})"),
        "fid_pm": "—" if r.get("fid") is None else f"{r['fid']} ± {r.get('fid_std')}",
    }
