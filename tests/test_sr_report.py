"""Exercise B's results table: published numbers as data, and the table built from a manifest."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from imagegen_lib.sr.metrics import BICUBIC_BASELINES, score_sr
from imagegen_lib.sr.published import PUBLISHED, published_psnr
from imagegen_lib.sr.report import format_results_table, results_table

BIB = (Path(__file__).resolve().parents[1] / "book" / "references.bib").read_text(encoding="utf-8")


def test_every_published_number_has_a_citation_and_a_sane_value():
    keys = set(re.findall(r"@\w+\{([^,]+),", BIB))
    for method, entry in PUBLISHED.items():
        assert entry["cite"] in keys, f"{method}: {entry['cite']} is not in book/references.bib"
        for (set_name, scale), value in entry["psnr"].items():
            assert set_name in ("Set5", "Set14", "BSD100") and scale in (2, 3, 4)
            assert 20 < value < 45
            bicubic = BICUBIC_BASELINES.get((set_name, scale))
            if method != "bicubic" and bicubic is not None:
                assert value > bicubic, f"{method} {set_name} x{scale} below bicubic: a typo?"


def test_published_psnr_lookup():
    assert published_psnr("vdsr", "Set5", 3) == 33.66
    assert published_psnr("edsr", "Set5", 3) is None  # not verified: shown as a dash
    with pytest.raises(ValueError, match="unknown method"):
        published_psnr("srgan", "Set5", 4)


def _fake_manifest():
    return {
        "checkpoints": {
            "sr_espcn_x3": {"kind": "sr-model", "arch": "espcn", "train_seconds": 120.0,
                            "config": {"scale": 3, "global_skip": False},
                            "metrics": {"set5_x3_psnr_y": 32.5, "set5_x3_psnr_y_plus": 32.6}},
            "sr_srcnn_x3": {"kind": "sr-model", "arch": "srcnn", "train_seconds": 60.0,
                            "config": {"scale": 3, "global_skip": True}, "metrics": {"set14_x3_psnr_y": 29.0}},
            "sr_resnet_adv_x3": {"kind": "sr-model", "arch": "resnet", "train_seconds": 60.0,
                                 "config": {"scale": 3, "adv_weight": 0.05}, "metrics": {"set5_x3_psnr_y": 32.5}},
            "dcgan_mnist": {"kind": "gan-generator", "metrics": {"fid": 2.0}},
        },
        "floors": {"sr-bicubic-x3": {"set5_x3_psnr_y": 30.4, "bsd100_x3_psnr_y": 27.2}},
    }


def test_results_table_reads_the_manifest_and_leaves_gaps_empty():
    rows = results_table(_fake_manifest(), scales=(3,))
    floor = next(r for r in rows if r["kind"] == "floor")
    assert floor["Set5"] == 30.4 and floor["BSD100"] == 27.2 and floor["Set14"] is None
    ours = [r for r in rows if r["kind"] == "ours"]
    # oldest first; the adversarial fine-tune is not trained for PSNR and stays out
    assert [r["method"] for r in ours] == ["SRCNN + bicubic skip (sr_srcnn_x3)", "ESPCN (sr_espcn_x3)"]
    assert ours[1]["Set5"] == 32.5 and ours[1]["Set5+"] == 32.6 and ours[1]["minutes"] == 2.0
    assert ours[0]["Set5"] is None and ours[0]["Set14"] == 29.0
    vdsr = next(r for r in rows if r["method"] == "VDSR")
    assert vdsr["Set5"] == 33.66 and vdsr["cite"] == "kim2016vdsr"
    text = format_results_table(rows)
    assert text.startswith("x3") and "32.50" in text and "—" in text and "dcgan" not in text


def test_results_table_refuses_something_that_is_not_a_manifest():
    with pytest.raises(ValueError, match="MANIFEST.json"):
        results_table({"sr_resnet_x3": {}})


def test_results_table_of_the_shipped_manifest_puts_every_x3_model_above_bicubic():
    rows = results_table(scales=(3,))
    floor = next(r for r in rows if r["kind"] == "floor")["Set5"]
    ours = [r for r in rows if r["kind"] == "ours"]
    assert ours and all(r["Set5"] is not None and r["Set5"] > floor for r in ours)


def test_psnr_without_ssim_is_the_same_psnr():
    torch.manual_seed(0)
    hr = torch.randint(0, 256, (3, 24, 24), dtype=torch.uint8)
    sr = (hr.int() + torch.randint(-3, 4, hr.shape)).clamp(0, 255).to(torch.uint8)
    full, fast = score_sr(sr, hr, 3), score_sr(sr, hr, 3, with_ssim=False)
    assert fast["psnr"] == full["psnr"] and math.isnan(fast["ssim"]) and 0 < full["ssim"] < 1
