"""What happens to images between the generator and the feature extractor, and how far it moves FID.

FID is computed on the features of pixels *as the evaluator reads them*, and a real pipeline
changes those pixels on the way, often without anyone deciding it should: samples are saved as
8-bit PNGs or as JPEGs, and images are resized to the feature extractor's input size by whatever
library the script imports. Each function here is one such step, so its effect on a metric can be
measured instead of guessed (the clean-fid study, Parmar et al. 2022, did this for Inception FID):

- :func:`quantise` — samples saved as 8-bit images: 256 grey levels, by rounding or truncation;
- :func:`jpeg` — samples saved as JPEG at a given quality, and read back;
- :func:`resize` — images brought to another size by one library's filter (PIL, or PyTorch's
  ``interpolate`` with or without antialiasing);
- :func:`fid_by_preprocessing` — FID of one pair of sets under several named preprocessings,
  with each set's features computed once per distinct transform.

Images go in and come out as float (N, C, H, W) tensors in [-1, 1] (the range of the generators
and of :func:`~imagegen_lib.metrics.core.check_images`); C is 1 (grey) or 3 (RGB).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from .core import Features, fid

__all__ = ["quantise", "jpeg", "resize", "RESIZE_METHODS", "fid_by_preprocessing"]

_TOL = 1e-3  # slack on the [-1, 1] check: float rounding, resampling overshoot already clipped


def _check(images: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Float (N, C, H, W) in [-1, 1] with C in (1, 3), or an error saying what is wrong."""
    if not torch.is_tensor(images):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{name} must be (N, C, H, W) with C = 1 or 3, got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must be float in [-1, 1], got {images.dtype}: convert 0..255 data with "
                        "x.float() / 127.5 - 1")
    if images.numel() and (not torch.isfinite(images).all()
                           or images.min() < -1 - _TOL or images.max() > 1 + _TOL):
        raise ValueError(f"{name} must lie in [-1, 1], got [{float(images.min()):.3g}, {float(images.max()):.3g}]"
                         " (or NaN/inf): this module does not guess the range of the data")
    return images


# ---------------------------------------------------------------------------------------------
# Saving: 8-bit quantisation and JPEG
# ---------------------------------------------------------------------------------------------

def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> 0..255 by rounding to the nearest level, as ``torchvision.utils.save_image`` does."""
    return ((x.float() + 1) * 127.5 + 0.5).floor().clamp(0, 255).to(torch.uint8)


def quantise(images: torch.Tensor, rounding: str = "round") -> torch.Tensor:
    """What do float samples become once saved as an 8-bit image (a PNG) and read back?

    Each pixel is mapped from [-1, 1] to [0, 255], put on one of the 256 integer levels, and mapped
    back. ``rounding="round"`` takes the nearest level (error at most half a level, 1/255 in [-1, 1]
    units; what ``torchvision.utils.save_image`` does); ``"floor"`` truncates, as
    ``(x * 255).astype(np.uint8)`` does, which moves every pixel *down* by up to one level
    (half a level on average): a systematic darkening, not just rounding noise.
    """
    x = _check(images).float()
    if rounding not in ("round", "floor"):
        raise ValueError(f"rounding must be 'round' or 'floor', got {rounding!r}")
    levels = (x + 1) * 127.5
    levels = (levels + 0.5).floor() if rounding == "round" else levels.floor()
    return levels.clamp(0, 255) / 127.5 - 1


def jpeg(images: torch.Tensor, quality: int) -> torch.Tensor:
    """What do samples become once saved as JPEG at ``quality`` (1-100, PIL's scale) and decoded?

    Each image is rounded to 8 bits (:func:`quantise`), encoded by PIL (libjpeg: 8×8 DCT blocks,
    coefficients quantised more coarsely the lower the quality; RGB images also lose colour
    resolution to 4:2:0 subsampling) and decoded back to [-1, 1]. JPEG is deterministic, but its
    error is not noise: it removes fine detail block by block and rings around edges.
    """
    from PIL import Image  # PIL is only needed here and in resize()

    x = _check(images)
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer from 1 to 100, got {quality!r}")
    pixels = _to_uint8(x).cpu().permute(0, 2, 3, 1).contiguous().numpy()  # (N, H, W, C) for PIL
    out = np.empty_like(pixels)
    mode = "L" if pixels.shape[-1] == 1 else "RGB"
    for i, im in enumerate(pixels):
        buffer = io.BytesIO()
        # 2-D uint8 arrays open as mode "L", (H, W, 3) ones as "RGB"
        Image.fromarray(im[..., 0] if mode == "L" else im).save(buffer, format="JPEG", quality=int(quality))
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert(mode))
        out[i] = decoded[..., None] if mode == "L" else decoded
    return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 127.5 - 1


# ---------------------------------------------------------------------------------------------
# Resizing
# ---------------------------------------------------------------------------------------------

# PIL resamples with a filter whose support is widened by the scale factor when it shrinks an
# image, so it low-pass filters before subsampling (antialiasing). F.interpolate's bilinear and
# bicubic by default (antialias=False) read only the 2 or 4 nearest source pixels per output pixel,
# whatever the factor: shrinking by more than 2× skips pixels, and detail finer than the new pixel
# grid folds back as spurious patterns (aliasing).
_PIL_FILTERS = {"pil-nearest": "NEAREST", "pil-box": "BOX", "pil-bilinear": "BILINEAR",
                "pil-bicubic": "BICUBIC", "pil-lanczos": "LANCZOS"}
# "torch-nearest" is F.interpolate's *default* mode ("nearest"): it reads source pixel floor(i * in / out),
# not the one under the output pixel's centre, so it also shifts the image towards the top-left corner,
# by about half an output pixel when shrinking (about one source pixel from 64 to 28); "nearest-exact"
# takes the pixel under the centre and does not.
_TORCH_MODES = {"torch-nearest": ("nearest", False), "torch-nearest-exact": ("nearest-exact", False),
                "torch-bilinear": ("bilinear", False),
                "torch-bicubic": ("bicubic", False), "torch-bilinear-antialias": ("bilinear", True),
                "torch-bicubic-antialias": ("bicubic", True), "torch-area": ("area", False)}
RESIZE_METHODS = tuple(_PIL_FILTERS) + tuple(_TORCH_MODES)


def resize(images: torch.Tensor, size: int | tuple[int, int], method: str) -> torch.Tensor:
    """What does the feature extractor see when ``method`` brings the images to ``size``?

    ``method`` is one of :data:`RESIZE_METHODS`: ``"pil-<filter>"`` resamples each channel as a
    float32 PIL image (antialiased when shrinking: the filter widens with the factor; clean-fid's
    choice is ``"pil-bicubic"``); ``"torch-<mode>"`` is ``F.interpolate`` with
    ``align_corners=False`` and, unless the name ends in ``-antialias``, PyTorch's default
    ``antialias=False`` — aliased when shrinking by more than 2×. ``"torch-nearest"`` is
    ``F.interpolate``'s default mode, which also shifts the image towards the top-left by about
    half an output pixel when shrinking (``"torch-nearest-exact"`` does not). The result is
    clipped to [-1, 1]: bicubic and Lanczos kernels overshoot next to sharp edges, and a saved
    image would be clipped too.
    """
    x = _check(images).float()
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
        raise ValueError(f"size must be a positive int or an (h, w) pair of them, got {size!r}")
    if method in _TORCH_MODES:
        mode, antialias = _TORCH_MODES[method]
        kwargs = {"align_corners": False, "antialias": antialias} if mode in ("bilinear", "bicubic") else {}
        return F.interpolate(x, size=(h, w), mode=mode, **kwargs).clamp(-1, 1)
    if method not in _PIL_FILTERS:
        raise ValueError(f"method must be one of {RESIZE_METHODS}, got {method!r}")
    from PIL import Image

    resample = getattr(Image.Resampling, _PIL_FILTERS[method])
    planes = x.cpu().reshape(-1, *x.shape[2:]).contiguous().numpy()  # each channel of each image, float32: mode "F"
    out = np.stack([np.asarray(Image.fromarray(p).resize((w, h), resample)) for p in planes])
    return torch.from_numpy(out).reshape(len(x), x.shape[1], h, w).clamp(-1, 1)


# ---------------------------------------------------------------------------------------------
# FID under several preprocessings
# ---------------------------------------------------------------------------------------------

Transform = Callable[[torch.Tensor], torch.Tensor]


def fid_by_preprocessing(extractor: Callable[[torch.Tensor], Features | torch.Tensor],
                         real: torch.Tensor, fake: torch.Tensor,
                         settings: Mapping[str, tuple[Transform | None, Transform | None]],
                         real_features: Features | torch.Tensor | None = None,
                         fake_features: Features | torch.Tensor | None = None) -> dict[str, float]:
    """How much does each preprocessing of the two sets move FID(real, fake)?

    ``settings`` maps a name to ``(transform of the reals, transform of the fakes)``; ``None`` leaves
    a set as it is, so ``{"clean": (None, None), "JPEG fakes": (None, lambda x: jpeg(x, 75))}``
    compares the untouched pair with JPEG-compressed samples. The same images go through every
    setting, so the differences between settings are the preprocessing's doing, not sampling
    noise (the FIDs themselves still carry the bias of their n).

    Features are computed once per set and distinct transform *object*: reuse one callable in
    several settings (a reals' resize in a matched and a mismatched setting) and it is extracted
    once. ``real_features``/``fake_features``, when given, are the untransformed sets' features
    (already computed elsewhere) and are used for ``None``. ``extractor`` maps images to
    :class:`Features` or to an (N, D) tensor, e.g. a :class:`FeatureExtractor`. Returns
    ``{name: FID}`` in the order of ``settings``.
    """
    if not settings:
        raise ValueError("settings is empty: name at least one (real transform, fake transform) pair")
    images = {"real": real, "fake": fake}
    cache: dict[tuple[str, int], tuple[Transform | None, Features | torch.Tensor]] = {}
    if real_features is not None:
        cache[("real", id(None))] = (None, real_features)
    if fake_features is not None:
        cache[("fake", id(None))] = (None, fake_features)

    def features(which: str, transform: Transform | None):
        key = (which, id(transform))  # the transform is kept in the value, so its id stays unique
        if key not in cache:
            if transform is not None and not callable(transform):
                raise TypeError(f"a transform must be callable or None, got {type(transform).__name__}")
            x = images[which] if transform is None else transform(images[which])
            cache[key] = (transform, extractor(x))
        return cache[key][1]

    result = {}
    for name, pair in settings.items():
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ValueError(f"setting {name!r} must be a (real transform, fake transform) pair, got {pair!r}")
        result[name] = fid(features("real", pair[0]), features("fake", pair[1]))
    return result
