"""Every shipped checkpoint still matches its manifest entry, loads, and meets its metric."""

from __future__ import annotations

import json

import pytest
import torch

from imagegen_lib import data
from imagegen_lib.checkpoint import load_checkpoint, sha256_file
from imagegen_lib.manifest import CHECKPOINT_DIR, MAX_BYTES, read_manifest
from imagegen_lib.metrics.classifier import evaluate_accuracy, load_classifier
from imagegen_lib.train import load_generator, sample_images

MANIFEST = read_manifest()["checkpoints"]
# The accuracy each shipped classifier must reach on the full official test split (issue #3).
CLASSIFIER_FLOOR = {"mnist": 0.993, "fashion-mnist": 0.91}
GENERATORS = sorted(k for k, v in MANIFEST.items() if v["kind"] == "gan-generator")
CLASSIFIERS = sorted(k for k, v in MANIFEST.items() if v["kind"] == "classifier")


def test_manifest_lists_the_checkpoints_the_book_needs():
    assert {"dcgan_mnist", "mlpgan_mnist", "classifier_mnist", "classifier_fashion"} <= set(MANIFEST)


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
        assert history and history[-1]["step" if entry["kind"] == "gan-generator" else "epoch"] > 0


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_meets_its_accuracy(name):
    model, meta = load_classifier(CHECKPOINT_DIR / name)
    x, y = data.load_images(meta["dataset"], "test", (-1, 1))
    torch.manual_seed(0)
    accuracy = evaluate_accuracy(model, x, y)
    assert accuracy >= CLASSIFIER_FLOOR[meta["dataset"]]
    assert accuracy == pytest.approx(MANIFEST[name]["metrics"]["test_accuracy"], abs=1e-4)


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_samples_are_recognised(name):
    """The dataset's classifier recognises most samples, and all ten classes appear (no collapse)."""
    G, meta = load_generator(CHECKPOINT_DIR / name)
    clf_name = {"mnist": "classifier_mnist", "fashion-mnist": "classifier_fashion"}[meta["dataset"]]
    classifier, _ = load_classifier(CHECKPOINT_DIR / clf_name)
    x = sample_images(G, 2000, seed=0)
    assert x.shape == (2000, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    with torch.no_grad():
        probs = torch.softmax(classifier(x), dim=1)
    counts = torch.bincount(probs.argmax(1), minlength=10)
    assert (counts >= 0.02 * len(x)).all(), f"{name}: a class is (nearly) missing: {counts.tolist()}"
    assert (probs.max(1).values >= 0.9).float().mean() >= 0.6
