"""MATLAB's ``imresize(img, scale, 'bicubic')`` in PyTorch — the resize behind every published SR number.

Super-resolution papers (SRCNN, VDSR, EDSR, RCAN, …) make their low-resolution test images with
MATLAB's ``imresize``, and their PSNRs are only comparable to yours if your LR images are the same
bytes. ``torch.nn.functional.interpolate(mode='bicubic')`` is *not* that resize: its cubic kernel
has a = -0.75 and it does not widen the kernel when shrinking (no antialiasing). MATLAB's is:

- **kernel**: Keys' cubic with a = -0.5, support [-2, 2];
- **antialiasing**: when shrinking by ``scale < 1`` the kernel is stretched to ``h(x) = scale *
  cubic(scale * x)`` (support ``4 / scale`` input pixels), i.e. a low-pass filter before sampling;
- **geometry**: output pixel ``x`` (1-based) samples input position ``u = x / scale + (1 - 1/scale) / 2``
  (pixel centres aligned, like ``align_corners=False``); weights are normalised to sum to 1;
- **boundary**: input indices outside the image are mirrored (symmetric padding: ``… 2 1 | 1 2 …``);
- **output size**: ``ceil(scale * in)`` per dimension (or the size you pass);
- **order**: the dimension with the smaller scale is resized first (rows first on a tie);
- **uint8 input**: each 1-D pass is computed in double and rounded (half away from zero) and
  clipped to uint8 before the next pass — ``imresizemex`` returns the class of its input.

:func:`imresize` works on float tensors of shape ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)``, on
CPU or CUDA, and is differentiable; :func:`imresize_uint8` mimics MATLAB on uint8 images. The
published bicubic baselines (Set5 ×2: 33.66 dB, …) are reproduced with it in ``tests/test_sr.py``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

__all__ = ["cubic", "contributions", "output_size", "imresize", "imresize_uint8"]

KERNEL_WIDTH = 4.0  # the cubic kernel's support, in input pixels, before antialiasing widens it


def cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel (a = -0.5 is MATLAB's and PIL's; PyTorch uses -0.75)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = ((a + 2) * ax3 - (a + 3) * ax2 + 1) * (ax <= 1)
    far = (a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a) * ((ax > 1) & (ax <= 2))
    return near + far


def output_size(in_size: int, scale: float) -> int:
    """MATLAB's ``ceil(scale * in)``; the 1e-9 keeps ``(1/3) * 255 = 85.00000000000001`` from becoming 86."""
    return int(math.ceil(scale * in_size - 1e-9))


@lru_cache(maxsize=256)
def contributions(in_len: int, out_len: int, scale: float, antialias: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Which input pixels (0-based, mirrored at the borders) feed each output pixel, and with what weights.

    Returns ``(indices, weights)``, both ``(out_len, P)``; each row of ``weights`` sums to 1.
    A line-by-line port of MATLAB's ``contributions`` (computed in float64, like MATLAB).
    """
    if scale < 1 and antialias:
        def kernel(x):  # stretched kernel = low-pass filter matched to the new sampling rate
            return scale * cubic(scale * x)
        width = KERNEL_WIDTH / scale
    else:
        kernel, width = cubic, KERNEL_WIDTH
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # where output pixel x lands in input coordinates (1-based)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # 1-based, may fall outside [1, in_len]
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])  # symmetric padding
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)  # MATLAB drops taps that are zero for every output pixel
    return indices[:, keep], weights[:, keep]


@lru_cache(maxsize=512)
def _device_contributions(in_len, out_len, scale, antialias, device, dtype):
    idx, w = contributions(in_len, out_len, scale, antialias)
    return (torch.as_tensor(idx, device=device).reshape(-1),
            torch.as_tensor(w, dtype=dtype, device=device))


def _resize_along(x: torch.Tensor, dim: int, out_len: int, scale: float, antialias: bool) -> torch.Tensor:
    """One 1-D pass along ``dim`` (2 = rows/height, 3 = columns/width) of an ``(N, C, H, W)`` tensor."""
    in_len = x.shape[dim]
    idx, w = _device_contributions(in_len, out_len, float(scale), antialias, x.device, x.dtype)
    taps = w.shape[1]
    picked = x.index_select(dim, idx)  # (N, C, out*P, W) or (N, C, H, out*P)
    if dim == 2:
        picked = picked.unflatten(2, (out_len, taps))  # (N, C, out, P, W)
        return (picked * w[:, :, None]).sum(3)  # (N, C, out, W)
    picked = picked.unflatten(3, (out_len, taps))  # (N, C, H, out, P)
    return (picked * w).sum(4)  # (N, C, H, out)


def _plan(h: int, w: int, scale, size) -> list[tuple[int, int, float]]:
    """``[(dim, out_len, scale), ...]`` in MATLAB's order (smaller scale first, rows first on a tie)."""
    if (scale is None) == (size is None):
        raise ValueError("imresize: pass exactly one of scale= (e.g. 1/3) or size= (out_h, out_w)")
    if size is not None:
        out_h, out_w = (int(s) for s in size)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"imresize: output size must be positive, got {size}")
        scales = (out_h / h, out_w / w)
    else:
        sy, sx = (float(scale), float(scale)) if np.isscalar(scale) else (float(s) for s in scale)
        if not (sy > 0 and sx > 0):
            raise ValueError(f"imresize: scale must be > 0, got {scale}")
        scales = (sy, sx)
        out_h, out_w = output_size(h, sy), output_size(w, sx)
    outs = (out_h, out_w)
    order = sorted((0, 1), key=lambda d: scales[d])  # stable: rows first on a tie, like MATLAB's sort
    return [(2 + d, outs[d], scales[d]) for d in order]


def _as_nchw(img: torch.Tensor) -> tuple[torch.Tensor, int]:
    if not torch.is_tensor(img):
        raise TypeError(f"imresize expects a torch tensor, got {type(img).__name__} (use torch.from_numpy)")
    if img.dim() not in (2, 3, 4):
        raise ValueError(f"imresize expects (H, W), (C, H, W) or (N, C, H, W), got shape {tuple(img.shape)}")
    ndim = img.dim()
    while img.dim() < 4:
        img = img.unsqueeze(0)
    return img, ndim


def _restore_dims(x: torch.Tensor, ndim: int) -> torch.Tensor:
    while x.dim() > ndim:
        x = x.squeeze(0)
    return x


def imresize(img: torch.Tensor, scale=None, size=None, antialias: bool = True) -> torch.Tensor:
    """Bicubic resize exactly like MATLAB's ``imresize(img, scale)`` on a *float* image.

    ``img``: float tensor ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)`` (any value range; float32 on
    CUDA is fine, float64 matches MATLAB to rounding). ``scale`` (a number, or ``(sy, sx)``) or
    ``size=(out_h, out_w)``. Differentiable. For uint8 images use :func:`imresize_uint8`.
    """
    x, ndim = _as_nchw(img)
    if not x.is_floating_point():
        raise TypeError(f"imresize works on float tensors, got {x.dtype}; for 8-bit images use imresize_uint8")
    for dim, out_len, s in _plan(x.shape[2], x.shape[3], scale, size):
        x = _resize_along(x, dim, out_len, s, antialias)
    return _restore_dims(x, ndim)


def _round_to_uint8(x: torch.Tensor) -> torch.Tensor:
    # MATLAB rounds half away from zero (torch.round rounds half to even); values are >= 0 here.
    return torch.floor(x.clamp(0, 255) + 0.5)


def imresize_uint8(img, scale=None, size=None, antialias: bool = True) -> torch.Tensor:
    """MATLAB's ``imresize`` on a uint8 image: each pass in float64, rounded and clipped to uint8.

    Accepts a uint8 tensor or numpy array ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)`` (channels
    first, as everywhere in this library); returns a uint8 tensor of the same layout.
    """
    if isinstance(img, np.ndarray):
        img = torch.from_numpy(img)
    x, ndim = _as_nchw(img)
    if x.dtype != torch.uint8:
        raise TypeError(f"imresize_uint8 expects a uint8 image, got {x.dtype}; for float images use imresize")
    x = x.double()
    for dim, out_len, s in _plan(x.shape[2], x.shape[3], scale, size):
        x = _round_to_uint8(_resize_along(x, dim, out_len, s, antialias))
    return _restore_dims(x.to(torch.uint8), ndim)
