"""Published super-resolution results (Y-PSNR in dB, the standard protocol), as data with their source.

Only numbers that could be checked against a copy of the paper's table are listed; a missing
(set, scale) means *not verified here*, never "not reported", and the book shows it as "—".
Each method names its bibliography key (book/references.bib) and what it was trained on, because
the training set moves PSNR as much as the architecture: SRCNN's and ESPCN's best published
numbers come from ImageNet training, not from the 91 images (T91) this book trains on. Their
labels say so (and SRCNN's names its larger 9-5-5 network), so that the results table never
passes them off as like-for-like targets for the book's T91-trained models.

Where each number was checked (secondary copies of the papers' tables):

- ``bicubic``: the baselines of SRCNN/VDSR's tables, as :data:`imagegen_lib.sr.metrics.BICUBIC_BASELINES`
  (Set14 differs by 0.01 dB between papers: SRCNN's table prints 30.23 / 27.54 at ×2 / ×3).
- ``srcnn``: Dong et al. 2016 (TPAMI), the 9-5-5 model (f1 = 9, f2 = 5, f3 = 5, n1 = 64, n2 = 32)
  trained on ImageNet (395,909 images of the ILSVRC 2013 detection training set): Set5 36.66 / 32.75 /
  30.49, Set14 32.45 / 29.30 / 27.50 (InsightDev/SRCNN-keras, SRCNN/README.md, "SRCNN-paper" column,
  which quotes the paper's choice of that model; Set5 ×2/×3 and the training set also in
  543877815/cv_practise, super_resolution/README.md). It is *not* the 9-1-5 (f2 = 1) network of
  :class:`imagegen_lib.sr.models.SRCNN`, nor trained on T91; the papers' 9-1-5 / 91-image numbers are
  not listed (not verified here).
- ``fsrcnn``: Dong et al. 2016 (ECCV), Set5 ×2 37.00, ×3 33.16 (543877815/cv_practise README, paper
  values in parentheses).
- ``espcn``: Shi et al. 2016, trained on ImageNet, Set5 ×3 33.13 (same README).
- ``vdsr``: Kim et al. 2016, all nine cells (the VDSR column that jmis.org's Table 3 of
  "jmis-8-2-101" reproduces; Set5 ×2/×3 also in the cv_practise README).
- ``edsr``, ``edsr_baseline``: not verified here (left empty).
"""

from __future__ import annotations

from .metrics import BICUBIC_BASELINES

__all__ = ["PUBLISHED", "published_psnr", "METHOD_ORDER"]

PUBLISHED: dict[str, dict] = {
    "bicubic": {"label": "Bicubic", "cite": "dong2016srcnn", "trained_on": "—",
                "psnr": dict(BICUBIC_BASELINES)},
    "srcnn": {"label": "SRCNN 9-5-5, ImageNet", "cite": "dong2016srcnn", "trained_on": "ImageNet",
              "psnr": {("Set5", 2): 36.66, ("Set5", 3): 32.75, ("Set5", 4): 30.49,
                       ("Set14", 2): 32.45, ("Set14", 3): 29.30, ("Set14", 4): 27.50}},
    "fsrcnn": {"label": "FSRCNN", "cite": "dong2016fsrcnn", "trained_on": "T91 + General-100",
               "psnr": {("Set5", 2): 37.00, ("Set5", 3): 33.16}},
    "espcn": {"label": "ESPCN, ImageNet", "cite": "shi2016espcn", "trained_on": "ImageNet",
              "psnr": {("Set5", 3): 33.13}},
    "vdsr": {"label": "VDSR", "cite": "kim2016vdsr", "trained_on": "T91 + BSD200",
             "psnr": {("Set5", 2): 37.53, ("Set5", 3): 33.66, ("Set5", 4): 31.35,
                      ("Set14", 2): 33.03, ("Set14", 3): 29.77, ("Set14", 4): 28.01,
                      ("BSD100", 2): 31.90, ("BSD100", 3): 28.82, ("BSD100", 4): 27.29}},
    "edsr_baseline": {"label": "EDSR-baseline", "cite": "lim2017edsr", "trained_on": "DIV2K", "psnr": {}},
    "edsr": {"label": "EDSR", "cite": "lim2017edsr", "trained_on": "DIV2K", "psnr": {}},
}
METHOD_ORDER = tuple(PUBLISHED)


def published_psnr(method: str, set_name: str, scale: int) -> float | None:
    """The published Y-PSNR of ``method`` on ``set_name`` ×``scale``, or None where not verified."""
    if method not in PUBLISHED:
        raise ValueError(f"unknown method {method!r}; the published table has {list(PUBLISHED)}")
    return PUBLISHED[method]["psnr"].get((set_name, int(scale)))
