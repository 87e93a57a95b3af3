"""BT.601 YCbCr with the "studio" range (MATLAB's ``rgb2ycbcr``): the colour space SR is scored and trained in.

Y = 16 + (65.481 R + 128.553 G + 24.966 B) for RGB in [0, 1], i.e. Y in [16, 235]; the papers'
PSNR is computed on it (:mod:`imagegen_lib.sr.metrics`), and ``--color y`` trains on it.
"""

from __future__ import annotations

from functools import lru_cache

import torch

__all__ = ["rgb_to_ycbcr", "ycbcr_to_rgb"]

# BT.601, studio range, for RGB in [0, 1] -> YCbCr in 8-bit code values (MATLAB's rgb2ycbcr).
_YCBCR = torch.tensor([[65.481, 128.553, 24.966],
                       [-37.797, -74.203, 112.0],
                       [112.0, -93.786, -18.214]], dtype=torch.float64)
_OFFSET = torch.tensor([16.0, 128.0, 128.0], dtype=torch.float64)


@lru_cache(maxsize=16)
def _ycbcr_constants(device: torch.device, dtype: torch.dtype, inverse: bool):
    # Cached per device: a fresh host-to-GPU copy in every training step would stall the GPU queue.
    m = torch.linalg.inv(_YCBCR) if inverse else _YCBCR
    return m.to(device, dtype), _OFFSET.to(device, dtype)[:, None, None]


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """``(…, 3, H, W)`` RGB in [0, 1] -> YCbCr in [0, 1] (8-bit code values / 255; Y in [16, 235] / 255)."""
    m, offset = _ycbcr_constants(x.device, x.dtype, False)
    return (torch.einsum("ij,...jhw->...ihw", m, x) + offset) / 255.0


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (no clamping: the caller decides)."""
    m, offset = _ycbcr_constants(x.device, x.dtype, True)
    return torch.einsum("ij,...jhw->...ihw", m, x * 255.0 - offset)
