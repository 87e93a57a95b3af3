"""benchmarks/train_speed.py runs end to end on a CPU (--quick) and saves the table the book renders.

A smoke test, not a timing test: it checks that every CPU variant trains, that the numbers it
saves are consistent with each other, and that a failing variant is reported instead of ending
the run. The real numbers come from the GPU run (scripts/gpu_bench.sh).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py"


@pytest.fixture(scope="module")
def train_speed():
    spec = importlib.util.spec_from_file_location("train_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_run(train_speed, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return out, train_speed.main(["--device", "cpu", "--quick", "--threads", "1", "--out-dir", str(out)])


def test_quick_cpu_run_saves_a_consistent_table(quick_run, train_speed):
    out, result = quick_run
    saved = json.loads((out / "train_speed_cpu_quick.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(result["rows"]))
    assert [r["variant"] for r in saved["rows"]] == train_speed.CPU_VARIANTS
    for key in ("device", "torch", "date", "git_commit", "batch_size", "flops_per_image", "peak_tflops"):
        assert saved[key], key
    flops = saved["flops_per_image"]
    assert 0 < flops["frozen_d_step"] < flops["plain_step"]  # freezing D saves its weight gradients
    for row in saved["rows"]:
        assert row["error"] is None, row
        assert row["images_per_s_min"] <= row["images_per_s"] <= row["images_per_s_max"]
        assert math.isclose(row["ms_per_step"], 1e3 * saved["batch_size"] / row["images_per_s"], rel_tol=1e-9)
        assert math.isclose(row["seconds_per_epoch"], (60_000 // saved["batch_size"]) * row["ms_per_step"] / 1e3,
                            rel_tol=1e-9)
        assert math.isclose(row["model_tflops"], row["images_per_s"] * flops["frozen_d_step"] / 1e12, rel_tol=1e-9)
        assert 0 < row["fraction_of_fp32_peak"]
    tutorial = saved["rows"][0]
    assert tutorial["speedup_vs_tutorial"] == 1.0 and "DataLoader" in tutorial["notes"]
    md = (out / "train_speed_cpu_quick.md").read_text()
    assert saved["device"] in md and "| fast-eager |" in md and "GFLOP per image" in md


def test_a_failing_variant_is_reported_and_the_others_still_run(train_speed, tmp_path, monkeypatch):
    def broken(bench):
        raise RuntimeError("this variant broke")

    monkeypatch.setitem(train_speed.VARIANTS, "resident", ("broken on purpose", broken))
    result = train_speed.main(["--device", "cpu", "--quick", "--threads", "1", "--variants", "resident,fast-eager",
                               "--out-dir", str(tmp_path)])
    rows = {r["variant"]: r for r in result["rows"]}
    assert rows["resident"]["error"] == "RuntimeError: this variant broke"
    assert rows["fast-eager"]["error"] is None and rows["fast-eager"]["images_per_s"] > 0
    assert "failed: RuntimeError: this variant broke" in (tmp_path / "train_speed_cpu_quick.md").read_text()


def test_isolated_variants_run_in_their_own_processes(train_speed, tmp_path):
    """--isolate (the GPU default): each variant in a fresh process, its timings collected."""
    result = train_speed.main(["--device", "cpu", "--quick", "--threads", "1", "--isolate",
                               "--variants", "tutorial,fast-eager", "--out-dir", str(tmp_path)])
    assert [r["variant"] for r in result["rows"]] == ["tutorial", "fast-eager"]
    assert all(r["error"] is None and r["images_per_s"] > 0 for r in result["rows"])
    assert "cudnn.benchmark" in result["rows"][0]["notes"]


def test_the_kernel_trace_table_renders_from_its_saved_result(capsys):
    """benchmarks/profile_step.py needs a GPU to trace; its saved result renders anywhere."""
    spec = importlib.util.spec_from_file_location("profile_step", SCRIPT.with_name("profile_step.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    saved = SCRIPT.parent / "results" / "profile_nvidia-h100-80gb-hbm3.json"
    module.main(["--render", str(saved)])
    table = capsys.readouterr().out
    assert table == (SCRIPT.parent / "results" / "profile_nvidia-h100-80gb-hbm3.md").read_text()
    for name in module.CONFIGS:
        assert f"| {name} |" in table
