"""``imagegen eval``: every metric of :mod:`.core` for a generator checkpoint, or for real data.

The protocol, fixed so numbers are comparable across the book:

- **reference set**: the whole *test* split (10,000 images) of the generator's data set — images
  neither the generator nor the classifier trained on;
- **samples**: ``n`` images (default 10,000, as many as the reference) from noise seeded by ``seed``,
  drawn through :func:`imagegen_lib.generators.samplers.load_sampler` — any generator kind (GAN, conditional
  GAN with balanced classes, VAE, DDPM with its sampler options, named in the result's ``sampler``);
- **feature space**: the classifier trained on the same data set (``checkpoints/classifier_mnist``
  or ``checkpoints/classifier_fashion`` unless another is passed);
- **memorisation**: in *pixel* space against the whole training split (60,000 images), for
  ``memorisation_n`` samples and as many test images — pixels need no forward pass over 60k
  images, and a copied digit is close in pixels as well as in features.

:func:`evaluate_real` scores ``n`` *training* images the same way: the floor a perfect generator
would reach (FID is not 0 there: train and test are two finite samples).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..core import data
from ..core.runtime import device_name
from .classifier import load_classifier
from .core import (FeatureExtractor, Features, class_coverage, class_histogram, class_kl, fid,
                   inception_score, kid, memorisation, precision_recall)

__all__ = ["evaluate_generator", "evaluate_real", "default_classifier_stem", "format_report"]

CLASSIFIER_STEMS = {"mnist": "classifier_mnist", "fashion-mnist": "classifier_fashion"}


def default_classifier_stem(dataset: str) -> Path:
    """``checkpoints/classifier_<dataset>``: the feature extractor shipped for ``dataset``."""
    if dataset not in CLASSIFIER_STEMS:
        raise ValueError(f"no classifier is known for dataset {dataset!r}; "
                         f"choose one of {sorted(CLASSIFIER_STEMS)}")
    from ..core import manifest  # looked up at call time: tests point CHECKPOINT_DIR at a temporary folder

    stem = manifest.CHECKPOINT_DIR / CLASSIFIER_STEMS[dataset]
    if not stem.with_suffix(".safetensors").is_file():
        raise FileNotFoundError(
            f"the {dataset} classifier the metrics need is missing: {stem}.safetensors (+ .json). "
            f"Train one with `imagegen train classifier --dataset {dataset} --out runs/clf` and pass "
            "--classifier runs/clf/classifier (classifier_stem= in Python).")
    return stem


def _extractor(dataset: str, classifier_stem, device) -> tuple[FeatureExtractor, str]:
    stem = Path(classifier_stem) if classifier_stem is not None else default_classifier_stem(dataset)
    model, meta = load_classifier(stem, device=device)
    if meta.get("dataset") != dataset:
        raise ValueError(f"classifier {stem} was trained on {meta.get('dataset')!r}, but the images are "
                         f"{dataset!r}: features of the wrong data set make every metric meaningless. "
                         f"Pass a {dataset} classifier.")
    return FeatureExtractor(model, device=device), str(stem)


def _score(extractor: FeatureExtractor, fake: torch.Tensor, real: torch.Tensor, train_pool: torch.Tensor,
           seed: int, memorisation_n: int, labels: torch.Tensor | None = None) -> dict:
    """All metrics of ``fake`` against the reference ``real``; the shared core of both entry points.

    ``labels``: the classes a conditional generator was asked for; adds ``label_accuracy``, the share
    of samples the classifier assigns to the requested class."""
    timings = {}

    def timed(name, fn, *args, **kwargs):
        t0 = time.perf_counter()
        value = fn(*args, **kwargs)
        timings[name] = round(time.perf_counter() - t0, 2)
        return value

    f_real: Features = timed("features_real", extractor, real)
    f_fake: Features = timed("features_fake", extractor, fake)
    m = min(len(f_real), len(f_fake))  # k-NN radii depend on set size: compare equal-size sets
    kid_mean, kid_std = timed("kid", kid, f_real, f_fake, subset_size=min(1000, m), seed=seed)
    is_mean, is_std = timed("inception_score", inception_score, f_fake, seed=seed)
    precision, recall = timed("precision_recall", precision_recall, f_real.features[:m], f_fake.features[:m])
    k = min(memorisation_n, len(fake), len(real))
    mem = timed("memorisation", memorisation, fake[:k], train_pool, real[:k])
    return {
        "fid": timed("fid", fid, f_real, f_fake),
        "kid_mean": kid_mean, "kid_std": kid_std,
        "is_mean": is_mean, "is_std": is_std,
        "precision": precision, "recall": recall,
        "coverage": class_coverage(f_fake), "class_kl": class_kl(f_fake),
        "class_histogram": [round(float(v), 4) for v in class_histogram(f_fake)],
        "memorisation_ratio": mem["ratio"], "memorisation_copies": mem["copies"],
        **({"label_accuracy": float((f_fake.probs.argmax(1).cpu() == labels.cpu()).float().mean())}
           if labels is not None else {}),
        "timings": timings,
    }


def evaluate_generator(gen_stem, n: int = 10_000, seed: int = 0, classifier_stem=None, device="cpu",
                       memorisation_n: int = 1000, **sampler_options) -> dict:
    """Sample ``n`` images from a generator checkpoint and score them against the test split.

    ``sampler_options`` go to the diffusion sampler (``sampler='ddim', steps=50``); the result
    names the procedure in ``sampler`` (``'ancestral1000'``, ``'ddim50'``; None for one-shot
    generators) and times the sampling on ``device`` (``sample_seconds_per_1k``).
    """
    import torch

    from ..generators.samplers import load_sampler

    t0 = time.perf_counter()
    sampler = load_sampler(gen_stem, device=device)
    key = sampler.sampler_key(**sampler_options)  # rejects options the model doesn't take, before any work
    dataset = sampler.dataset
    extractor, clf = _extractor(dataset, classifier_stem, device)
    t_sample = time.perf_counter()
    fake = sampler.sample(n, seed=seed, device=device, **sampler_options)  # returned on the CPU: synced
    sample_seconds = time.perf_counter() - t_sample
    real, _ = data.load_images(dataset, "test")
    train, _ = data.load_images(dataset, "train")
    labels = sampler.default_labels(n) if sampler.conditional else None  # what a conditional sampler draws
    result = _score(extractor, fake, real, train, seed, memorisation_n, labels)
    calls = sampler.network_calls(**sampler_options) if hasattr(sampler, "network_calls") else None
    return {"generator": str(gen_stem), "arch": sampler.arch, "kind": sampler.kind, "sampler": key,
            "default_sampler": key == getattr(sampler, "default_key", None),
            "dataset": dataset, "classifier": clf, **({"network_calls": calls} if calls is not None else {}),
            "reference": f"{dataset} test split ({len(real)} images)", "n": n, "seed": seed,
            **result, "sample_seconds": round(sample_seconds, 3),
            "sample_seconds_per_1k": round(sample_seconds / n * 1000, 4),
            "sample_device": _device_name(torch.device(device)), "n_params": sampler.n_params,
            "seconds": round(time.perf_counter() - t0, 2)}


def _device_name(device) -> str:
    return device_name(device)


def evaluate_real(dataset: str = "mnist", n: int = 10_000, seed: int = 0, classifier_stem=None, device="cpu",
                  memorisation_n: int = 1000) -> dict:
    """The floor: ``n`` random training images scored as if a generator had produced them.

    For memorisation, those ``n`` images are taken out of the training pool, so the ratio shows
    what "new real data" looks like (≈ 1) rather than a trivial 0.
    """
    t0 = time.perf_counter()
    extractor, clf = _extractor(dataset, classifier_stem, device)
    real, _ = data.load_images(dataset, "test")
    train, _ = data.load_images(dataset, "train")
    if not 2 <= n < len(train):
        raise ValueError(f"n must be between 2 and {len(train) - 1} (the training split's size), got {n}")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    fake, pool = train[order[:n]], train[order[n:]]
    result = _score(extractor, fake, real, pool, seed, memorisation_n)
    return {"generator": f"real {dataset} training images", "arch": None, "dataset": dataset, "classifier": clf,
            "reference": f"{dataset} test split ({len(real)} images)", "n": n, "seed": seed,
            **result, "seconds": round(time.perf_counter() - t0, 2)}


# (key, label, which way is better, what it measures)
_ROWS = [
    ("fid", "FID", "lower", "Fréchet distance of feature Gaussians"),
    ("kid", "KID", "lower", "unbiased kernel MMD², mean ± std over subsets"),
    ("is", "Inception Score", "higher", "exp E KL(p(y|x) || p(y)), at most 10"),
    ("precision", "precision", "higher", "share of samples on the real manifold (k=3)"),
    ("recall", "recall", "higher", "share of real images on the samples' manifold"),
    ("coverage", "class coverage", "higher", "share of classes with >= 1 % of samples"),
    ("class_kl", "class KL", "lower", "KL(class histogram || uniform), nats"),
    ("memorisation_ratio", "memorisation", "≈ 1", "nearest-train distance, samples / test images"),
]


def format_report(result: dict) -> str:
    """A plain-text table of an ``evaluate_*`` result, for the terminal."""
    sampler = f", sampler {result['sampler']}" if result.get("sampler") else ""
    lines = [f"{result['generator']}  ({result['dataset']}, n={result['n']}, seed={result['seed']}{sampler})",
             f"reference: {result['reference']}; features: {result['classifier']}", ""]
    for key, label, better, meaning in _ROWS:
        if key in ("kid", "is"):
            value = f"{result[key + '_mean']:.4f} ± {result[key + '_std']:.4f}"
        else:
            value = f"{result[key]:.4f}"
        lines.append(f"  {label:<16}{value:>20}   {better:<7}{meaning}")
    if "sample_seconds_per_1k" in result:
        lines.append(f"\n  sampling: {result['sample_seconds_per_1k']:.3g} s per 1000 images "
                     f"on {result['sample_device']}")
    lines.append(f"\n{result['seconds']:.1f} s")
    return "\n".join(lines)
