"""Sample-quality metrics for 28×28 generators, computed in a classifier's feature space.

The metrics judge *sets* of samples, mostly against a set of real images, through a
:class:`FeatureExtractor` (the course's MNIST classifier: 128-d penultimate features and 10 class
probabilities; Inception-v3 is neither available offline nor suited to 28×28 digits):

- :func:`fid` — do the feature Gaussians (mean, covariance) match? Lower is better, 0 at best.
- :func:`kid` — the same question, answered by an unbiased kernel estimate (fine at small n).
- :func:`inception_score` — confident *and* varied class predictions? Higher, at most 10.
- :func:`precision_recall` — are samples realistic (precision)? is all of the data covered (recall)?
- :func:`class_coverage` and :func:`class_kl` — are all 10 classes produced, in equal shares?
- :func:`memorisation` — are samples closer to the training set than new real data is? Want ≈ 1.

Sections below go by idea: checking inputs and extracting features; Fréchet distance; kernel
distance; Inception-Score analogue; k-NN precision/recall; class coverage; memorisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .classifier import load_classifier

__all__ = [
    "Features", "FeatureExtractor", "check_images",
    "gaussian_stats", "frechet_distance", "fid",
    "mmd2_unbiased", "kid",
    "inception_score",
    "precision_recall",
    "class_histogram", "class_coverage", "class_kl",
    "nearest_distances", "memorisation",
]

# ---------------------------------------------------------------------------------------------
# Inputs and features
# ---------------------------------------------------------------------------------------------

# What each accepted ``value_range`` maps to [-1, 1] with: x * scale + shift.
_TO_TANH_RANGE = {(-1.0, 1.0): (1.0, 0.0), (0.0, 1.0): (2.0, -1.0), (0.0, 255.0): (2 / 255, -1.0)}
_TOL = 1e-3  # slack on range checks: float rounding, bilinear resampling overshoot


def check_images(images: torch.Tensor, value_range: tuple[float, float] = (-1, 1)) -> torch.Tensor:
    """Validate a batch of images and return it as float32 in [-1, 1] (the classifier's range).

    ``value_range`` says what the caller *claims* the data is in; conversion happens only when
    it says so, because silently guessing would turn a bug upstream (e.g. forgetting ``x*2-1``)
    into a quietly wrong FID instead of an error.
    """
    if not torch.is_tensor(images):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__name__}; "
                        "wrap numpy arrays with torch.from_numpy(...)")
    if images.dim() == 3 and tuple(images.shape[1:]) == (28, 28):
        raise ValueError(f"images must be (N, 1, 28, 28), got {tuple(images.shape)}: "
                         "add the channel axis with images.unsqueeze(1)")
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f"images must be (N, 1, 28, 28), got {tuple(images.shape)}")
    if len(images) < 2:
        raise ValueError(f"need at least 2 images to compare distributions, got {len(images)}")
    key = tuple(float(v) for v in value_range)
    if key not in _TO_TANH_RANGE:
        raise ValueError(f"value_range must be one of {sorted(_TO_TANH_RANGE)}, got {value_range!r}")

    if images.dtype == torch.uint8:
        if key != (0.0, 255.0):
            raise ValueError("images are uint8 (0..255) but value_range says "
                             f"{value_range}; pass value_range=(0, 255) to convert them, "
                             "or convert yourself with x.float() / 127.5 - 1")
    elif not images.is_floating_point():
        raise TypeError(f"images must be float (or uint8), got {images.dtype}")
    x = images.float()
    if not torch.isfinite(x).all():
        raise ValueError("images contain NaN or inf (a diverged generator?)")

    lo, hi = float(x.min()), float(x.max())
    if lo < key[0] - _TOL or hi > key[1] + _TOL:
        hint = " — looks like 0..255 data: pass value_range=(0, 255)" if hi > 2 else ""
        raise ValueError(f"images lie in [{lo:.3g}, {hi:.3g}], outside the declared value_range "
                         f"{value_range}{hint}")
    if key == (-1.0, 1.0) and lo >= 0.0:
        # Real digits and tanh outputs have a background at -1. A batch with nothing below 0 is
        # almost surely [0, 1] data; in [-1, 1] it would read as a grey background and inflate FID.
        raise ValueError(f"images lie in [{lo:.3g}, {hi:.3g}] but [-1, 1] is expected: this looks "
                         "like [0, 1] data. Pass value_range=(0, 1) to convert it, or use x * 2 - 1")
    scale, shift = _TO_TANH_RANGE[key]
    return (x * scale + shift).clamp_(-1.0, 1.0)


@dataclass
class Features:
    """What the metrics need from a set of images, computed once and reused by every metric."""

    features: torch.Tensor  # (N, 128) penultimate activations: FID, KID, precision/recall
    probs: torch.Tensor  # (N, 10) class probabilities: Inception Score, coverage, class KL

    def __len__(self) -> int:
        return len(self.features)


class FeatureExtractor:
    """Images -> :class:`Features`, in batches, in eval mode, without autograd.

    ``classifier`` is a model with ``.features(x)`` and ``.head`` (an ``MNISTClassifier``), or
    the stem of a classifier checkpoint.
    """

    def __init__(self, classifier: nn.Module | str | Path, device: str | torch.device = "cpu",
                 batch_size: int | None = None):
        if isinstance(classifier, (str, Path)):
            classifier, _ = load_classifier(classifier, device=device)
        self.device = torch.device(device)
        self.model = classifier.to(self.device).eval()
        # Small batches stay in a CPU's cache: 64 ran 4x faster than 500 on 2 cores; GPUs want big ones.
        self.batch_size = batch_size or (1024 if self.device.type == "cuda" else 64)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, value_range: tuple[float, float] = (-1, 1)) -> Features:
        x = check_images(images, value_range)
        self.model.eval()  # batch-norm must use its running statistics, dropout must be off
        feats, probs = [], []
        for i in range(0, len(x), self.batch_size):
            f = self.model.features(x[i:i + self.batch_size].to(self.device))
            # forward() == head(dropout(features())); in eval mode dropout is the identity, so
            # one pass through the body gives both outputs.
            feats.append(f.float().cpu())
            probs.append(F.softmax(self.model.head(f).float(), dim=1).cpu())
        return Features(torch.cat(feats), torch.cat(probs))


def _as_float64(name: str, x: torch.Tensor | Features) -> torch.Tensor:
    """Accept a ``Features`` or an (N, D) tensor; covariances and kernels want float64."""
    if isinstance(x, Features):
        x = x.features
    if not torch.is_tensor(x) or x.dim() != 2:
        raise ValueError(f"{name} must be an (N, D) feature tensor or a Features, "
                         f"got {tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
    return x.detach().to("cpu", torch.float64)


# ---------------------------------------------------------------------------------------------
# Fréchet distance (FID)
# ---------------------------------------------------------------------------------------------

def gaussian_stats(features: torch.Tensor | Features) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased, n-1) covariance of (N, D) features, in float64."""
    x = _as_float64("features", features)
    n, d = x.shape
    if n < d + 1:
        # With n <= d the sample covariance has rank <= n - 1 < d: it is singular, its square root
        # is ill-defined and FID is dominated by estimation noise. Even above d, FID is biased
        # upwards at small n (the bias shrinks like 1/n), so only compare FIDs at equal n.
        raise ValueError(f"FID needs more samples than feature dimensions (n > d) for a full-rank "
                         f"covariance; got n={n}, d={d}. Use n >= {d + 1} (thousands: FID is biased "
                         "upwards at small n), or use kid(), which is unbiased at any n.")
    mu = x.mean(0)
    xc = x - mu
    return mu, xc.T @ xc / (n - 1)


def _sqrt_psd(s: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a positive semi-definite matrix via its eigen-decomposition."""
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1 S2)^½): the squared 2-Wasserstein distance of two Gaussians.

    Only the *trace* of (S1 S2)^½ is needed, i.e. the sum of square roots of the eigenvalues of
    S1 S2. S1 S2 is not symmetric, so a general eigen-solver (or ``scipy.linalg.sqrtm``) can
    return small imaginary parts and negative values from rounding, which other implementations
    then patch by dropping ``.imag`` or adding ``eps * I``. Instead we use the similar matrix
    M = S1^½ S2 S1^½: it has the same eigenvalues as S1 S2, but it is symmetric PSD, so
    ``eigh`` returns real eigenvalues; we clamp the tiny negative ones to 0. All in float64.
    """
    mu1, sigma1, mu2, sigma2 = (t.to(torch.float64) for t in (mu1, sigma1, mu2, sigma2))
    root1 = _sqrt_psd(sigma1)
    m = root1 @ sigma2 @ root1
    trace_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0).sqrt().sum()
    dist = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt
    return float(dist.clamp(min=0))  # rounding can push FID(x, x) to -1e-12


def fid(real: torch.Tensor | Features, fake: torch.Tensor | Features) -> float:
    """Fréchet distance between the feature Gaussians of two sets (symmetric in its arguments)."""
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


# ---------------------------------------------------------------------------------------------
# Kernel distance (KID)
# ---------------------------------------------------------------------------------------------

def _poly_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """k(x, y) = (x·y / d + 1)³, the kernel of Bińkowski et al. (2018)."""
    return (a @ b.T / a.shape[1] + 1) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased estimate of MMD² between the distributions behind samples x (m, D) and y (n, D).

    The diagonals k(x_i, x_i) are left out of the within-set means: including them is what makes
    the plain (V-statistic) estimate biased upwards. Unbiased means E[estimate] = 0 for two
    samples of the same distribution — single estimates can then be slightly negative.
    """
    x, y = _as_float64("x", x), _as_float64("y", y)
    m, n = len(x), len(y)
    k_xx, k_yy, k_xy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    return float((k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
                 + (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
                 - 2 * k_xy.mean())


def kid(real: torch.Tensor | Features, fake: torch.Tensor | Features, subsets: int = 100,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: mean ± std of :func:`mmd2_unbiased` over random subsets.

    Subsets (drawn without replacement inside each subset, as in torchmetrics) keep the cost at
    ``subsets`` × three ``subset_size``² kernel matrices, and their spread is the std returned.
    """
    x, y = _as_float64("real", real), _as_float64("fake", fake)
    if subset_size > min(len(x), len(y)):
        raise ValueError(f"subset_size={subset_size} is larger than the sets ({len(x)} real, "
                         f"{len(y)} fake); pass subset_size <= {min(len(x), len(y))}")
    gen = torch.Generator().manual_seed(seed)
    scores = torch.tensor([
        mmd2_unbiased(x[torch.randperm(len(x), generator=gen)[:subset_size]],
                      y[torch.randperm(len(y), generator=gen)[:subset_size]])
        for _ in range(subsets)
    ])
    return float(scores.mean()), float(scores.std(unbiased=False))


# ---------------------------------------------------------------------------------------------
# Inception Score, with the MNIST classifier instead of Inception-v3
# ---------------------------------------------------------------------------------------------

def inception_score(probs: torch.Tensor | Features, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """exp E_x[KL(p(y|x) || p(y))]: high when each sample is classified confidently (low-entropy
    p(y|x)) *and* the classes are varied (high-entropy p(y)). Between 1 and the number of classes.

    As in Salimans et al. (2016), the score is computed on ``splits`` random chunks (p(y) is
    estimated per chunk) and returned as mean ± std over the chunks.
    """
    p = (probs.probs if isinstance(probs, Features) else probs).to(torch.float64)
    p = p[torch.randperm(len(p), generator=torch.Generator().manual_seed(seed))]
    log_p = p.clamp(min=1e-30).log()  # 0 · log 0 = 0: the clamp keeps it from becoming 0 · -inf = NaN
    scores = []
    for chunk, log_chunk in zip(p.chunk(splits), log_p.chunk(splits)):
        log_marginal = chunk.mean(0, keepdim=True).clamp(min=1e-30).log()  # a class nobody is in
        scores.append((chunk * (log_chunk - log_marginal)).sum(1).mean().exp())
    scores = torch.stack(scores)
    std = float(scores.std()) if len(scores) > 1 else 0.0
    return float(scores.mean()), std


# ---------------------------------------------------------------------------------------------
# Precision and recall (Kynkäänniemi et al. 2019)
# ---------------------------------------------------------------------------------------------

def _kth_neighbour_radius(x: torch.Tensor, k: int, batch: int = 1000) -> torch.Tensor:
    """Distance from each point of x to its k-th nearest *other* point of x."""
    radii = []
    for i in range(0, len(x), batch):
        d = torch.cdist(x[i:i + batch], x)
        radii.append(d.topk(k + 1, dim=1, largest=False).values[:, k])  # column 0 is the point itself
    return torch.cat(radii)


def precision_recall(real: torch.Tensor | Features, fake: torch.Tensor | Features, k: int = 3,
                     batch: int = 1000) -> tuple[float, float]:
    """k-NN estimates of the two manifolds: precision = share of fakes inside the real manifold
    (realism), recall = share of reals inside the fake manifold (diversity, mode coverage).

    A manifold is the union of balls around each of its points, of radius the distance to that
    point's k-th nearest neighbour in the same set.
    """
    x, y = _as_float64("real", real), _as_float64("fake", fake)
    if k >= min(len(x), len(y)):
        raise ValueError(f"k={k} needs more than k points in each set, got {len(x)} and {len(y)}")
    r_real, r_fake = _kth_neighbour_radius(x, k, batch), _kth_neighbour_radius(y, k, batch)
    fake_in_real = torch.zeros(len(y), dtype=torch.bool)
    real_in_fake = torch.zeros(len(x), dtype=torch.bool)
    for i in range(0, len(y), batch):
        d = torch.cdist(y[i:i + batch], x)  # (fakes in this batch, all reals)
        fake_in_real[i:i + batch] = (d <= r_real[None, :]).any(1)
        real_in_fake |= (d <= r_fake[i:i + batch, None]).any(0)
    return float(fake_in_real.double().mean()), float(real_in_fake.double().mean())


# ---------------------------------------------------------------------------------------------
# Classes: coverage and KL from uniform
# ---------------------------------------------------------------------------------------------

def class_histogram(probs: torch.Tensor | Features) -> torch.Tensor:
    """Share of samples the classifier assigns (argmax) to each class; sums to 1."""
    p = probs.probs if isinstance(probs, Features) else probs
    counts = torch.bincount(p.argmax(1), minlength=p.shape[1]).double()
    return counts / counts.sum()


def class_coverage(probs: torch.Tensor | Features, min_share: float = 0.01) -> float:
    """Fraction of classes given at least ``min_share`` of the samples (default 1 %).

    Uniform would be 10 % per class, so a class under 1 % is produced ten times too rarely to
    count as covered. 1.0 = every class present; 0.1 = a collapse onto one class.
    """
    hist = class_histogram(probs)
    return float((hist >= min_share).double().mean())


def class_kl(probs: torch.Tensor | Features) -> float:
    """KL(class histogram || uniform) in nats: 0 when balanced, log(10) ≈ 2.30 for one class."""
    hist = class_histogram(probs)
    nonzero = hist[hist > 0]  # 0 · log 0 = 0
    return float((nonzero * (nonzero * len(hist)).log()).sum())


# ---------------------------------------------------------------------------------------------
# Memorisation
# ---------------------------------------------------------------------------------------------

def nearest_distances(queries: torch.Tensor, pool: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """Euclidean distance from each query row to its nearest row of ``pool`` (both flattened)."""
    q, p = queries.flatten(1).float(), pool.flatten(1).float()
    p_sq = p.square().sum(1)
    out = []
    for i in range(0, len(q), batch):
        qb = q[i:i + batch]
        # ||a - b||² = ||a||² - 2 a·b + ||b||²: one matrix product instead of a (B, N, D) tensor
        d2 = qb.square().sum(1, keepdim=True) - 2 * qb @ p.T + p_sq
        out.append(d2.min(1).values.clamp(min=0).sqrt())
    return torch.cat(out)


def memorisation(fake: torch.Tensor, train: torch.Tensor, test: torch.Tensor) -> dict:
    """Do samples sit closer to the training set than unseen real images do?

    ``fake``, ``train`` and ``test`` are pixels or features (anything flattenable to rows). We
    compare the median nearest-train-neighbour distance of the samples with that of held-out real
    images (``test``): a ratio ≈ 1 means the samples are as novel as new data; a ratio well below
    1 means the generator reproduces training images. ``copies`` is the share of samples closer
    to the training set than the 1st percentile of the test images' distances.
    """
    d_fake, d_test = nearest_distances(fake, train), nearest_distances(test, train)
    copy_radius = torch.quantile(d_test, 0.01)
    return {"ratio": float(d_fake.median() / d_test.median()),
            "median_fake": float(d_fake.median()), "median_test": float(d_test.median()),
            "copies": float((d_fake < copy_radius).double().mean())}
