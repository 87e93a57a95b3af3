"""Super-resolution metrics, scored the way the papers score them (the SRCNN / VDSR / EDSR protocol).

A PSNR is only comparable to a paper's when every step matches; each step below moves the number
by 0.1–1 dB if you change it (the Exercise B chapter measures how much):

1. **Y channel** of BT.601 YCbCr with the "studio" range, ``Y = 16 + (65.481 R + 128.553 G +
   24.966 B)`` for RGB in [0, 1], i.e. Y in [16, 235] — MATLAB's ``rgb2ycbcr``. Not RGB, not
   ``0.299 R + 0.587 G + 0.114 B`` on [0, 255] (that is the *full-range* luma, 255/219 larger).
   **A grayscale image is scored on its own gray levels** (full range, 0..255): the papers'
   MATLAB code converts only 3-channel images with ``rgb2ycbcr``. Repeating it to RGB first and
   taking the studio-range Y (EDSR's code does) shrinks its errors by 219/255 and *raises* its
   PSNR by 20 log10(255/219) = 1.32 dB — Set14's ``bridge`` alone moves the Set14 mean by 0.09 dB.
2. **Border shave**: ``scale`` pixels are cut from each side before scoring (the border is where
   resizers disagree most, and where a network sees zero padding).
3. **PSNR** = 10 log10(255² / MSE) on the Y values, per image, then averaged over the set.
4. **SSIM** (Wang et al. 2004) with their MATLAB reference's settings: 11×11 Gaussian window with
   σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering, mean of the SSIM map; on Y.
5. Beside these two *distortion* measures, one *image-statistics* measure, for the
   perception–distortion trade-off (Blau & Michaeli 2018): the **gradient energy ratio**
   (:func:`gradient_energy_ratio`), how much fine detail the output has relative to the truth,
   on the same shaved Y values. It is no quality score: noise raises it as much as real texture.

The images themselves are uint8 (how SR outputs are saved and scored) or floats in [0, 1].
:func:`evaluate_sr` runs the whole protocol — HR crop to a multiple of the scale, LR by MATLAB's
bicubic ``imresize``, upscaling, scoring — over Set5 / Set14 / BSD100.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .colour import rgb_to_ycbcr, ycbcr_to_rgb
from .data import load_sr_set, make_lr, modcrop
from .imresize import imresize_uint8

__all__ = ["rgb_to_y", "gray_levels", "rgb_to_ycbcr", "ycbcr_to_rgb", "shave", "psnr", "ssim", "gradient_energy",
           "gradient_energy_ratio", "subpixel_pattern", "score_sr", "to_uint8",
           "check_image", "evaluate_sr", "format_sr_report", "BICUBIC_BASELINES"]

# The published bicubic numbers (Y-PSNR, dB) every SR paper's table starts with (SRCNN, VDSR):
# reproducing them is the proof that LR images and scoring follow the protocol.
BICUBIC_BASELINES = {
    ("Set5", 2): 33.66, ("Set5", 3): 30.39, ("Set5", 4): 28.42,
    ("Set14", 2): 30.24, ("Set14", 3): 27.55, ("Set14", 4): 26.00,
}

def check_image(x: torch.Tensor, name: str = "image") -> torch.Tensor:
    """Validate an image (batch) and return it as float in [0, 1]: ``(C, H, W)`` or ``(N, C, H, W)``, C = 1 or 3.

    uint8 images are divided by 255; float images must already lie in [0, 1]: a float image with
    values up to 255 (forgot to divide) or down to -1 (a tanh output) is refused, because scoring it
    as-is would silently give a wrong PSNR.
    """
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__}")
    if x.dim() not in (3, 4) or x.shape[-3] not in (1, 3):
        raise ValueError(f"{name} must be (C, H, W) or (N, C, H, W) with C = 1 (gray) or 3 (RGB), "
                         f"got shape {tuple(x.shape)}; channels come first in this library")
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if not x.is_floating_point():
        raise TypeError(f"{name} must be uint8 or float, got {x.dtype}")
    lo, hi = float(x.min()), float(x.max())
    if hi > 1.0 + 1e-3:
        raise ValueError(f"{name} has values up to {hi:.4g}: it looks like a 0..255 image stored as float. "
                         "Pass it as uint8, or divide by 255 (float images must lie in [0, 1]).")
    if lo < -1e-3:
        raise ValueError(f"{name} has values down to {lo:.4g}: float images must lie in [0, 1] "
                         "(a tanh output in [-1, 1]? map it with (x + 1) / 2).")
    return x


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Quantise a float image in [0, 1] to uint8 the way an image file stores it (clamp, round)."""
    return (x.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """The BT.601 luma in 8-bit code values, [16, 235], as float64 ``(…, 1, H, W)``.

    ``x``: uint8 or float [0, 1], 3 channels (RGB) or 1 (gray: Y = 16 + 219 g — the same as the RGB
    formula with R = G = B, since its coefficients sum to 219). For *scoring* a grayscale image the
    protocol uses :func:`gray_levels` instead (see the module docstring).
    """
    x = check_image(x).double()
    if x.shape[-3] == 1:
        return 16.0 + 219.0 * x
    return rgb_to_ycbcr(x)[..., :1, :, :] * 255.0


def gray_levels(x: torch.Tensor) -> torch.Tensor:
    """What the protocol scores for a grayscale image: its gray levels on [0, 255], ``(…, 1, H, W)``.

    A 3-channel image (an RGB model's output for a gray input repeated to RGB) gives its full-range
    luma ``0.299 R + 0.587 G + 0.114 B`` — the gray level itself when R = G = B.
    """
    x = check_image(x).double()
    if x.shape[-3] == 1:
        return x * 255.0
    return (rgb_to_y(x) - 16.0) * (255.0 / 219.0)


def shave(x: torch.Tensor, border: int) -> torch.Tensor:
    """Cut ``border`` pixels from each side (the protocol shaves ``scale`` pixels)."""
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    if border == 0:
        return x
    if x.shape[-1] <= 2 * border or x.shape[-2] <= 2 * border:
        raise ValueError(f"image of {tuple(x.shape[-2:])} pixels is too small to shave {border} from each side")
    return x[..., border:-border, border:-border]


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> float:
    """PSNR in dB between two arrays of the same shape on the same scale (e.g. Y in 8-bit code values)."""
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
    mse = float(((a.double() - b.double()) ** 2).mean())
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(data_range ** 2 / mse)


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> list[float]:
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).tolist()


def _filter_valid(x: torch.Tensor, g: list[float]) -> torch.Tensor:
    """Separable Gaussian filtering of ``(H, W)``, 'valid' part only (MATLAB's ``filter2(w, x, 'valid')``).

    As shifted sums in float64: 20x faster on a CPU than a float64 ``conv2d`` with the 11x11 window.
    """
    k = len(g)
    h, w = x.shape[-2] - k + 1, x.shape[-1] - k + 1
    rows = sum(g[i] * x[..., :, i:i + w] for i in range(k))
    return sum(g[i] * rows[..., i:i + h, :] for i in range(k))


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 255.0) -> float:
    """Mean SSIM of two single-channel images ``(H, W)`` or ``(1, H, W)`` (Wang et al.'s MATLAB settings)."""
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
    x = a.double().reshape(a.shape[-2:])
    y = b.double().reshape(b.shape[-2:])
    if min(x.shape) < 11:
        raise ValueError(f"ssim needs images of at least 11x11 pixels (the Gaussian window), got {tuple(x.shape)}")
    g = _gaussian_1d()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    sxx = _filter_valid(x * x, g) - mu_x ** 2
    syy = _filter_valid(y * y, g) - mu_y ** 2
    sxy = _filter_valid(x * y, g) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
    return float(ssim_map.mean())


def gradient_energy(x: torch.Tensor) -> float:
    """How much fine detail (edges, texture, noise) does an image hold?

    The mean squared finite-difference gradient, ``mean((x[i, j+1] - x[i, j])²) + mean((x[i+1, j] -
    x[i, j])²)``, over ``(…, H, W)`` (every leading channel included), in float64 and in the squared
    units of ``x``. A constant image has 0; the measure ignores an offset and scales with the
    square of the contrast.
    """
    if x.dim() < 2 or x.shape[-1] < 2 or x.shape[-2] < 2:
        raise ValueError(f"gradient_energy needs an image of at least 2x2 pixels (…, H, W), got {tuple(x.shape)}")
    x = x.double()
    dx = x[..., :, 1:] - x[..., :, :-1]
    dy = x[..., 1:, :] - x[..., :-1, :]
    return float(dx.pow(2).mean() + dy.pow(2).mean())


def gradient_energy_ratio(sr: torch.Tensor, hr: torch.Tensor) -> float:
    """Does the super-resolved image have as much high-frequency energy as the ground truth?

    ``gradient_energy(sr) / gradient_energy(hr)`` of two arrays of the same shape on the same scale
    (the protocol: shaved Y values). 1.0: as much fine detail as the truth (not necessarily the
    same detail); < 1: smoother (bicubic, and nets trained for PSNR, which predict the *mean* of
    the plausible HR images — a blur of them); > 1: more (sharpening halos, noise, hallucinated
    texture). Scale- and offset-free. A flat ``hr`` gives 1.0 if ``sr`` is flat too, else inf.
    """
    if sr.shape != hr.shape:
        raise ValueError(f"gradient_energy_ratio: shapes differ, {tuple(sr.shape)} vs {tuple(hr.shape)}")
    e_sr, e_hr = gradient_energy(sr), gradient_energy(hr)
    if e_hr == 0:
        return 1.0 if e_sr == 0 else math.inf
    return e_sr / e_hr


def subpixel_pattern(sr: torch.Tensor, reference: torch.Tensor, scale: int) -> torch.Tensor:
    """Does the output carry a grid pattern with the upsampler's period?

    An upsampler that makes each LR pixel into a ``scale × scale`` block (sub-pixel convolution,
    transposed convolution) can learn a different bias per position in the block; the output then
    shows a regular grid of dots or stripes every ``scale`` pixels. Returns the ``(scale, scale)``
    table of the mean of ``sr - reference`` over the pixels at each position (row mod scale, column
    mod scale), in the units of the inputs (e.g. 8-bit Y levels), over ``(…, H, W)``. A clean output
    has entries near one common value; one entry far from the rest is the grid. ``reference`` is the
    ground truth or another model's output of the same image, the same shape.
    """
    if sr.shape != reference.shape:
        raise ValueError(f"subpixel_pattern: shapes differ, {tuple(sr.shape)} vs {tuple(reference.shape)}")
    if not isinstance(scale, int) or scale < 2 or sr.dim() < 2 or min(sr.shape[-2:]) < scale:
        raise ValueError(f"subpixel_pattern needs an integer scale >= 2 and an image (…, H, W) of at least "
                         f"scale x scale pixels; got scale={scale!r}, shape {tuple(sr.shape)}")
    diff = sr.double() - reference.double()
    return torch.tensor([[float(diff[..., i::scale, j::scale].mean()) for j in range(scale)] for i in range(scale)],
                        dtype=torch.float64)


def score_sr(sr: torch.Tensor, hr: torch.Tensor, scale: int, channel: str = "y", shave_border: bool = True,
             gray: bool | None = None, with_ssim: bool = True) -> dict:
    """PSNR, SSIM and gradient energy ratio of one super-resolved image against its HR original.

    ``sr``, ``hr``: ``(C, H, W)`` uint8 or float in [0, 1], same shape (crop HR to a multiple of the
    scale first: :func:`imagegen_lib.sr.data.modcrop`). ``channel='y'`` (the protocol) or ``'rgb'``;
    ``shave_border`` cuts ``scale`` pixels per side. ``gray``: the HR image is grayscale (default:
    when it has 1 channel); with ``channel='y'`` it is then scored on :func:`gray_levels`.
    ``with_ssim=False`` skips SSIM (NaN), which costs ~10x the PSNR on a CPU.
    """
    if channel not in ("y", "rgb"):
        raise ValueError(f"channel must be 'y' or 'rgb', got {channel!r}")
    for name, img in (("sr", sr), ("hr", hr)):
        if not torch.is_tensor(img) or img.dim() != 3:
            raise ValueError(f"score_sr scores one image at a time: {name} must be (C, H, W), got "
                             f"{tuple(img.shape) if torch.is_tensor(img) else type(img).__name__}")
    if sr.shape[0] != hr.shape[0]:
        raise ValueError(f"sr has {sr.shape[0]} channel(s) but hr has {hr.shape[0]}: a grayscale image compared "
                         "with an RGB one. Give both 3 channels (repeat a gray image: x.expand(3, -1, -1)) or both 1.")
    if sr.shape != hr.shape:
        raise ValueError(f"sr is {tuple(sr.shape[1:])} but hr is {tuple(hr.shape[1:])}: the HR image must be cropped "
                         f"to a multiple of the scale ({scale}) before making the LR image (sr.data.modcrop), so that "
                         "upscaling the LR image gives back exactly the HR size")
    if gray is None:
        gray = hr.shape[0] == 1
    if channel == "y":
        luma = gray_levels if gray else rgb_to_y
        a, b = luma(sr)[0], luma(hr)[0]
    else:
        a, b = check_image(sr).double() * 255.0, check_image(hr).double() * 255.0
    border = scale if shave_border else 0
    a, b = shave(a, border), shave(b, border)
    if a.dim() == 2:
        a, b = a[None], b[None]
    scores = {"psnr": psnr(a, b), "ssim": math.nan, "grad_energy_ratio": gradient_energy_ratio(a, b)}
    if with_ssim:
        scores["ssim"] = sum(ssim(a[c], b[c]) for c in range(a.shape[0])) / a.shape[0]
    return scores


def evaluate_sr(upscale: Callable[[torch.Tensor], torch.Tensor] | str, set_name: str, scale: int,
                channel: str = "y", shave_border: bool = True, lr_resize: str = "matlab",
                root=None, progress: bool = False, with_ssim: bool = True) -> dict:
    """Score an upscaler on a whole test set with the protocol above.

    ``upscale``: ``"bicubic"`` (MATLAB's bicubic on the uint8 LR image) or a function
    ``lr (1, 3, h, w) uint8 -> sr (1, 3, scale*h, scale*w)`` (uint8, or float in [0, 1], which is
    quantised to uint8 first, as saving the image would). ``lr_resize``: how the LR images are made,
    'matlab' (the protocol), 'pil' or 'torch' (for the sensitivity table). ``with_ssim=False``: PSNR
    only (SSIM is NaN), ~10x faster on a CPU.

    Returns ``{"set", "scale", "n", "psnr", "ssim", "grad_energy_ratio", "protocol",
    "images": [{"name", "psnr", "ssim", "grad_energy_ratio"}, …]}``; the set's numbers are means
    of the per-image ones.
    """
    if upscale == "bicubic":
        def upscale(lr):
            return imresize_uint8(lr, scale)
    elif not callable(upscale):
        raise ValueError(f"upscale must be 'bicubic' or a function, got {upscale!r}")
    rows = []
    images = load_sr_set(set_name, root=root)
    for item in (images if not progress else _bar(images, set_name)):
        hr = modcrop(item.hr, scale)
        lr = make_lr(hr, scale, lr_resize)
        with torch.no_grad():
            sr = upscale(lr[None])
        if sr.dtype != torch.uint8:
            sr = to_uint8(check_image(sr, "upscaled image"))
        sr = sr[0].cpu()
        if tuple(sr.shape) != tuple(hr.shape):
            raise ValueError(f"{set_name}/{item.name}: the upscaler returned {tuple(sr.shape)} for an LR image of "
                             f"{tuple(lr.shape)}; expected {tuple(hr.shape)} (scale {scale})")
        rows.append({"name": item.name, **score_sr(sr, hr, scale, channel, shave_border, gray=item.gray,
                                                    with_ssim=with_ssim)})
    means = {k: sum(r[k] for r in rows) / len(rows) for k in ("psnr", "ssim", "grad_energy_ratio")}
    return {"set": set_name, "scale": scale, "n": len(rows), **means,
            "protocol": {"channel": channel, "shave": scale if shave_border else 0, "lr_resize": lr_resize},
            "images": rows}


def _bar(items, desc):
    from tqdm.auto import tqdm
    return tqdm(items, desc=desc, unit="img", leave=False)


def format_sr_report(results: list[dict], label: str = "", verbose: bool = False) -> str:
    """One line per (set, scale) result of :func:`evaluate_sr` (and per image with ``verbose``).

    "grad-energy" is :func:`gradient_energy_ratio` (1 = as much fine detail as the truth).
    """
    lines = []
    for r in results:
        p = r["protocol"]
        chan = "Y-PSNR" if p["channel"] == "y" else "RGB-PSNR"
        lines.append(f"{label}{r['set']:<7} x{r['scale']}  {chan} {r['psnr']:6.2f} dB  SSIM {r['ssim']:.4f}"
                     f"  grad-energy {r['grad_energy_ratio']:.3f}"
                     f"   ({r['n']} images; shave {p['shave']}; LR by {p['lr_resize']})")
        if verbose:
            lines += [f"    {row['name']:<12} {row['psnr']:6.2f} dB  {row['ssim']:.4f}  {row['grad_energy_ratio']:.3f}"
                      for row in r["images"]]
    return "\n".join(lines)
