"""Super-resolution: the protocol (proved on the published bicubic baselines), data, models, training, CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from imagegen_lib import cli
from imagegen_lib.core import manifest
from imagegen_lib.sr import data as sr_data
from imagegen_lib.core.checkpoint import load_checkpoint
from imagegen_lib.core.data import DataCorruptedError, DataNotFoundError
from imagegen_lib.sr.imresize import imresize, imresize_uint8
from imagegen_lib.sr.metrics import (BICUBIC_BASELINES, check_image, evaluate_sr, gradient_energy, subpixel_pattern,
                                     gradient_energy_ratio, gray_levels, psnr, rgb_to_y, rgb_to_ycbcr, score_sr, ssim,
                                     ycbcr_to_rgb)
from imagegen_lib.sr.models import (SR_ARCHS, PatchDiscriminator, build_sr, count_parameters, self_ensemble,
                                    super_resolve)
from imagegen_lib.sr.data import PatchSampler, load_sr_set, make_lr, modcrop
from imagegen_lib.sr.train import SRConfig, load_sr_model, train_sr

from conftest import needs_data, require_data

# Published bicubic SSIMs (VDSR, Kim et al. 2016, Table 2), next to the PSNRs in BICUBIC_BASELINES.
BICUBIC_SSIM = {("Set5", 2): 0.9299, ("Set5", 3): 0.8682, ("Set5", 4): 0.8104,
                ("Set14", 2): 0.8688, ("Set14", 3): 0.7742, ("Set14", 4): 0.7027}
TINY_TRAIN = ["--scale", "2", "--patch", "8", "--batch-size", "4", "--downscales", "1", "--width", "8",
              "--blocks", "2", "--log-every", "2", "--device", "cpu", "--no-progress"]


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("IMAGEGEN_DEBUG", raising=False)


# ---------------------------------------------------------------------------------------------
# The protocol, and the proof that it is the papers' protocol
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("set_name,scale", sorted(BICUBIC_BASELINES))
def test_bicubic_reproduces_the_published_baseline(set_name, scale):
    result = evaluate_sr("bicubic", set_name, scale)
    assert abs(result["psnr"] - BICUBIC_BASELINES[set_name, scale]) < 0.05, result["psnr"]
    assert abs(result["ssim"] - BICUBIC_SSIM[set_name, scale]) < 0.002, result["ssim"]
    assert result["n"] == {"Set5": 5, "Set14": 14}[set_name]


def test_a_gray_image_is_scored_on_its_gray_levels():
    """Set14's bridge: the repeat-to-RGB studio-range Y shrinks errors by 219/255 (+1.32 dB)."""
    bridge = next(im for im in load_sr_set("Set14") if im.name == "bridge")
    assert bridge.gray and bridge.hr.shape[0] == 3
    hr = modcrop(bridge.hr, 3)
    sr = imresize_uint8(make_lr(hr, 3), 3)
    as_gray = score_sr(sr, hr, 3, gray=True)["psnr"]
    as_rgb = score_sr(sr, hr, 3, gray=False)["psnr"]
    assert as_rgb - as_gray == pytest.approx(20 * math.log10(255 / 219), abs=1e-9)
    assert score_sr(sr[:1], hr[:1], 3)["psnr"] == pytest.approx(as_gray)  # a 1-channel image is gray


def test_ycbcr_matches_matlab_rgb2ycbcr():
    rgb = torch.tensor([[[1.0]], [[1.0]], [[1.0]]]), torch.tensor([[[0.0]], [[0.0]], [[0.0]]])
    assert rgb_to_y(rgb[0]).item() == pytest.approx(235.0) and rgb_to_y(rgb[1]).item() == pytest.approx(16.0)
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    assert (rgb_to_ycbcr(red.double()).flatten() * 255).tolist() == pytest.approx([81.481, 90.203, 240.0])
    x = torch.rand(2, 3, 5, 4, dtype=torch.float64)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)), x)
    assert torch.allclose(gray_levels(torch.full((3, 4, 4), 0.5)), torch.full((1, 4, 4), 127.5, dtype=torch.float64))


def test_psnr_and_ssim_basics():
    a = torch.rand(40, 40, dtype=torch.float64) * 255
    assert psnr(a, a) == math.inf and ssim(a, a) == pytest.approx(1.0)
    assert psnr(a, a + 2.0) == pytest.approx(10 * math.log10(255 ** 2 / 4))
    b = a + torch.randn(40, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 10
    assert ssim(a, b) == pytest.approx(ssim(b, a)) and 0 < ssim(a, b) < 1


def test_subpixel_pattern_finds_a_grid_with_the_upsamplers_period():
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(1, 30, 33, generator=g) * 200
    dotted = hr.clone()
    dotted[..., 0::3, 2::3] -= 6  # one position of every 3x3 block darker: a grid of dots
    table = subpixel_pattern(dotted, hr, 3)
    assert table.shape == (3, 3) and table[0, 2] == pytest.approx(-6.0)
    assert table.flatten()[[0, 1, 3, 4, 5, 6, 7, 8]].abs().max() < 1e-12
    assert subpixel_pattern(hr + 2, hr, 3).allclose(torch.full((3, 3), 2.0, dtype=torch.float64))  # offset: flat
    with pytest.raises(ValueError, match="shapes differ"):
        subpixel_pattern(hr[..., :30], hr, 3)
    with pytest.raises(ValueError, match="integer scale"):
        subpixel_pattern(hr, hr, 1)


def test_gradient_energy_ratio_measures_fine_detail_against_the_truth():
    hr = load_sr_set("Set5")[2].hr.double()  # butterfly: sharp edges
    assert gradient_energy_ratio(hr, hr) == 1.0
    blurred = torch.nn.functional.avg_pool2d(hr[None], 3, stride=1, padding=1, count_include_pad=False)[0]
    noisy = hr + 10 * torch.randn(hr.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert gradient_energy_ratio(blurred, hr) < 0.7 and gradient_energy_ratio(noisy, hr) > 1.1
    assert gradient_energy_ratio(3 * hr + 7, hr) == pytest.approx(9.0)  # contrast squared; offsets don't count
    ramp = torch.arange(4.0).expand(4, 4)  # steps of 1 along x, none along y
    assert gradient_energy(ramp) == 1.0 and gradient_energy(torch.ones(4, 4)) == 0.0
    assert gradient_energy_ratio(torch.ones(4, 4), torch.zeros(4, 4)) == 1.0
    assert gradient_energy_ratio(ramp, torch.zeros(4, 4)) == math.inf
    with pytest.raises(ValueError, match="shapes differ"):
        gradient_energy_ratio(hr[:, :10], hr)
    with pytest.raises(ValueError, match="at least 2x2"):
        gradient_energy(torch.ones(1, 5))


@needs_data("Set5")
def test_bicubic_is_smoother_than_the_truth():
    result = evaluate_sr("bicubic", "Set5", 3, with_ssim=False)
    assert all(0.1 < row["grad_energy_ratio"] < 0.6 for row in result["images"])  # 0.15 (head) .. 0.44
    assert result["grad_energy_ratio"] == pytest.approx(sum(r["grad_energy_ratio"] for r in result["images"]) / 5)


@needs_data("Set5")
def test_protocol_choices_change_the_number(tmp_path):
    """The sensitivity table's point: each protocol step moves the number (bicubic, Set5 x3)."""
    runs = {"standard": [], "rgb": ["--channel", "rgb"], "no-shave": ["--no-shave"], "pil": ["--lr-resize", "pil"],
            "torch": ["--lr-resize", "torch"]}
    got = {}
    for name, extra in runs.items():
        out = tmp_path / f"{name}.json"
        assert cli.main(["eval-sr", "bicubic", "--set", "Set5", "--scale", "3", "--json", str(out), *extra]) == 0
        got[name] = json.loads(out.read_text())["results"]["single"][0]["psnr"]
    assert got["standard"] == pytest.approx(30.39, abs=0.05)
    assert got["standard"] - got["rgb"] > 1.0  # chroma errors count on RGB
    assert got["standard"] - got["torch"] > 0.3  # a = -0.75 and no antialiasing: a different LR image
    assert abs(got["standard"] - got["pil"]) < 0.05  # PIL's bicubic is the same filter inside the image...
    assert got["pil"] != got["standard"] and got["no-shave"] != got["standard"]  # ...but not at the borders


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def test_sets_load_verified_with_their_modes():
    assert [im.name for im in load_sr_set("Set5")] == ["baby", "bird", "butterfly", "head", "woman"]
    set14 = load_sr_set("Set14")
    assert [im.name for im in set14 if im.gray] == ["bridge"]
    assert all(im.hr.dtype == torch.uint8 and im.hr.shape[0] == 3 for im in set14)
    t91 = load_sr_set("T91")
    assert len(t91) == 91 and t91[0].name == "t1" and t91[1].name == "t2"


def test_missing_and_corrupted_data_say_how_to_fix_it(tmp_path):
    with pytest.raises(DataNotFoundError, match="imagegen data download sr"):
        load_sr_set("Set5", root=tmp_path)
    shutil.copytree(sr_data.find_sr_set("Set5"), tmp_path / "sr" / "Set5")
    assert len(load_sr_set("Set5", root=tmp_path)) == 5
    blob = bytearray((tmp_path / "sr" / "Set5" / "bird.png").read_bytes())
    blob[-20] ^= 0xFF
    (tmp_path / "sr" / "Set5" / "bird.png").write_bytes(bytes(blob))
    sr_data._load.cache_clear()
    with pytest.raises(DataCorruptedError, match="bird.png"):
        load_sr_set("Set5", root=tmp_path)
    with pytest.raises(ValueError, match="Set14"):
        load_sr_set("Set15")


# Downloading the sets (from a mirror on 127.0.0.1; T91 from BMP to PNG): tests/test_download.py


def test_lr_images_and_odd_sizes():
    hr = load_sr_set("Set5")[4].hr  # woman: 344 x 228
    assert tuple(hr.shape[1:]) == (344, 228)
    cropped = modcrop(hr, 3)
    assert tuple(cropped.shape[1:]) == (342, 228)
    for method in ("matlab", "pil", "torch"):
        lr = make_lr(cropped, 3, method)
        assert lr.dtype == torch.uint8 and tuple(lr.shape) == (3, 114, 76)
    with pytest.raises(ValueError, match=r"not divisible by the scale 3.*modcrop"):
        make_lr(hr, 3)
    with pytest.raises(ValueError, match="uint8"):
        make_lr(cropped.float() / 255, 3)


def _find(patch: torch.Tensor, image: torch.Tensor):
    """(y, x, symmetry) where a symmetry of ``patch`` sits in ``image`` (brute force)."""
    p = patch.shape[-1]
    for t in range(8):
        r, c = PatchSampler._symmetry(*[g[None] for g in torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")],
                                      p, torch.tensor([t]))
        for y in range(image.shape[-2] - p + 1):
            for x in range(image.shape[-1] - p + 1):
                if torch.equal(image[:, y + r[0], x + c[0]], patch):
                    return y, x, t
    return None


def test_patch_pairs_are_aligned_under_every_symmetry():
    gen = torch.Generator().manual_seed(0)
    hr = torch.randint(0, 256, (3, 36, 30), dtype=torch.uint8, generator=gen)
    sampler = PatchSampler([hr], scale=3, patch=4)
    lr_img = imresize_uint8(hr, 1 / 3)
    lr, hr_p = sampler.sample(24, torch.Generator().manual_seed(1))
    assert lr.shape == (24, 3, 4, 4) and hr_p.shape == (24, 3, 12, 12)
    seen = set()
    for i in range(24):
        y, x, t = _find((lr[i] * 255).round().to(torch.uint8), lr_img)
        r, c = PatchSampler._symmetry(*[g[None] for g in torch.meshgrid(torch.arange(12), torch.arange(12), indexing="ij")],
                                      12, torch.tensor([t]))
        assert torch.equal((hr_p[i] * 255).round().to(torch.uint8), hr[:, 3 * y + r[0], 3 * x + c[0]])
        seen.add(t)
    assert len(seen) >= 6  # the symmetries are all drawn


def test_sampler_skips_or_rejects_images_smaller_than_the_patch():
    big = torch.zeros(3, 60, 60, dtype=torch.uint8)
    small = torch.zeros(3, 20, 20, dtype=torch.uint8)
    sampler = PatchSampler([big, small], scale=3, patch=12, downscales=(1.0, 0.6))
    assert sampler.n_pairs == 2 and len(sampler.skipped) == 2  # small at both sizes
    with pytest.raises(ValueError, match="smaller than the patch.*--patch"):
        PatchSampler([small], scale=3, patch=12)
    with pytest.raises(ValueError, match="uint8"):
        PatchSampler([big.float()], scale=3, patch=12)
    y_lr, y_hr = PatchSampler([torch.full((3, 30, 30), 255, dtype=torch.uint8)], 3, 4, color="y").sample(2)
    assert y_lr.shape == (2, 1, 4, 4) and torch.allclose(y_hr, torch.full_like(y_hr, 235 / 255))


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", sorted(SR_ARCHS))
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_is_scale_times_the_input(arch, scale):
    for color in ("y", "rgb"):
        model = build_sr(arch, scale, color=color, **({"blocks": 2, "width": 8} if arch == "resnet" else {}))
        c = 1 if color == "y" else 3
        assert model(torch.rand(2, c, 7, 10)).shape == (2, c, 7 * scale, 10 * scale)
        assert super_resolve(model, torch.rand(1, 3, 5, 6)).shape == (1, 3, 5 * scale, 6 * scale)


def test_untrained_resnet_is_exactly_bicubic_and_self_ensemble_inverts_its_transforms():
    model = build_sr("resnet", 3, blocks=2, width=8)
    x = torch.rand(1, 3, 9, 11)
    assert torch.equal(model(x), imresize(x, 3))
    assert torch.allclose(self_ensemble(model, x), model(x), atol=1e-6)  # bicubic is flip/rotation-equivariant


def test_patch_discriminator_gives_one_logit_per_8x8_pixels():
    D = PatchDiscriminator(channels=1, width=8)
    assert D(torch.rand(2, 1, 96, 64)).shape == (2, 1, 12, 8)
    assert any(k.endswith("_u") for k in D.state_dict())  # spectral norm's power-iteration state is saved
    with pytest.raises(ValueError, match="at least 8x8"):
        D(torch.rand(2, 1, 4, 4))


def test_checkpoint_budget_and_unknown_names():
    assert max(count_parameters(build_sr("resnet", s)) for s in (2, 3, 4)) * 4 < manifest.MAX_BYTES
    with pytest.raises(ValueError, match=r"\['espcn', 'resnet', 'srcnn'\]"):
        build_sr("vdsr", 3)
    with pytest.raises(ValueError, match="super_resolve"):
        build_sr("espcn", 3)(torch.rand(1, 3, 8, 8))  # a luma model given RGB
    with pytest.raises(ValueError, match="scale"):
        build_sr("espcn", 1)


def test_bad_images_for_scoring_are_explained():
    hr = torch.randint(0, 256, (3, 30, 30), dtype=torch.uint8)
    with pytest.raises(ValueError, match="0..255 image stored as float"):
        score_sr(hr.float(), hr, 3)
    with pytest.raises(ValueError, match=r"tanh output"):
        score_sr(hr.float() / 127.5 - 1, hr, 3)
    with pytest.raises(ValueError, match="grayscale image compared with an RGB"):
        score_sr(hr[:1], hr, 3)
    with pytest.raises(ValueError, match="multiple of the scale"):
        score_sr(hr[:, :27, :27], hr, 3)
    with pytest.raises(ValueError, match="channels come first"):
        check_image(torch.rand(30, 30, 3))


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

def test_a_few_steps_lower_the_loss():
    images = [im.hr for im in load_sr_set("Set5")]
    config = SRConfig(arch="espcn", scale=2, patch=10, batch_size=16, steps=60, lr=3e-3, downscales=(1.0,), ema=0,
                      log_every=10)
    result = train_sr(config, progress=False, device="cpu", train_images=images)
    losses = [row["loss"] for row in result.history if "loss" in row]
    assert losses[-1] < 0.6 * losses[0]
    assert result.final_psnr > 20  # from random weights: ESPCN has no bicubic skip to lean on


def test_config_is_checked():
    with pytest.raises(ValueError, match="--steps N.*--minutes M"):
        SRConfig(arch="espcn")
    with pytest.raises(ValueError, match="unknown super-resolution architecture"):
        SRConfig(arch="edsr", steps=1)
    with pytest.raises(ValueError, match="scale must be 2, 3 or 4"):
        SRConfig(arch="espcn", scale=5, steps=1)
    for bad in ({"adv_weight": -1e-3}, {"adv_weight": math.nan}, {"d_lr": 0.0}):
        with pytest.raises(ValueError, match="adv_weight >= 0"):
            SRConfig(arch="resnet", steps=1, **bad)
    assert SRConfig(arch="srcnn", steps=1).color == "y" and SRConfig(arch="resnet", steps=1).global_skip


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> Path:
    """A tiny residual net trained by the real CLI: 6 steps on T91 at x2."""
    require_data("T91")
    require_data("Set5")  # scored at the end of the run
    out = tmp_path_factory.mktemp("sr") / "run"
    assert cli.main(["train", "sr", "--arch", "resnet", "--out", str(out), "--steps", "6", *TINY_TRAIN]) == 0
    return out


def test_train_sr_writes_a_shippable_run(cli_run, tmp_path, capsys):
    for name in ("last.safetensors", "last.json", "model.safetensors", "model.json"):
        assert (cli_run / name).is_file(), name
    meta = json.loads((cli_run / "model.json").read_text())
    assert meta["kind"] == "sr-model" and meta["arch"] == "resnet" and meta["scale"] == 2 and meta["step"] == 6
    assert meta["command"].startswith("imagegen train sr --arch resnet")
    assert meta["weights"] == "ema" and meta["set5_psnr_y"] > 30
    model, _ = load_sr_model(cli_run / "model.safetensors")
    assert model(torch.rand(1, 3, 6, 6)).shape == (1, 3, 12, 12)
    entry = manifest.ship(cli_run / "model", "sr_tiny", directory=tmp_path)
    assert entry["arch"] == "resnet" and entry["step"] == 6 and entry["history_file"] == "sr_tiny.history.json"


def test_resume_continues_exactly(cli_run, tmp_path):
    run = tmp_path / "run"
    args = ["train", "sr", "--arch", "resnet", "--out", str(run), "--steps", "6", *TINY_TRAIN]
    assert cli.main([*args, "--max-steps", "3"]) == 0
    assert json.loads((run / "last.json").read_text())["step"] == 3
    assert cli.main([*args, "--resume"]) == 0
    whole, whole_meta = load_checkpoint(cli_run / "last")
    resumed, resumed_meta = load_checkpoint(run / "last")
    assert resumed_meta["step"] == 6
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in whole_meta["history"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in resumed_meta["history"]]


def test_train_sr_refusals(cli_run, capsys):
    base = ["train", "sr", "--arch", "resnet", "--out", str(cli_run), *TINY_TRAIN]
    assert cli.main(base) == 2
    assert "--steps N and/or --minutes M" in capsys.readouterr().err
    assert cli.main([*base, "--steps", "6"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli.main([*base, "--steps", "6", "--resume", "--lr", "0.1"]) == 2
    assert "lr=0.1 (run has 0.0005)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "sr", "--arch", "vdsr", "--out", "x", "--steps", "1"])
    assert e.value.code == 2
    assert "invalid choice: 'vdsr'" in capsys.readouterr().err


ADV_TRAIN = ["--adv-weight", "0.01", "--d-lr", "2e-4"]


@pytest.fixture(scope="module")
def adv_run(cli_run, tmp_path_factory) -> Path:
    """The tiny net of ``cli_run`` fine-tuned for 6 steps with an adversarial term (the book's plan)."""
    out = tmp_path_factory.mktemp("sr_adv") / "run"
    assert cli.main(["train", "sr", "--arch", "resnet", "--out", str(out), "--steps", "6", *TINY_TRAIN, *ADV_TRAIN,
                     "--init-from", str(cli_run / "model.safetensors")]) == 0
    return out


def test_adversarial_run_saves_its_discriminator_and_exports_the_sr_net_alone(adv_run, cli_run):
    tensors, meta = load_checkpoint(adv_run / "last")
    assert any(k.startswith("disc.") for k in tensors) and any(k.startswith("opt_d.") for k in tensors)
    assert meta["config"]["adv_weight"] == 0.01 and meta["config"]["d_lr"] == 2e-4
    losses = [r for r in meta["history"] if "loss" in r]
    assert len(losses) == 3 and all(0 < r["g_adv"] and 0 < r["d_loss"] for r in losses)
    model, model_meta = load_sr_model(adv_run / "model.safetensors")
    assert model_meta["init_from"]["kept_fresh"] == [] and model_meta["discriminator_parameters"] > 0
    assert model_meta["config"]["adv_weight"] == 0.01
    assert model(torch.rand(1, 3, 6, 6)).shape == (1, 3, 12, 12)
    plain, plain_meta = load_checkpoint(cli_run / "last")  # adv_weight 0: no discriminator at all
    assert not any(k.startswith(("disc.", "opt_d.")) for k in plain) and "g_adv" not in plain_meta["history"][0]


def test_adversarial_resume_continues_exactly(adv_run, cli_run, tmp_path):
    run = tmp_path / "run"
    args = ["train", "sr", "--arch", "resnet", "--out", str(run), "--steps", "6", *TINY_TRAIN, *ADV_TRAIN,
            "--init-from", str(cli_run / "model.safetensors")]
    assert cli.main([*args, "--max-steps", "3"]) == 0
    assert cli.main([*args, "--resume"]) == 0
    whole, whole_meta = load_checkpoint(adv_run / "last")
    resumed, resumed_meta = load_checkpoint(run / "last")
    assert resumed_meta["step"] == 6 and set(whole) == set(resumed)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)  # D, its Adam and its _u/_v included
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in whole_meta["history"]]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in resumed_meta["history"]]


def test_adversarial_refusals(adv_run, capsys):
    base = ["train", "sr", "--arch", "resnet", "--out", str(adv_run), "--steps", "6", *TINY_TRAIN]
    with pytest.raises(SystemExit) as e:
        cli.main([*base, "--adv-weight", "-0.01"])
    assert e.value.code == 2 and "--adv-weight: must be >= 0, got -0.01" in capsys.readouterr().err
    assert cli.main([*base, "--resume", "--adv-weight", "0.02", "--d-lr", "2e-4"]) == 2
    assert "adv_weight=0.02 (run has 0.01)" in capsys.readouterr().err


def test_fine_tuning_another_scale_keeps_the_body(cli_run, tmp_path):
    out = tmp_path / "x3"
    assert cli.main(["train", "sr", "--arch", "resnet", "--out", str(out), "--steps", "1", *TINY_TRAIN[2:],
                     "--scale", "3", "--init-from", str(cli_run / "model.safetensors")]) == 0
    info = json.loads((out / "model.json").read_text())["init_from"]
    assert info["kept_fresh"] == ["upsample.0.bias", "upsample.0.weight"] and info["loaded"] > 10


# ---------------------------------------------------------------------------------------------
# eval-sr
# ---------------------------------------------------------------------------------------------

@needs_data("Set5")
def test_eval_sr_bicubic_prints_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bicubic.json"
    assert cli.main(["eval-sr", "bicubic", "--set", "Set5", "--scale", "4", "--json", str(out), "--verbose"]) == 0
    text = capsys.readouterr().out
    assert "Set5    x4  Y-PSNR  28.43 dB  SSIM 0.8111  grad-energy 0." in text and "butterfly" in text
    report = json.loads(out.read_text())
    (result,) = report["results"]["single"]
    assert result["psnr"] == pytest.approx(28.42, abs=0.05) and len(result["images"]) == 5
    assert 0 < result["grad_energy_ratio"] < 1 and "grad_energy_ratio" in result["images"][0]
    assert report["protocol"] == {"channel": "y", "shave_border": True, "lr_resize": "matlab"}


def test_eval_sr_checkpoint_with_self_ensemble_and_manifest(cli_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(manifest, "CHECKPOINT_DIR", tmp_path)
    manifest.ship(cli_run / "model", "sr_tiny", directory=tmp_path)
    assert cli.main(["eval-sr", str(tmp_path / "sr_tiny.safetensors"), "--set", "Set5", "--self-ensemble",
                     "--manifest", "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("resnet x2: Set5") and lines[1].startswith("resnet x2 + self-ensemble x8: Set5")
    metrics = manifest.read_manifest(tmp_path)["checkpoints"]["sr_tiny"]["metrics"]
    assert {"set5_x2_psnr_y", "set5_x2_ssim_y", "set5_x2_psnr_y_plus", "set5_x2_ssim_y_plus"} <= set(metrics)
    assert cli.main(["eval-sr", "bicubic", "--set", "Set5", "--scale", "2", "--manifest"]) == 0
    assert manifest.read_manifest(tmp_path)["floors"]["sr-bicubic-x2"]["set5_x2_psnr_y"] == pytest.approx(33.67, abs=0.01)


def test_eval_sr_refusals(cli_run, tmp_path, capsys):
    assert cli.main(["eval-sr", "bicubic", "--set", "Set5"]) == 2
    assert "needs --scale" in capsys.readouterr().err
    assert cli.main(["eval-sr", str(cli_run / "model.safetensors"), "--scale", "3"]) == 2
    assert "x2 model; --scale 3" in capsys.readouterr().err
    assert cli.main(["eval-sr", str(cli_run / "model.safetensors"), "--manifest"]) == 2
    assert "Ship it first" in capsys.readouterr().err
    assert cli.main(["eval-sr", str(cli_run / "last.safetensors")]) == 2
    assert "'sr-train-state' checkpoint, but a 'sr-model'" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(cli_run, broken)
    (broken / "model.safetensors").write_bytes(b"garbage")
    assert cli.main(["eval-sr", str(broken)]) == 2
    assert "imagegen: error:" in capsys.readouterr().err


@needs_data("Set5", "Set14", "BSD100", "T91")
def test_data_check_sr(capsys):
    assert cli.main(["data", "check", "sr"]) == 0
    out = capsys.readouterr().out
    for line in ("Set5: OK (5 images", "Set14: OK (14 images", "BSD100: OK (100 images", "T91: OK (91 images"):
        assert line in out
