"""Evaluating generators: a feature extractor (``classifier``) and the metrics computed in its space.

- :mod:`.classifier` — the small CNN whose features and class probabilities the metrics use;
- :mod:`.core` — the metrics themselves (FID, KID, Inception Score, precision/recall, class
  coverage, memorisation) and the ``FeatureExtractor`` that feeds them;
- :mod:`.preprocessing` — what saving and resizing do to images before the features (8-bit
  quantisation, JPEG, resize filters), and FID under several named preprocessings;
- :mod:`.evaluate` — the fixed protocol behind ``imagegen eval`` (reference set, n, seed).
"""

from .classifier import FEATURE_DIM, MNISTClassifier, load_classifier
from .core import (FeatureExtractor, Features, check_images, class_coverage, class_histogram, class_kl, fid,
                   frechet_distance, gaussian_stats, inception_score, kid, memorisation, mmd2_unbiased,
                   nearest_distances, precision_recall)
from .evaluate import default_classifier_stem, evaluate_generator, evaluate_real, format_report
from .preprocessing import RESIZE_METHODS, fid_by_preprocessing, jpeg, quantise, resize

__all__ = [
    "FEATURE_DIM", "MNISTClassifier", "load_classifier",
    "FeatureExtractor", "Features", "check_images",
    "gaussian_stats", "frechet_distance", "fid", "mmd2_unbiased", "kid", "inception_score",
    "precision_recall", "class_histogram", "class_coverage", "class_kl",
    "nearest_distances", "memorisation",
    "quantise", "jpeg", "resize", "RESIZE_METHODS", "fid_by_preprocessing",
    "evaluate_generator", "evaluate_real", "default_classifier_stem", "format_report",
]
