"""Super-resolution data: the benchmark sets, HR/LR pairs, and a patch sampler that lives on the GPU.

**Sets** (all real images, read from ``<root>/sr/<Set>/``; where they are looked for and where a
missing set is downloaded from is :mod:`imagegen_lib.core.data_files`' business: ``$IMAGEGEN_DATA``
alone when set, else ``../shared/data`` beside the repository, then ``~/.cache/imagegen/data``;
every file sha256-checked each time it is read):

- ``T91`` — training (Yang et al. 2010; 91 images, 78×78 … 508×233);
- ``Set5``, ``Set14``, ``BSD100`` — evaluation (Set14's ``bridge`` is grayscale: it is read as gray
  and repeated to 3 channels, as EDSR does, so its luma is its gray level).

**Pairs**: the HR image is cropped to a multiple of the scale (:func:`modcrop`), and the LR image
is ``imresize(hr, 1/scale)`` with MATLAB's antialiased bicubic on uint8 (:func:`make_lr`), exactly
as the papers made theirs.

**Patches**: :class:`PatchSampler` keeps all training pairs on the device as one flat uint8
buffer and draws random aligned LR/HR patches — including a random flip/rotation per patch —
with one gather per batch: no ``DataLoader``, no CPU work per step, so the GPU never waits.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# The file-level half (the sets' specs, finding, downloading) lives in core.data_files, which needs no torch.
from ..core.data import DataCorruptedError, DataNotFoundError
from ..core.data_files import (SR_SETS, SRSetSpec, _download_sr_set, _files_of, data_root, download_sr_sets,
                               find_sr_set, pixel_sha256)
from ..core.file_hashes import FILE_SHA256, T91_PIXEL_SHA256
from .colour import rgb_to_ycbcr
from .imresize import imresize_uint8

__all__ = ["SR_SETS", "SRSetSpec", "SRImage", "find_sr_set", "load_sr_set", "verify_sr_sets", "download_sr_sets",
           "modcrop", "make_lr", "LR_RESIZERS", "PatchSampler", "FSRCNN_DOWNSCALES"]


@dataclass(frozen=True)
class SRImage:
    name: str  # file stem, e.g. 'baby'
    hr: torch.Tensor  # (3, H, W) uint8; a grayscale file is repeated to 3 channels
    gray: bool  # the file was grayscale


def _read_verified(set_name: str, path: Path) -> Image.Image:
    blob = path.read_bytes()
    expected = FILE_SHA256[f"{set_name}/{path.name}"]
    try:
        img = Image.open(io.BytesIO(blob))
        img.load()
    except OSError as e:
        raise DataCorruptedError(f"{path}: not a readable image ({e}); delete it and download again.") from None
    if hashlib.sha256(blob).hexdigest() != expected and not (
            set_name == "T91" and pixel_sha256(img) == T91_PIXEL_SHA256.get(path.stem)):
        raise DataCorruptedError(
            f"{path}: sha256 does not match the published file ({expected[:12]}…): corrupted or a different "
            "version of the image. Delete it and download again (imagegen data download sr).")
    return img


def _to_tensor(img: Image.Image, path: Path) -> tuple[torch.Tensor, bool]:
    if img.mode == "L":  # grayscale: repeat to RGB so every image has 3 channels (Y = gray level)
        x = torch.from_numpy(np.asarray(img).copy())[None].expand(3, -1, -1).contiguous()
        return x, True
    if img.mode != "RGB":
        raise DataCorruptedError(f"{path}: image mode {img.mode!r}; expected RGB or L (grayscale)")
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).contiguous(), False


@lru_cache(maxsize=8)
def _load(name: str, folder: Path) -> tuple[SRImage, ...]:
    out = []
    for f in _files_of(name):
        path = folder / f
        hr, gray = _to_tensor(_read_verified(name, path), path)
        out.append(SRImage(Path(f).stem, hr, gray))
    return tuple(out)


def load_sr_set(name: str, root=None, download: bool = False) -> list[SRImage]:
    """All images of ``name`` as :class:`SRImage` (uint8 ``(3, H, W)``), verified, in natural order."""
    try:
        folder = find_sr_set(name, root)
    except DataNotFoundError:
        if not download:
            raise
        folder = _download_sr_set(name, Path(root) if root is not None else data_root())
    return list(_load(name, folder.resolve()))


def verify_sr_sets(names=None, root=None) -> dict[str, Path]:
    """sha256-check every file of the given sets (default: all four); returns ``{set: folder}``."""
    found = {}
    for name in names or SR_SETS:
        found[name] = find_sr_set(name, root)
        _load.cache_clear()
        _load(name, found[name].resolve())
    return found


# ---------------------------------------------------------------------------------------------
# HR/LR pairs
# ---------------------------------------------------------------------------------------------

def modcrop(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom/right of ``(…, H, W)`` so both sides are multiples of ``scale`` (MATLAB's ``modcrop``)."""
    h, w = hr.shape[-2:]
    if h < scale or w < scale:
        raise ValueError(f"image of {h}x{w} pixels is smaller than the scale {scale}")
    return hr[..., :h - h % scale, :w - w % scale]


def _lr_matlab(hr: torch.Tensor, scale: int) -> torch.Tensor:
    return imresize_uint8(hr, 1.0 / scale)


def _lr_pil(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """PIL's bicubic (also a = -0.5 with antialiasing, but its own borders and fixed-point rounding)."""
    h, w = hr.shape[-2:]
    arr = hr.permute(1, 2, 0).cpu().numpy()
    out = np.asarray(Image.fromarray(arr).resize((w // scale, h // scale), Image.BICUBIC))
    return torch.from_numpy(out.copy()).permute(2, 0, 1)


def _lr_torch(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """``F.interpolate(mode='bicubic')``: a = -0.75 and no antialiasing — the common mistake."""
    h, w = hr.shape[-2:]
    x = torch.nn.functional.interpolate(hr[None].double(), size=(h // scale, w // scale), mode="bicubic",
                                        align_corners=False)
    return x[0].clamp(0, 255).round().to(torch.uint8)


LR_RESIZERS = {"matlab": _lr_matlab, "pil": _lr_pil, "torch": _lr_torch}


def make_lr(hr: torch.Tensor, scale: int, method: str = "matlab") -> torch.Tensor:
    """The LR image of a uint8 ``(3, H, W)`` HR image whose sides are multiples of ``scale``."""
    if method not in LR_RESIZERS:
        raise ValueError(f"unknown LR resize {method!r}; choose one of {list(LR_RESIZERS)}")
    if hr.dtype != torch.uint8 or hr.dim() != 3 or hr.shape[0] not in (1, 3):
        raise ValueError(f"make_lr expects a uint8 (C, H, W) image with C = 1 or 3, got {hr.dtype} "
                         f"{tuple(hr.shape)}")
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"HR image of {h}x{w} pixels is not divisible by the scale {scale}: crop it first "
                         f"with modcrop(hr, {scale}) (gives {h - h % scale}x{w - w % scale}), or the SR output "
                         "cannot match it in size")
    return LR_RESIZERS[method](hr, scale)


# ---------------------------------------------------------------------------------------------
# The on-device patch sampler
# ---------------------------------------------------------------------------------------------

FSRCNN_DOWNSCALES = (1.0, 0.9, 0.8, 0.7, 0.6)  # FSRCNN's augmentation: each image also at 4 smaller sizes


class PatchSampler:
    """Random aligned (LR, HR) patch pairs drawn on the device, with random flips/90° rotations.

    Every training image ``hr`` (uint8 ``(3, H, W)``) is first shrunk by each factor in
    ``downscales`` (MATLAB bicubic; FSRCNN's augmentation), cropped to a multiple of ``scale`` and
    paired with its LR image ``imresize(hr, 1/scale)`` (uint8, like the test LR images). All pairs
    are packed into two flat uint8 buffers on ``device``. A batch is one ``take`` from each buffer at
    indices computed on the device: patch origins are uniform over all valid positions of all
    images, and each patch gets one of the 8 symmetries of the square, applied to its *indices*
    (the LR and HR patches get the same one, so they stay aligned).

    ``patch``: LR patch side (the HR patch is ``scale * patch``). Images whose LR side is smaller
    than ``patch`` are skipped (``skipped`` lists them); if all are, it is an error.
    ``color='y'`` returns the luma only (1 channel, Y / 255 in [16/255, 235/255]).
    """

    def __init__(self, images: list[torch.Tensor], scale: int, patch: int, downscales=(1.0,),
                 color: str = "rgb", device="cpu"):
        if color not in ("rgb", "y"):
            raise ValueError(f"color must be 'rgb' or 'y', got {color!r}")
        if patch < 1 or scale < 1:
            raise ValueError(f"patch and scale must be >= 1, got patch={patch}, scale={scale}")
        self.scale, self.patch, self.color = int(scale), int(patch), color
        self.device = torch.device(device)
        self.skipped: list[str] = []
        lr_parts, hr_parts, shapes = [], [], []
        for i, hr in enumerate(images):
            if not torch.is_tensor(hr) or hr.dtype != torch.uint8 or hr.dim() != 3 or hr.shape[0] != 3:
                raise ValueError(f"training image {i} must be a uint8 (3, H, W) tensor (gray: repeat to 3 channels), "
                                 f"got {hr.dtype if torch.is_tensor(hr) else type(hr).__name__} "
                                 f"{tuple(hr.shape) if torch.is_tensor(hr) else ''}")
            for f in downscales:
                small = hr if f == 1.0 else imresize_uint8(hr.to(self.device), f)
                h, w = small.shape[-2:]
                if h // scale < patch or w // scale < patch:
                    self.skipped.append(f"image {i} at x{f} ({h}x{w})")
                    continue
                pair_hr = modcrop(small.to(self.device), scale)
                pair_lr = imresize_uint8(pair_hr, 1.0 / scale)
                hr_parts.append(pair_hr.reshape(-1))
                lr_parts.append(pair_lr.reshape(-1))
                shapes.append(pair_lr.shape[-2:])
        if not shapes:
            raise ValueError(f"every training image is smaller than the patch: an LR patch of {patch} px at scale "
                             f"{scale} needs HR images of at least {patch * scale}x{patch * scale} px. "
                             "Use a smaller --patch.")
        self.lr_buf, self.hr_buf = torch.cat(lr_parts), torch.cat(hr_parts)
        self.n_pairs = len(shapes)
        hw = torch.tensor([list(s) for s in shapes], dtype=torch.int64)
        lr_sizes = 3 * hw[:, 0] * hw[:, 1]
        self._lr_off = (torch.cumsum(lr_sizes, 0) - lr_sizes).to(self.device)
        self._hr_off = self._lr_off * scale * scale
        self._h, self._w = hw[:, 0].to(self.device), hw[:, 1].to(self.device)
        positions = (hw[:, 0] - patch + 1) * (hw[:, 1] - patch + 1)  # valid top-left corners per pair
        self._positions = positions.to(self.device)
        self._cum_pos = torch.cumsum(positions, 0).to(self.device)
        self.n_positions = int(positions.sum())
        self._grid_lr = self._grid(patch)
        self._grid_hr = self._grid(patch * scale)

    def _grid(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        r = torch.arange(n, device=self.device)
        return r[:, None].expand(n, n), r[None, :].expand(n, n)

    def __repr__(self) -> str:
        return (f"PatchSampler({self.n_pairs} HR/LR pairs, x{self.scale}, LR patch {self.patch}, {self.color}, "
                f"{self.n_positions:,} patch positions, {self.lr_buf.numel() + self.hr_buf.numel():,} bytes on "
                f"{self.device}; {len(self.skipped)} skipped as smaller than the patch)")

    @staticmethod
    def _symmetry(rows, cols, n, t):
        """Apply symmetry ``t`` (0..7: bit 0 flip rows, bit 1 flip cols, bit 2 transpose) to an index grid."""
        t = t[:, None, None]
        transpose = (t & 4) > 0
        r = torch.where(transpose, cols, rows)  # (B, n, n)
        c = torch.where(transpose, rows, cols)
        r = torch.where((t & 1) > 0, n - 1 - r, r)
        c = torch.where((t & 2) > 0, n - 1 - c, c)
        return r, c

    def _take(self, buf, off, width, height, y0, x0, n, t, grid):
        r, c = self._symmetry(grid[0][None], grid[1][None], n, t)  # (B, n, n) source offsets in the patch
        ch = torch.arange(3, device=self.device)[None, :, None, None]
        idx = (off[:, None, None, None] + ch * (height * width)[:, None, None, None]
               + (y0[:, None, None, None] + r[:, None]) * width[:, None, None, None]
               + (x0[:, None, None, None] + c[:, None]))  # (B, 3, n, n)
        return buf.take(idx)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lr, hr)``: float ``(B, C, p, p)`` and ``(B, C, s*p, s*p)`` in [0, 1] on the device (C = 3 or 1)."""
        pos = torch.randint(self.n_positions, (batch_size,), generator=generator, device=self.device)
        sym = torch.randint(8, (batch_size,), generator=generator, device=self.device)
        img = torch.searchsorted(self._cum_pos, pos, right=True)  # which pair each position falls in
        pos = pos - (self._cum_pos[img] - self._positions[img])  # the position inside that pair
        span = self._w[img] - self.patch + 1
        y0, x0 = pos // span, pos % span
        h, w, s = self._h[img], self._w[img], self.scale
        lr = self._take(self.lr_buf, self._lr_off[img], w, h, y0, x0, self.patch, sym, self._grid_lr)
        hr = self._take(self.hr_buf, self._hr_off[img], w * s, h * s, y0 * s, x0 * s, self.patch * s, sym,
                        self._grid_hr)
        lr, hr = lr.float() / 255.0, hr.float() / 255.0
        if self.color == "y":
            lr, hr = rgb_to_ycbcr(lr)[:, :1], rgb_to_ycbcr(hr)[:, :1]
        return lr, hr
