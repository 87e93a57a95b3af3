"""Every shipped checkpoint still matches its manifest entry, loads, and meets its metric."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from imagegen_lib.core import data
from imagegen_lib.core.checkpoint import load_checkpoint, sha256_file
from imagegen_lib.core.manifest import CHECKPOINT_DIR, MAX_BYTES, read_manifest
from imagegen_lib.metrics.classifier import evaluate_accuracy, load_classifier
from imagegen_lib.metrics.evaluate import CLASSIFIER_STEMS
from imagegen_lib.gan.train import load_generator, sample_images

MANIFEST = read_manifest()["checkpoints"]
# The accuracy each shipped classifier must reach on the full official test split (issue #3).
CLASSIFIER_FLOOR = {"mnist": 0.993, "fashion-mnist": 0.91}
GENERATORS = sorted(k for k, v in MANIFEST.items() if v["kind"] == "gan-generator")
CLASSIFIERS = sorted(k for k, v in MANIFEST.items() if v["kind"] == "classifier")


def test_manifest_lists_the_checkpoints_the_book_needs():
    assert {"dcgan_mnist", "mlpgan_mnist", "cgan_mnist", "vae_mnist", "ddpm_mnist", "classifier_mnist",
            "classifier_fashion"} <= set(MANIFEST)
    assert {f"q6_{m}_mnist" for m in ("eps", "x0", "v", "eps_cosine", "cfg", "flow")} <= set(MANIFEST)  # Q6
    assert set(SR_MODELS) <= set(MANIFEST)  # Exercise B's table and figures


# Exercise B's super-resolution models (imagegen eval-sr --manifest recorded their metrics).
SR_MODELS = ["sr_resnet_x2", "sr_resnet_x3", "sr_resnet_adv_x3", "sr_resnet_x4", "sr_srcnn_x3", "sr_srcnn_skip_x3",
             "sr_espcn_x3",
             "sr_espcn_skip_x3"]


@pytest.mark.parametrize("name", SR_MODELS)
def test_sr_model_reproduces_its_set5_psnr_and_beats_bicubic(name):
    """Set5 Y-PSNR recomputed on the CPU = the manifest's (0.01 dB), and above the bicubic floor."""
    from imagegen_lib.core.manifest import read_manifest as read
    from imagegen_lib.sr.train import evaluate_model, load_sr_model

    torch.set_num_threads(1)
    model, meta = load_sr_model(CHECKPOINT_DIR / name)
    scale = int(meta["scale"])
    key = f"set5_x{scale}_psnr_y"
    recorded = MANIFEST[name].get("metrics", {}).get(key)
    assert recorded is not None, f"{name}: no {key} in the manifest; run imagegen eval-sr {name} --set Set5 --manifest"
    psnr = evaluate_model(model, "Set5", with_ssim=False)["psnr"]
    assert psnr == pytest.approx(recorded, abs=0.01)
    assert psnr > read()["floors"][f"sr-bicubic-x{scale}"][key]


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_entry_matches_files(name):
    entry = MANIFEST[name]
    weights = CHECKPOINT_DIR / entry["file"]
    assert weights.stat().st_size == entry["bytes"] <= MAX_BYTES
    assert sha256_file(weights) == entry["sha256"]
    for key in ("command", "seed", "git_commit", "device", "train_seconds"):
        assert entry.get(key) not in (None, ""), f"{name}: manifest lacks {key}"
    assert entry["command"].startswith("imagegen train ")
    _, meta = load_checkpoint(CHECKPOINT_DIR / name)  # checks the pair is whole
    assert meta["kind"] == entry["kind"]
    if entry.get("history_file"):
        history = json.loads((CHECKPOINT_DIR / entry["history_file"]).read_text())
        last = history[-1] if history else {}
        assert last.get("step", last.get("epoch", 0)) > 0  # GANs and SR models count steps, classifiers epochs


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_meets_its_accuracy(name, test_split_features):
    """Accuracy on the whole test split = the manifest's (and above the floor).

    The predictions are the argmax of the class probabilities of the session's cached test-split
    features (``FeatureExtractor``: the same weights, eval mode, so the same argmax as the logits),
    computed once for this test, the FID checks below and ``imagegen eval``; ``evaluate_accuracy``,
    the function that recorded the number, must agree with them on the first 1000 images.
    """
    model, meta = load_classifier(CHECKPOINT_DIR / name)
    assert CLASSIFIER_STEMS[meta["dataset"]] == name  # the classifier test_split_features extracts with
    x, y = data.load_images(meta["dataset"], "test", (-1, 1))
    _, f_real = test_split_features(meta["dataset"])
    predicted = f_real.probs.argmax(1)
    accuracy = float((predicted == y).float().mean())
    assert accuracy >= CLASSIFIER_FLOOR[meta["dataset"]]
    assert accuracy == pytest.approx(MANIFEST[name]["metrics"]["test_accuracy"], abs=1e-4)
    head = evaluate_accuracy(model, x[:1000], y[:1000])
    assert head == pytest.approx(float((predicted[:1000] == y[:1000]).float().mean()), abs=1e-3)


# The GANs' metric checks. Sampling 10,000 images from a width-64 DCGAN takes ~60 s of one core,
# and each re-check of a manifest FID needs it; so the full protocol (imagegen eval's n=10000 and
# seed, against the whole test split) is re-run for ONE generator, FULL_FID, and every generator
# is pinned by a fast fingerprint instead:
#
# - FULL_FID = mlpgan_mnist, the cheapest to sample. What the full-n check adds over the
#   fingerprint is the protocol itself (n, seed and batching of sample_images, the test split,
#   the feature extractor, the Fréchet distance), and that is the same code for every generator;
#   what is specific to each one (its architecture's forward pass on its weights) is what the
#   fingerprint pins, for all of them.
# - FAST_FID[name] = FID of sample_images(G, 2000, seed=0) against the whole test split's
#   features: the samples the recognition test looks at anyway. It was recorded with the library
#   of commit 6fb3d70, whose full-n FIDs reproduced every manifest value (to 4e-14 for those measured on a
#   CPU, 2e-4 for cgan_mnist, sampled on a GPU), and it is keyed by the weights' sha256: a
#   checkpoint shipped anew fails here until its fingerprint is recorded again. Same weights, noise
#   and features give it up to float summation order (it moved by 1e-7 under the generic-1t
#   numerics of scripts/numerics_spread.py), so it is compared at rel=1e-4: other noise (seeds 1-3
#   instead of 0) moved the MLP GAN's by ~5 %, and so would any change to the network's output.
#
# IMAGEGEN_FULL_FID=1 re-runs the full-n check for every generator (do that when recording a
# fingerprint; the failure message of a stale one prints the new value).
FULL_FID = GENERATORS if os.environ.get("IMAGEGEN_FULL_FID") == "1" else ["mlpgan_mnist"]
FAST_FID_N, FAST_FID_SEED = 2000, 0
FAST_FID = {  # name: (sha256 of the weights, FID at FAST_FID_N samples)
    "cgan_mnist": ("72a8a65e5118d9a95abc20af57a2771c748d5d2d99fbac6199ac435ddef642a4", 0.6358766831540663),
    "dcgan_fashion": ("9b3bf05e90fc30725b8943b5021587745800554f8577ca4dc3fa95ab15e1e999", 3.63562086263687),
    "dcgan_mnist": ("c29d6a077d1484e07406e2c006060975f3f593bf021335402a1bf5d776acc446", 2.393263941260159),
    "mlpgan_mnist": ("0f0e6a4305fc942b3d18536bc7771529cee8e676dff52c0a0d6f4803bd6ffc06", 13.299495097074185),
}


@pytest.fixture(scope="module")
def gan_samples(test_split_features):
    """``get(name) -> (images, Features)``: FAST_FID_N samples of a shipped GAN (seed FAST_FID_SEED), made once."""
    cache = {}

    def get(name):
        if name not in cache:
            G, meta = load_generator(CHECKPOINT_DIR / name)
            extractor, _ = test_split_features(meta["dataset"])
            x = sample_images(G, FAST_FID_N, seed=FAST_FID_SEED)
            cache[name] = (x, extractor(x))
        return cache[name]

    return get


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_samples_are_recognised(name, gan_samples):
    """The dataset's classifier recognises most samples, and all ten classes appear (no collapse)."""
    x, f = gan_samples(name)  # f.probs: the classifier's softmax, as the data set's classifier gives it
    assert x.shape == (FAST_FID_N, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    counts = torch.bincount(f.probs.argmax(1), minlength=10)
    assert (counts >= 0.02 * len(x)).all(), f"{name}: a class is (nearly) missing: {counts.tolist()}"
    assert (f.probs.max(1).values >= 0.9).float().mean() >= 0.6


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_reproduces_its_fast_fid_fingerprint(name, gan_samples, test_split_features):
    """FID of FAST_FID_N samples = the fingerprint recorded for these weights (see FAST_FID above)."""
    from imagegen_lib.metrics import fid

    assert name in FAST_FID, f"{name}: no fast FID fingerprint; record one (see FAST_FID in this file)"
    sha, recorded = FAST_FID[name]
    x, f_fake = gan_samples(name)
    value = fid(test_split_features(MANIFEST[name]["dataset"])[1], f_fake)
    assert MANIFEST[name]["sha256"] == sha, (
        f"{name}: the fingerprint was recorded for other weights; check the full FID "
        f"(IMAGEGEN_FULL_FID=1) and record ({MANIFEST[name]['sha256']!r}, {value!r})")
    assert value == pytest.approx(recorded, rel=1e-4), f"{name}: FID at n={FAST_FID_N} is {value!r}"


@pytest.mark.parametrize("name", FULL_FID)
def test_generator_reproduces_its_manifest_fid(name, test_split_features):
    """Re-sample with the manifest's n and seed: FID must match what `imagegen eval --manifest` recorded.

    Same weights, noise and features give the same number up to float summation order; 2 %
    relative is far below the gaps the book discusses (floor 0.2, DCGAN 2.1, MLP GAN 12.8).
    """
    from imagegen_lib.metrics import fid

    metrics = MANIFEST[name].get("metrics", {})
    assert "fid" in metrics, f"{name}: run `imagegen eval checkpoints/{name}.safetensors --manifest`"
    G, meta = load_generator(CHECKPOINT_DIR / name)
    extractor, f_real = test_split_features(meta["dataset"])
    fake = sample_images(G, metrics["eval_n"], seed=metrics["eval_seed"])
    assert fid(f_real, extractor(fake)) == pytest.approx(metrics["fid"], rel=0.02)


def test_floors_are_recorded_and_below_every_generator():
    floors = read_manifest().get("floors", {})
    for name in GENERATORS:
        dataset = MANIFEST[name]["dataset"]
        assert dataset in floors, f"run `imagegen eval real --dataset {dataset} --manifest`"
        assert floors[dataset]["fid"] < MANIFEST[name]["metrics"]["fid"]


# ---------------------------------------------------------------------------------------------
# Q5's generators: the conditional GAN, the VAE, the DDPM (they run once shipped: imagegen ship + eval)
# ---------------------------------------------------------------------------------------------

def _shipped(kind: str, arch: str | None = None) -> list:
    """Manifest entries of one kind, or a single skipped case that says how to ship one."""
    names = sorted(k for k, v in MANIFEST.items() if v["kind"] == kind and (arch is None or v.get("arch") == arch))
    what = arch or kind
    return names or [pytest.param(None, marks=pytest.mark.skip(
        reason=f"no shipped {what} checkpoint in the manifest yet (scripts/gpu_train_q5.sh, then imagegen ship)"))]


@pytest.mark.parametrize("name", _shipped("gan-generator", "cgan"))
def test_cgan_draws_the_class_it_is_asked_for(name, gan_samples):
    """Samples asked for class k are classified as k: at least 90 % overall, 80 % for every class.

    sample_images asks a conditional G for classes 0, 1, ..., 9, 0, ... (balanced_labels), so the
    recognition test's samples serve here; the sampler interface (the book's, imagegen eval's)
    asked for those labels draws the same images.
    """
    from imagegen_lib.gan.conditional import balanced_labels
    from imagegen_lib.generators.samplers import load_sampler

    x, f = gan_samples(name)
    labels = balanced_labels(len(x))
    sampler = load_sampler(CHECKPOINT_DIR / name)
    assert torch.allclose(sampler.sample(20, seed=FAST_FID_SEED, labels=labels[:20]), x[:20], atol=1e-5)
    hits = f.probs.argmax(1) == labels
    per_class = [round(float(hits[labels == k].float().mean()), 3) for k in range(10)]
    assert float(hits.float().mean()) >= 0.9, f"{name}: class accuracy per class {per_class}"
    assert min(per_class) >= 0.8, f"{name}: a class is drawn poorly: {per_class}"


@pytest.mark.parametrize("name", _shipped("vae"))
def test_vae_reproduces_its_manifest_fid_and_covers_the_classes(name, test_split_features):
    from imagegen_lib.generators.samplers import load_sampler
    from imagegen_lib.metrics import class_coverage, fid

    metrics = MANIFEST[name].get("metrics", {})
    assert "fid" in metrics, f"{name}: run `imagegen eval checkpoints/{name}.safetensors --manifest`"
    sampler = load_sampler(CHECKPOINT_DIR / name)
    extractor, f_real = test_split_features(sampler.dataset)
    f_fake = extractor(sampler.sample(metrics["eval_n"], seed=metrics["eval_seed"]))
    assert fid(f_real, f_fake) == pytest.approx(metrics["fid"], rel=0.02)
    assert class_coverage(f_fake) == 1.0


DIFFUSION_MODELS = _shipped("ddpm") + _shipped("flow")


@pytest.mark.parametrize("name", DIFFUSION_MODELS)
def test_diffusion_samples_cover_every_class(name):
    """Every full evaluation recorded (ancestral, DDIM, ODE solvers, guidance scales) found all ten classes,
    except the guidance scale 0 of a class-conditional model, which ignores the class by design."""
    samplers = MANIFEST[name].get("metrics", {}).get("samplers", {})
    full = {k: v for k, v in samplers.items() if v.get("eval_n") == 10_000}
    assert full, f"{name}: no n=10000 evaluation recorded; run imagegen eval checkpoints/{name}.safetensors --manifest"
    collapsed = {k: v["coverage"] for k, v in full.items() if v["coverage"] != 1.0}
    # measured: Heun with 3 steps on the DDPM's discrete schedule (5 network calls) collapses to one class
    assert set(collapsed) <= {"heun3"}, collapsed
    assert all(math.isfinite(v["fid"]) for v in full.values())


def _cpu_check(name: str) -> dict:
    from imagegen_lib.generators.samplers import CPU_CHECK, FLOW_CPU_CHECK

    return FLOW_CPU_CHECK if MANIFEST[name]["kind"] == "flow" else CPU_CHECK


@pytest.mark.parametrize("name", DIFFUSION_MODELS)
def test_diffusion_cpu_check_reproduces(name, test_split_features):
    """The CPU-feasible check (few steps, small n, recorded on a CPU) recomputes here."""
    from imagegen_lib.cli.eval import FULL_N
    from imagegen_lib.generators.samplers import load_sampler
    from imagegen_lib.metrics import class_coverage, fid

    check = _cpu_check(name)
    key = f"{check['sampler']}{check['steps']}" + ("" if check["n"] == FULL_N else f"_n{check['n']}")
    recorded = MANIFEST[name].get("metrics", {}).get("samplers", {}).get(key)
    assert recorded, (f"{name}: run `imagegen eval checkpoints/{name}.safetensors --sampler {check['sampler']} "
                      f"--steps {check['steps']} --n {check['n']} --device cpu --manifest`")
    assert str(recorded["sample_device"]).startswith("cpu"), "the check must be recorded on a CPU to recompute here"
    sampler = load_sampler(CHECKPOINT_DIR / name)
    extractor, f_real = test_split_features(sampler.dataset)
    x = sampler.sample(check["n"], seed=recorded["eval_seed"], sampler=check["sampler"], steps=check["steps"])
    f_fake = extractor(x)
    assert fid(f_real, f_fake) == pytest.approx(recorded["fid"], rel=0.02)  # the same computation...
    assert class_coverage(f_fake) == recorded["coverage"] == 1.0  # ...and a DDPM that draws every digit
