"""The super-resolution results table: the shipped checkpoints' metrics (from the manifest, where
``imagegen eval-sr --manifest`` recorded them) next to the bicubic floor and the published numbers.

    from imagegen_lib.sr.report import results_table, format_results_table
    print(format_results_table(results_table()))

Nothing here computes a metric: every number of "ours" and of "bicubic (ours)" is read from
``checkpoints/MANIFEST.json``, and ``imagegen eval-sr`` reproduces each of them from the files.
"""

from __future__ import annotations

from .published import PUBLISHED

__all__ = ["SETS", "results_table", "format_results_table"]

SETS = ("Set5", "Set14", "BSD100")
_ARCH_ORDER = {"srcnn": 0, "espcn": 1, "resnet": 2}  # oldest and smallest first, as the papers' tables


def _ours_label(name: str, entry: dict) -> str:
    config = entry.get("config", {})
    skip = " + bicubic skip" if config.get("global_skip") and entry.get("arch") != "resnet" else ""
    return {"srcnn": "SRCNN", "espcn": "ESPCN", "resnet": "residual net"}.get(entry.get("arch"), name) + skip


def _metric(metrics: dict, set_name: str, scale: int, suffix: str = "") -> float | None:
    value = metrics.get(f"{set_name.lower()}_x{scale}_psnr_y{suffix}")
    return None if value is None else float(value)


def results_table(manifest: dict | None = None, scales=(2, 3, 4)) -> list[dict]:
    """One row per (method, scale): ``{"method", "kind", "scale", "Set5", "Set5+", "Set14", "BSD100",
    "minutes", "cite"}``; a missing number is None.

    ``kind`` is ``"ours"`` (a shipped ``sr-model`` checkpoint; "Set5+" is its self-ensemble),
    ``"floor"`` (our bicubic, the manifest's ``sr-bicubic-x{s}`` floors) or ``"published"``
    (:data:`imagegen_lib.sr.published.PUBLISHED`). ``manifest``: the parsed MANIFEST.json
    (default: the shipped one). The table compares models trained for PSNR, as the papers' tables
    do: a checkpoint fine-tuned with an adversarial term (``config.adv_weight`` > 0) trades PSNR
    for texture on purpose and is left out.
    """
    if manifest is None:
        from ..core.manifest import read_manifest
        manifest = read_manifest()
    if "checkpoints" not in manifest:
        raise ValueError("results_table expects a parsed MANIFEST.json (a dict with 'checkpoints' and 'floors')")
    rows = []
    for scale in scales:
        floor = manifest.get("floors", {}).get(f"sr-bicubic-x{scale}")
        if floor:
            rows.append({"method": "bicubic (ours)", "kind": "floor", "scale": scale, "minutes": None, "cite": None,
                         "Set5+": None, **{s: _metric(floor, s, scale) for s in SETS}})
        for key, pub in PUBLISHED.items():
            if key == "bicubic":
                continue
            rows.append({"method": pub["label"], "kind": "published", "scale": scale, "minutes": None,
                         "cite": pub["cite"], "Set5+": None,
                         **{s: pub["psnr"].get((s, scale)) for s in SETS}})
        ours = sorted(((name, e) for name, e in manifest["checkpoints"].items()
                       if e.get("kind") == "sr-model" and int(e.get("config", {}).get("scale", 0)) == scale
                       and not e.get("config", {}).get("adv_weight")),
                      key=lambda item: (_ARCH_ORDER.get(item[1].get("arch"), 9),
                                         bool(item[1].get("config", {}).get("global_skip")), item[0]))
        for name, entry in ours:
            metrics = entry.get("metrics", {})
            seconds = entry.get("train_seconds")
            rows.append({"method": f"{_ours_label(name, entry)} ({name})", "kind": "ours", "scale": scale,
                         "minutes": None if seconds is None else seconds / 60, "cite": None,
                         "Set5+": _metric(metrics, "Set5", scale, "_plus"),
                         **{s: _metric(metrics, s, scale) for s in SETS}})
    return rows


def _cell(value: float | None, width: int = 7) -> str:
    return f"{'—':>{width}}" if value is None else f"{value:{width}.2f}"


def format_results_table(rows: list[dict]) -> str:
    """A fixed-width text table of :func:`results_table` rows, one block per scale; "—" = no number."""
    width = max([len(r["method"]) for r in rows] + [10])
    header = f"{'method':<{width}}  {'Set5':>7} {'Set5+':>7} {'Set14':>7} {'BSD100':>7}  {'GPU min':>7}"
    lines = []
    for scale in sorted({r["scale"] for r in rows}):
        lines += [f"x{scale}", header, "-" * len(header)]
        for r in (r for r in rows if r["scale"] == scale):
            minutes = "" if r["minutes"] is None else f"{r['minutes']:7.1f}"
            lines.append(f"{r['method']:<{width}}  {_cell(r['Set5'])} {_cell(r['Set5+'])} {_cell(r['Set14'])} "
                         f"{_cell(r['BSD100'])}  {minutes:>7}")
        lines.append("")
    return "\n".join(lines).rstrip()
