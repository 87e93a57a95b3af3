"""Tests of imagegen_lib.metrics: closed forms, torchmetrics cross-checks, and sanity on real data.

Unit tests use synthetic features and run anywhere. Tests marked ``data`` need MNIST and the
shipped classifier ``checkpoints/classifier_mnist`` (``$IMAGEGEN_TEST_CLASSIFIER`` overrides it);
without the classifier they are skipped. Features of real images are computed once per module.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from imagegen_lib.metrics import (FeatureExtractor, Features, MNISTClassifier, check_images, class_coverage,
                                  class_histogram, class_kl, fid, frechet_distance, gaussian_stats,
                                  inception_score, kid, memorisation, mmd2_unbiased, precision_recall)
from imagegen_lib.metrics.preprocessing import RESIZE_METHODS, fid_by_preprocessing, jpeg, quantise, resize

REPO = Path(__file__).resolve().parents[1]
CLASSIFIER = Path(os.environ.get("IMAGEGEN_TEST_CLASSIFIER", REPO / "checkpoints" / "classifier_mnist"))
pytestmark = [  # torchmetrics' notes about its own buffers are not ours to fix
    pytest.mark.filterwarnings("ignore:Metric .* will save all extracted features:UserWarning"),
    pytest.mark.filterwarnings("ignore:std.*degrees of freedom:UserWarning"),
]
N = 2000  # images per set in the data tests: FID at n=2000 is biased upwards, but consistently


def synthetic_features(n: int, d: int = 32, shift: float = 0.0, seed: int = 0) -> torch.Tensor:
    """Non-Gaussian, correlated, non-negative features — like a ReLU layer's."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=torch.Generator().manual_seed(1234)) / math.sqrt(d)
    return torch.relu(torch.randn(n, d, generator=g) @ mix + shift)


class _Identity(torch.nn.Module):
    """torchmetrics' 'custom feature extractor' that hands our features through unchanged."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x):
        return x


# ---------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------

def test_check_images_accepts_tanh_range():
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    assert torch.equal(check_images(x), x)


@pytest.mark.parametrize("shape, hint", [((8, 28, 28), "unsqueeze(1)"), ((8, 3, 28, 28), "(N, 1, 28, 28)"),
                                         ((8, 1, 32, 32), "(N, 1, 28, 28)")])
def test_check_images_rejects_wrong_shapes(shape, hint):
    with pytest.raises(ValueError, match=hint.replace("(", r"\(").replace(")", r"\)")):
        check_images(torch.zeros(shape) - 1)


def test_check_images_rejects_unit_range_unless_told():
    x = torch.rand(8, 1, 28, 28)
    with pytest.raises(ValueError, match=r"value_range=\(0, 1\)"):
        check_images(x)
    assert torch.allclose(check_images(x, value_range=(0, 1)), x * 2 - 1, atol=1e-6)


def test_check_images_uint8_needs_explicit_conversion():
    x = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"uint8.*value_range=\(0, 255\)"):
        check_images(x)
    y = check_images(x, value_range=(0, 255))
    assert y.dtype == torch.float32 and torch.allclose(y, x.float() / 127.5 - 1, atol=1e-6)


def test_check_images_rejects_float_0_255_and_nan_and_single_image():
    with pytest.raises(ValueError, match=r"0\.\.255.*value_range=\(0, 255\)"):
        check_images(torch.rand(8, 1, 28, 28) * 255)
    with pytest.raises(ValueError, match="NaN"):
        check_images(torch.full((8, 1, 28, 28), float("nan")))
    with pytest.raises(ValueError, match="at least 2"):
        check_images(torch.zeros(1, 1, 28, 28) - 1)
    with pytest.raises(TypeError, match="torch.from_numpy"):
        check_images(np.zeros((8, 1, 28, 28), np.float32))


def test_fid_needs_more_samples_than_dimensions():
    with pytest.raises(ValueError, match=r"n > d.*n=100, d=128"):
        gaussian_stats(torch.randn(100, 128))


def test_feature_extractor_is_batch_independent_and_gradient_free():
    """Eval mode (batch-norm running stats) makes each image's features independent of its batch."""
    torch.manual_seed(0)
    model = MNISTClassifier().train()  # left in train mode on purpose: the extractor must fix that
    x = torch.rand(20, 1, 28, 28) * 2 - 1
    a, b = FeatureExtractor(model, batch_size=7)(x), FeatureExtractor(model, batch_size=20)(x)
    assert a.features.shape == (20, 128) and a.probs.shape == (20, 10)
    assert not a.features.requires_grad and not model.training
    assert torch.allclose(a.features, b.features, atol=1e-5)
    assert torch.allclose(a.probs.sum(1), torch.ones(20), atol=1e-5)


def test_the_tests_feature_cache_returns_what_the_extractor_computes(cached_features, monkeypatch):
    """conftest.FeatureCache (the tests' shortcut for whole test splits) hits only for the same images,
    weights and batch size, and then returns exactly what extracting again would."""
    torch.manual_seed(0)
    model, other = MNISTClassifier(), MNISTClassifier()
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    fresh = FeatureExtractor(model)(x)  # fewer than MIN_IMAGES: computed, not cached
    monkeypatch.setattr(cached_features, "MIN_IMAGES", 2)
    computed, hits = cached_features.computed, cached_features.hits
    first = FeatureExtractor(model)(x)
    assert torch.equal(first.features, fresh.features) and torch.equal(first.probs, fresh.probs)
    assert FeatureExtractor(model)(x.clone()) is first and cached_features.hits == hits + 1
    assert not torch.equal(FeatureExtractor(other)(x).features, first.features)  # other weights
    assert FeatureExtractor(model)(x[:5]) is not first  # other images
    assert FeatureExtractor(model, batch_size=3)(x) is not first  # other batching
    assert cached_features.computed == computed + 4


# ---------------------------------------------------------------------------------------------
# FID: closed forms and cross-checks
# ---------------------------------------------------------------------------------------------

def test_frechet_distance_of_diagonal_gaussians_in_closed_form():
    # For diagonal covariances the matrix square root is element-wise:
    # FID = ||m1 - m2||² + sum_i (sqrt(a_i) - sqrt(b_i))².
    g = torch.Generator().manual_seed(0)
    f64 = dict(generator=g, dtype=torch.float64)
    m1, m2 = torch.randn(6, **f64), torch.randn(6, **f64)
    a, b = torch.rand(6, **f64) + 0.1, torch.rand(6, **f64) + 0.1
    expected = (m1 - m2).square().sum() + (a.sqrt() - b.sqrt()).square().sum()
    assert frechet_distance(m1, torch.diag(a), m2, torch.diag(b)) == pytest.approx(float(expected), rel=1e-10)


def test_frechet_distance_matches_scipy_sqrtm_for_full_covariances():
    rng = np.random.default_rng(0)
    d = 20
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a @ a.T / d, b @ b.T / d + 0.1 * np.eye(d)
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    got = frechet_distance(*(torch.from_numpy(t) for t in (m1, s1, m2, s2)))
    assert got == pytest.approx(expected, rel=1e-8)


def test_fid_of_samples_approaches_the_gaussians_distance():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20_000, 4, generator=g)  # N(0, I)
    y = 1 + 2 * torch.randn(20_000, 4, generator=g)  # N(1, 4I): FID = 4·1² + 4·(2-1)² = 8
    assert fid(x, y) == pytest.approx(8.0, rel=0.03)


def test_fid_is_zero_for_identical_sets_and_symmetric():
    x, y = synthetic_features(500), synthetic_features(700, shift=0.3, seed=1)
    assert fid(x, x) == pytest.approx(0.0, abs=1e-8)
    assert fid(x, y) == pytest.approx(fid(y, x), rel=1e-9)
    assert fid(x, y) > 0.1


def test_fid_matches_torchmetrics():
    from torchmetrics.image.fid import FrechetInceptionDistance

    x, y = synthetic_features(500), synthetic_features(700, shift=0.3, seed=1)
    tm = FrechetInceptionDistance(feature=_Identity(x.shape[1]))
    tm.update(x, real=True)
    tm.update(y, real=False)
    assert fid(x, y) == pytest.approx(float(tm.compute()), rel=1e-3)


# ---------------------------------------------------------------------------------------------
# KID
# ---------------------------------------------------------------------------------------------

def test_mmd2_matches_torchmetrics_poly_mmd():
    from torchmetrics.image.kid import poly_mmd

    x, y = synthetic_features(300).double(), synthetic_features(300, shift=0.2, seed=1).double()
    assert mmd2_unbiased(x, y) == pytest.approx(float(poly_mmd(x, y)), rel=1e-9)


def test_kid_matches_torchmetrics():
    from torchmetrics.image.kid import KernelInceptionDistance

    x, y = synthetic_features(400), synthetic_features(400, shift=0.2, seed=1)
    # subset_size = n: every subset is the whole set, so random subsets can't make the two differ
    tm = KernelInceptionDistance(feature=_Identity(x.shape[1]), subsets=3, subset_size=400)
    tm.update(x, real=True)
    tm.update(y, real=False)
    tm_mean, _ = tm.compute()
    mean, std = kid(x, y, subsets=3, subset_size=400)
    assert mean == pytest.approx(float(tm_mean), rel=1e-3)
    assert std == pytest.approx(0.0, abs=1e-6 * mean)


def test_kid_is_zero_on_average_for_one_distribution():
    x, x2 = synthetic_features(2000), synthetic_features(2000, seed=1)  # same distribution
    shifted = synthetic_features(2000, shift=0.2, seed=2)
    same, _ = kid(x, x2, subsets=50, subset_size=500)
    identical, _ = kid(x, x, subsets=50, subset_size=500)
    different, different_std = kid(x, shifted, subsets=50, subset_size=500)
    assert different > 5 * different_std > 0
    assert abs(same) < 0.01 * different
    # Subsets of one set share points, and k(x, x) > k(x, y) on average: the estimator (built for
    # independent samples) then comes out slightly *negative*, by O(1/subset_size).
    assert -0.05 * different < identical <= 0


# ---------------------------------------------------------------------------------------------
# Inception Score, precision/recall, classes, memorisation
# ---------------------------------------------------------------------------------------------

def test_inception_score_extremes():
    one_hot = torch.eye(10).repeat(100, 1)  # confident and balanced: the maximum, 10
    assert inception_score(one_hot, splits=1)[0] == pytest.approx(10.0, rel=1e-6)
    # In 10 random splits each chunk's classes are only roughly balanced: a bit below 10.
    assert 9 < inception_score(one_hot, splits=10)[0] < 10
    one_class = torch.eye(10)[[3] * 1000]  # confident, one class: the minimum, 1
    assert inception_score(one_class)[0] == pytest.approx(1.0, rel=1e-6)
    unsure = torch.full((1000, 10), 0.1)  # balanced but unsure: also 1
    assert inception_score(unsure)[0] == pytest.approx(1.0, rel=1e-6)


def test_inception_score_matches_torchmetrics():
    from torchmetrics.image.inception import InceptionScore

    logits = 3 * torch.randn(1000, 10, generator=torch.Generator().manual_seed(0))
    tm = InceptionScore(feature=_Identity(10), splits=1)  # one split: its random shuffle is moot
    tm.update(logits)
    assert inception_score(logits.softmax(1), splits=1)[0] == pytest.approx(float(tm.compute()[0]), rel=1e-3)


def test_precision_recall_identical_disjoint_and_collapsed():
    x = synthetic_features(500)
    assert precision_recall(x, x) == (1.0, 1.0)
    assert precision_recall(x, x + 100.0) == (0.0, 0.0)
    # Two far-apart clusters of reals; "fakes" copy one of them: realistic but half the data missed.
    real = torch.cat([x, x + 100.0])
    precision, recall = precision_recall(real, x)
    assert precision == 1.0 and recall == pytest.approx(0.5, abs=0.01)


def test_class_coverage_and_kl():
    balanced = torch.eye(10).repeat(100, 1)
    assert class_coverage(balanced) == 1.0 and class_kl(balanced) == pytest.approx(0.0, abs=1e-12)
    collapsed = torch.eye(10)[[7] * 1000]
    assert class_coverage(collapsed) == pytest.approx(0.1) and class_kl(collapsed) == pytest.approx(math.log(10))
    # 5 of 1000 samples (0.5 %) in class 9 is under the 1 % threshold: not covered.
    rare = torch.eye(10)[[i % 9 for i in range(995)] + [9] * 5]
    assert class_coverage(rare) == pytest.approx(0.9)
    assert class_coverage(rare, min_share=0.005) == 1.0
    assert class_histogram(rare)[9] == pytest.approx(0.005)


def test_memorisation_flags_copies_not_fresh_samples():
    train = synthetic_features(3000)
    test = synthetic_features(500, seed=1)
    copies = memorisation(train[:500], train, test)
    fresh = memorisation(synthetic_features(500, seed=2), train, test)
    assert copies["ratio"] == pytest.approx(0.0, abs=1e-3) and copies["copies"] == 1.0
    assert fresh["ratio"] == pytest.approx(1.0, abs=0.1) and fresh["copies"] < 0.05


# ---------------------------------------------------------------------------------------------
# Preprocessing: quantisation, JPEG, resizing, FID under named preprocessings
# ---------------------------------------------------------------------------------------------

def _digits_like(n: int = 16, size: int = 28, seed: int = 0) -> torch.Tensor:
    """Smooth bright blobs on a -1 background, with a little float noise: like generator output."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centres = torch.rand(n, 2, 1, 1, generator=g) * size * 0.5 + size * 0.25
    blob = torch.exp(-((yy - centres[:, 0]) ** 2 + (xx - centres[:, 1]) ** 2) / (2 * (size / 8) ** 2))
    return (blob.unsqueeze(1) * 2 - 1 + 0.01 * torch.randn(n, 1, size, size, generator=g)).clamp(-1, 1)


def test_quantise_puts_pixels_on_256_levels_and_floor_darkens():
    x = _digits_like()
    rounded, floored = quantise(x), quantise(x, rounding="floor")
    inside = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 1.98 - 0.99
    for q in (rounded, floored):
        levels = (q + 1) * 127.5
        assert torch.allclose(levels, levels.round(), atol=1e-4) and q.min() >= -1 and q.max() <= 1
    step = 2 / 255
    assert (rounded - x).abs().max() <= step / 2 + 1e-6  # nearest level: at most half a step away
    assert ((x - floored) >= -1e-6).all() and (x - floored).max() < step + 1e-6  # truncation only goes down
    # half a level darker on average (where pixels are not clipped at -1 already)
    assert (inside - quantise(inside, rounding="floor")).mean() == pytest.approx(step / 2, rel=0.05)
    assert (inside - quantise(inside)).mean() == pytest.approx(0, abs=step / 50)
    assert torch.equal(quantise(rounded), rounded)  # an 8-bit image saved again is unchanged
    assert quantise(torch.tensor([-1.0, 1.0]).view(2, 1, 1, 1)).flatten().tolist() == [-1.0, 1.0]


@pytest.mark.parametrize("bad, error", [(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), TypeError),
                                        (torch.full((2, 1, 4, 4), 2.0), ValueError),
                                        (torch.zeros(2, 4, 4), ValueError), (torch.zeros(2, 2, 4, 4), ValueError)])
def test_preprocessing_refuses_to_guess_the_input(bad, error):
    for fn in (quantise, lambda x: jpeg(x, 90), lambda x: resize(x, 8, "pil-bicubic")):
        with pytest.raises(error):
            fn(bad)


def test_jpeg_error_grows_as_quality_falls_and_is_deterministic():
    x = _digits_like(8, size=32)
    errors = [float((jpeg(x, q) - quantise(x)).abs().mean()) for q in (100, 95, 75, 25)]
    assert errors == sorted(errors) and errors[0] < 2 / 255 < errors[-1]
    out = jpeg(x, 75)
    assert out.shape == x.shape and out.dtype == torch.float32 and torch.equal(out, jpeg(x, 75))
    rgb = x.repeat(1, 3, 1, 1)
    assert jpeg(rgb, 90).shape == rgb.shape
    for quality in (0, 101, 75.0, True):
        with pytest.raises(ValueError, match="quality"):
            jpeg(x, quality)


def test_resize_keeps_constants_and_matches_pooling_at_exactly_half():
    flat = torch.full((2, 1, 28, 28), 0.25)
    for method in RESIZE_METHODS:
        out = resize(flat, (64, 50), method)
        assert out.shape == (2, 1, 64, 50) and torch.allclose(out, flat.mean(), atol=1e-5), method
    x = _digits_like(4, size=56)
    # halving exactly: bilinear samples fall midway between 2x2 pixels, and PIL's box filter averages them
    assert torch.allclose(resize(x, 28, "torch-bilinear"), F.avg_pool2d(x, 2), atol=1e-5)
    assert torch.allclose(resize(x, 28, "pil-box"), F.avg_pool2d(x, 2), atol=1e-5)
    with pytest.raises(ValueError, match="method"):
        resize(x, 28, "cv2-bicubic")


def test_torch_default_nearest_shifts_the_image_and_nearest_exact_does_not():
    ramp = torch.linspace(-1, 1, 64).expand(1, 1, 64, 64).contiguous()  # brighter to the right
    centred = float(resize(ramp, 28, "pil-bicubic").mean())
    assert float(resize(ramp, 28, "torch-nearest-exact").mean()) == pytest.approx(centred, abs=0.01)
    # F.interpolate's default reads pixel floor(i * 64 / 28), left of the centre (i + 0.5) * 64 / 28 - 0.5:
    # about one source pixel (2 / 63 of the ramp) on average
    shift = (centred - float(resize(ramp, 28, "torch-nearest").mean())) / (2 / 63)
    assert 0.8 < shift < 1.3


def test_pil_and_antialiased_resizing_remove_detail_that_torch_defaults_alias():
    # one-pixel stripes, far finer than a 28-pixel grid can show: shrunk properly they become flat grey
    stripes = (torch.arange(64) % 2 * 2.0 - 1).expand(1, 1, 64, 64).contiguous()
    amplitude = {m: float(resize(stripes, 28, m).std()) for m in
                 ("pil-bicubic", "pil-lanczos", "torch-bilinear-antialias", "torch-bilinear", "torch-bicubic")}
    assert max(amplitude["pil-bicubic"], amplitude["pil-lanczos"], amplitude["torch-bilinear-antialias"]) < 0.1
    assert min(amplitude["torch-bilinear"], amplitude["torch-bicubic"]) > 0.5  # spurious coarse stripes


class _PoolFeatures:
    """A stand-in feature extractor: 4x4 average-pooled pixels (16-d), counting its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return F.adaptive_avg_pool2d(x, 4).flatten(1)


def test_fid_by_preprocessing_matches_fid_and_extracts_each_transform_once():
    real, fake = _digits_like(300, seed=1), _digits_like(300, seed=2)
    extractor, pool = _PoolFeatures(), _PoolFeatures()
    shrink = lambda x: resize(x, 14, "torch-bilinear")  # noqa: E731 -- one object, used in two settings
    settings = {"clean": (None, None), "JPEG fakes": (None, lambda x: jpeg(x, 50)),
                "both shrunk": (shrink, shrink), "reals only shrunk": (shrink, None)}
    result = fid_by_preprocessing(extractor, real, fake, settings)
    assert list(result) == list(settings) and extractor.calls == 5  # real, fake, jpeg, shrunk real, shrunk fake
    assert result["clean"] == pytest.approx(fid(pool(real), pool(fake)))
    assert result["JPEG fakes"] == pytest.approx(fid(pool(real), pool(jpeg(fake, 50))))
    assert result["both shrunk"] == pytest.approx(fid(pool(shrink(real)), pool(shrink(fake))))
    assert result["reals only shrunk"] == pytest.approx(fid(pool(shrink(real)), pool(fake)))
    # precomputed features of the untouched sets are used, not recomputed
    counting = _PoolFeatures()
    again = fid_by_preprocessing(counting, real, fake, {"clean": (None, None), "jpeg": (None, lambda x: jpeg(x, 50))},
                                 real_features=pool(real), fake_features=pool(fake))
    assert counting.calls == 1 and again["clean"] == pytest.approx(result["clean"])
    with pytest.raises(ValueError, match="pair"):
        fid_by_preprocessing(counting, real, fake, {"bad": (None,)})
    with pytest.raises(ValueError, match="empty"):
        fid_by_preprocessing(counting, real, fake, {})


# ---------------------------------------------------------------------------------------------
# Real data, in the shipped classifier's feature space
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def extractor():
    if not CLASSIFIER.with_suffix(".safetensors").is_file():
        pytest.skip(f"no classifier at {CLASSIFIER} (train one, or set IMAGEGEN_TEST_CLASSIFIER)")
    return FeatureExtractor(CLASSIFIER)


def _noised(x: torch.Tensor, sigma: float) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def _blurred(x: torch.Tensor, sigma: float) -> torch.Tensor:
    from torchvision.transforms.functional import gaussian_blur

    k = 2 * round(3 * sigma) + 1
    return gaussian_blur(x, [k, k], [sigma, sigma])


NOISE = [0.1, 0.2, 0.4, 0.8]
BLUR = [0.5, 1.0, 1.5, 2.0]


@pytest.fixture(scope="module")
def real_features(extractor) -> dict[str, Features]:
    """Features of every image set the data tests use, extracted once (about 10 s on 2 cores)."""
    from imagegen_lib.core.data import load_images

    test, _ = load_images("mnist", "test", limit=N)
    train, labels = load_images("mnist", "train", limit=5 * N)
    ref = train[:N]
    sets = {"test": test, "train": ref, "threes": train[labels == 3][:1000]}
    sets |= {f"noise{s}": _noised(ref, s) for s in NOISE}
    sets |= {f"blur{s}": _blurred(ref, s) for s in BLUR}
    return {name: extractor(x) for name, x in sets.items()}


@pytest.mark.data
def test_real_data_scores_well(real_features):
    test, train = real_features["test"], real_features["train"]
    assert inception_score(test)[0] > 8.5
    precision, recall = precision_recall(test, train)
    assert precision > 0.7 and recall > 0.7
    assert class_coverage(train) == 1.0 and class_kl(train) < 0.01


@pytest.mark.data
def test_fid_floor_is_small_next_to_noised_images(real_features):
    test = real_features["test"]
    floor = fid(test, real_features["train"])  # two finite samples of one distribution: > 0
    assert 0 < floor < 0.25 * fid(test, real_features["noise0.2"])


@pytest.mark.data
@pytest.mark.parametrize("kind, levels", [("noise", NOISE), ("blur", BLUR)])
def test_fid_rises_monotonically_with_degradation(real_features, kind, levels):
    test = real_features["test"]
    fids = [fid(test, real_features["train"])] + [fid(test, real_features[f"{kind}{s}"]) for s in levels]
    assert all(a < b for a, b in zip(fids, fids[1:])), f"{kind}: {fids}"


@pytest.mark.data
def test_collapsed_generator_has_low_recall_and_one_class(real_features):
    test, threes = real_features["test"], real_features["threes"]  # "generator" of real 3s only
    precision, recall = precision_recall(test.features[:1000], threes.features)
    assert precision > 0.5 and recall < 0.3  # real train vs test: both ≈ 0.85
    assert class_coverage(threes) == pytest.approx(0.1)
    assert class_kl(threes) > 2.0  # log 10 = 2.30 is total collapse


@pytest.mark.data
def test_fid_and_kid_match_torchmetrics_on_classifier_features(real_features):
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    x, y = real_features["test"].features, real_features["noise0.2"].features
    tm_fid = FrechetInceptionDistance(feature=_Identity(x.shape[1]))
    tm_kid = KernelInceptionDistance(feature=_Identity(x.shape[1]), subsets=2, subset_size=N)
    for metric in (tm_fid, tm_kid):
        metric.update(x, real=True)
        metric.update(y, real=False)
    assert fid(x, y) == pytest.approx(float(tm_fid.compute()), rel=1e-3)
    assert kid(x, y, subsets=2, subset_size=N)[0] == pytest.approx(float(tm_kid.compute()[0]), rel=1e-3)


@pytest.mark.data
def test_saving_as_jpeg_moves_real_images_off_the_floor_and_rounding_does_not(real_features, extractor):
    from imagegen_lib.core.data import load_images

    test, train = real_features["test"], load_images("mnist", "train", limit=N)[0]
    result = fid_by_preprocessing(extractor, None, train, {"floor": (None, None), "png": (None, quantise),
                                                           "jpeg75": (None, lambda x: jpeg(x, 75))},
                                  real_features=test, fake_features=real_features["train"])
    assert result["png"] == pytest.approx(result["floor"], abs=0.02)  # MNIST is 8-bit already: no change
    assert result["jpeg75"] > result["floor"] + 0.1


@pytest.mark.data
def test_eval_cli_on_an_untrained_generator(real_features, tmp_path, capsys, cached_features):
    """End to end: checkpoint -> samples -> every metric -> table and JSON. Untrained = bad scores.
    (The test split's features come from the session's cache when another test extracted them.)"""
    from imagegen_lib.cli import main
    from imagegen_lib.gan.models import build_gan
    from imagegen_lib.gan.train import GANConfig, save_generator

    torch.manual_seed(0)
    G, _ = build_gan("mlpgan")
    save_generator(G, GANConfig(arch="mlpgan"), tmp_path / "g")
    out = tmp_path / "eval.json"
    assert main(["eval", str(tmp_path / "g.safetensors"), "--n", "300", "--classifier", str(CLASSIFIER),
                 "--json", str(out), "--device", "cpu"]) == 0
    assert "FID" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["n"] == 300 and result["reference"].startswith("mnist test split")
    assert result["fid"] > 10 * fid(real_features["test"], real_features["train"])
    assert result["precision"] < 0.1
