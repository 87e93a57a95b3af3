"""Super-resolution CNNs: SRCNN, ESPCN and a small EDSR-style residual network, in one file.

Every model maps an LR image ``(N, C, h, w)`` in [0, 1] to ``(N, C, scale*h, scale*w)``. C is 1
when the model works on the luma only (``color='y'``, as SRCNN and ESPCN did in their papers: the
metric is on Y, and the chroma is upscaled bicubically) or 3 (``color='rgb'``, as EDSR does).
:func:`super_resolve` hides the difference: RGB in, RGB out.

- :class:`SRCNN` (Dong et al. 2014/2016), the 9-1-5 network: bicubic upsampling *first*
  (MATLAB-style, :func:`imagegen_lib.sr.imresize.imresize`), then three convolutions at HR resolution
  (patch extraction 9×9 -> non-linear mapping 1×1 -> reconstruction 5×5). 'same' padding, so the
  output has the input's size (the paper's 'valid' convolutions shrink it by 12 px).
- :class:`ESPCN` (Shi et al. 2016): all convolutions at LR resolution, then the *sub-pixel
  convolution*: a conv to ``C·s²`` channels and ``PixelShuffle(s)``, which rearranges each pixel's
  ``s²`` channels into an ``s×s`` block. ~10-50× cheaper than SRCNN for the same receptive field.
- :class:`SRResNet` (EDSR-baseline-like, Lim et al. 2017): head conv, ``blocks`` residual blocks
  (conv-ReLU-conv, no batch norm, output scaled by ``res_scale``), a conv and a skip around the
  body, a PixelShuffle upsampler, a tail conv — plus a *global bicubic skip*: the net predicts
  only the difference between the HR image and its bicubic upscale. Its tail is zero-initialised,
  so an untrained SRResNet is exactly bicubic upsampling.
- :class:`PatchDiscriminator` is no SR model: the critic of an adversarial fine-tune
  (``imagegen train sr --adv-weight W``), which tells HR patches from super-resolved ones.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..core.training import count_parameters
from .colour import rgb_to_ycbcr, ycbcr_to_rgb
from .imresize import imresize

__all__ = ["SRCNN", "ESPCN", "SRResNet", "SR_ARCHS", "build_sr", "arch_defaults", "super_resolve",
           "self_ensemble", "count_parameters", "PatchDiscriminator"]


class _SRBase(nn.Module):
    """Holds what every SR model shares: the scale, the colour mode, the optional bicubic skip."""

    def __init__(self, scale: int, color: str, global_skip: bool):
        super().__init__()
        if not isinstance(scale, int) or scale < 2:
            raise ValueError(f"scale must be an integer >= 2, got {scale!r}")
        if color not in ("rgb", "y"):
            raise ValueError(f"color must be 'rgb' or 'y', got {color!r}")
        self.scale, self.color, self.global_skip = scale, color, global_skip
        self.channels = 3 if color == "rgb" else 1

    def bicubic(self, lr: torch.Tensor) -> torch.Tensor:
        """MATLAB-style bicubic upscale by ``self.scale`` (float32 even under autocast)."""
        return imresize(lr.float(), self.scale)

    def _check(self, lr: torch.Tensor) -> None:
        if lr.dim() != 4 or lr.shape[1] != self.channels:
            raise ValueError(f"{type(self).__name__} ({self.color}) expects (N, {self.channels}, h, w), got "
                             f"{tuple(lr.shape)}" + ("; it works on the luma: use super_resolve() for RGB images"
                                                     if self.color == "y" and lr.dim() == 4 and lr.shape[1] == 3 else ""))


class SRCNN(_SRBase):
    """SRCNN 9-1-5 with n1 = 64, n2 = 32 filters, on the bicubic-upsampled input."""

    def __init__(self, scale: int, color: str = "y", n1: int = 64, n2: int = 32, global_skip: bool = False):
        super().__init__(scale, color, global_skip)
        c = self.channels
        self.extract = nn.Conv2d(c, n1, 9, padding=4)  # patch extraction and representation
        self.map = nn.Conv2d(n1, n2, 1)  # non-linear mapping (1x1: each feature vector on its own)
        self.reconstruct = nn.Conv2d(n2, c, 5, padding=2)  # reconstruction (averages overlapping patches)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        self._check(lr)  # lr: (N, C, h, w)
        up = self.bicubic(lr)  # (N, C, s*h, s*w): SRCNN works at HR resolution from the start
        x = self.relu(self.extract(up))  # (N, 64, s*h, s*w)
        x = self.relu(self.map(x))  # (N, 32, s*h, s*w)
        x = self.reconstruct(x)  # (N, C, s*h, s*w)
        return x + up if self.global_skip else x


class ESPCN(_SRBase):
    """ESPCN: 5×5 -> 3×3 -> 3×3 convolutions at LR resolution (tanh), then a sub-pixel convolution."""

    def __init__(self, scale: int, color: str = "y", n1: int = 64, n2: int = 32, global_skip: bool = False):
        super().__init__(scale, color, global_skip)
        c = self.channels
        self.conv1 = nn.Conv2d(c, n1, 5, padding=2)
        self.conv2 = nn.Conv2d(n1, n2, 3, padding=1)
        self.conv3 = nn.Conv2d(n2, c * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        self._check(lr)  # lr: (N, C, h, w)
        x = torch.tanh(self.conv1(lr))  # (N, 64, h, w)
        x = torch.tanh(self.conv2(x))  # (N, 32, h, w)
        x = self.conv3(x)  # (N, C*s*s, h, w): s*s sub-pixel values per LR pixel and channel
        x = self.shuffle(x)  # (N, C, s*h, s*w)
        return x + self.bicubic(lr) if self.global_skip else x


class ResBlock(nn.Module):
    """conv-ReLU-conv, scaled by ``res_scale``, plus the identity (EDSR: no batch norm)."""

    def __init__(self, width: int, res_scale: float):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, F, h, w)
        return x + self.res_scale * self.conv2(self.relu(self.conv1(x)))  # (N, F, h, w)


class Upsampler(nn.Sequential):
    """PixelShuffle upsampling: one ×s stage for s = 2, 3; two ×2 stages for s = 4 (as EDSR)."""

    def __init__(self, scale: int, width: int):
        stages = [2] * int(math.log2(scale)) if scale & (scale - 1) == 0 else [scale]
        layers = []
        for s in stages:
            layers += [nn.Conv2d(width, width * s * s, 3, padding=1),  # (N, F*s*s, h, w)
                       nn.PixelShuffle(s)]  # (N, F, s*h, s*w)
        super().__init__(*layers)


class SRResNet(_SRBase):
    """EDSR-baseline-like: ``blocks`` residual blocks of ``width`` channels, PixelShuffle, bicubic skip."""

    def __init__(self, scale: int, color: str = "rgb", width: int = 64, blocks: int = 16, res_scale: float = 1.0,
                 global_skip: bool = True):
        super().__init__(scale, color, global_skip)
        c = self.channels
        self.head = nn.Conv2d(c, width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(width, res_scale) for _ in range(blocks)])
        self.body_end = nn.Conv2d(width, width, 3, padding=1)
        self.upsample = Upsampler(scale, width)
        self.tail = nn.Conv2d(width, c, 3, padding=1)
        if global_skip:  # start as exactly bicubic; training learns the residual from there
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        self._check(lr)  # lr: (N, C, h, w)
        x = self.head(lr - 0.5)  # (N, F, h, w); centred input
        x = x + self.body_end(self.body(x))  # (N, F, h, w): blocks, then the long skip around them
        x = self.upsample(x)  # (N, F, s*h, s*w)
        x = self.tail(x)  # (N, C, s*h, s*w)
        return x + self.bicubic(lr) if self.global_skip else x


class PatchDiscriminator(nn.Module):
    """Does this HR patch look real, region by region? A PatchGAN-style critic (Isola et al. 2017).

    Three stride-2 convolutions give one logit per 8×8 pixels, each seeing a 40×40 window: D judges
    local texture (what an L1-trained net blurs away), not the layout of a whole patch, and a
    96×96 patch gives it 144 verdicts instead of one.

    Every convolution is spectrally normalised (Miyato et al. 2018) rather than batch-normalised,
    because (1) D is then 1-Lipschitz, so the gradient it hands the generator stays bounded: a
    pre-trained SR net is fine-tuned by small nudges rather than kicked away from its PSNR optimum
    when D gets confident, and non-saturating BCE needs no gradient penalty; and (2) there are no
    batch statistics, so real and fake patches are judged alike and D's whole state is its weights
    and power-iteration vectors (``_u``, ``_v`` are buffers: they are saved, so a resume is exact).
    """

    def __init__(self, channels: int = 3, width: int = 64):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            # (N, C, H, W) in [0, 1], centred below
            spectral_norm(nn.Conv2d(channels, w, 3, stride=1, padding=1)), nn.LeakyReLU(0.2, True),
            # (N, w, H, W)
            spectral_norm(nn.Conv2d(w, w, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, True),
            # (N, w, H/2, W/2)
            spectral_norm(nn.Conv2d(w, 2 * w, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, True),
            # (N, 2w, H/4, W/4)
            spectral_norm(nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, True),
            # (N, 4w, H/8, W/8)
            spectral_norm(nn.Conv2d(4 * w, 1, 3, stride=1, padding=1)),
            # (N, 1, H/8, W/8) logits: one verdict per 40x40 receptive field
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-1] < 8 or x.shape[-2] < 8:
            raise ValueError(f"PatchDiscriminator expects (N, C, H, W) patches of at least 8x8 pixels, "
                             f"got {tuple(x.shape)}")
        return self.net(x - 0.5)  # (N, 1, H/8, W/8)


SR_ARCHS = {"srcnn": SRCNN, "espcn": ESPCN, "resnet": SRResNet}

# Defaults per architecture: the papers' colour mode (SRCNN and ESPCN train on Y, EDSR on RGB),
# and the bicubic skip only where the model was designed with one.
_DEFAULTS = {
    "srcnn": {"color": "y", "global_skip": False},
    "espcn": {"color": "y", "global_skip": False},
    "resnet": {"color": "rgb", "global_skip": True},
}


def arch_defaults(arch: str) -> dict:
    if arch not in SR_ARCHS:
        raise ValueError(f"unknown super-resolution architecture {arch!r}; choose one of {sorted(SR_ARCHS)}")
    return dict(_DEFAULTS[arch])


def build_sr(arch: str, scale: int, **kwargs) -> _SRBase:
    """``build_sr('resnet', 3, width=64, blocks=16)``; unknown names give a list of the known ones."""
    kw = {**arch_defaults(arch), **{k: v for k, v in kwargs.items() if v is not None}}
    return SR_ARCHS[arch](scale, **kw)


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the 8 symmetries of the square (k < 4: rotations; k >= 4: transposed first)."""
    if k >= 4:
        x = x.transpose(-1, -2)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def _dihedral_inverse(x: torch.Tensor, k: int) -> torch.Tensor:
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    return x.transpose(-1, -2) if k >= 4 else x


@torch.no_grad()
def self_ensemble(model: nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """EDSR's "+" (geometric self-ensemble): average the model over the 8 flips/rotations of the input.

    8× the compute for typically +0.05–0.15 dB. Papers mark such results with "+": report them
    separately from the single-pass numbers.
    """
    return sum(_dihedral_inverse(model(_dihedral(lr, k)), k) for k in range(8)) / 8


@torch.no_grad()
def super_resolve(model: _SRBase, lr_rgb: torch.Tensor, ensemble: bool = False) -> torch.Tensor:
    """RGB in [0, 1] ``(N, 3, h, w)`` -> RGB ``(N, 3, s*h, s*w)``, clamped to [0, 1].

    A luma model (``color='y'``) super-resolves Y; Cb and Cr get MATLAB bicubic upscaling, as in
    the SRCNN and ESPCN papers.
    """

    if lr_rgb.dim() != 4 or lr_rgb.shape[1] != 3:
        raise ValueError(f"super_resolve expects an RGB batch (N, 3, h, w) in [0, 1], got {tuple(lr_rgb.shape)}")
    run = (lambda x: self_ensemble(model, x)) if ensemble else model
    if model.color == "rgb":
        return run(lr_rgb).float().clamp(0, 1)
    ycc = rgb_to_ycbcr(lr_rgb.float())
    y = run(ycc[:, :1]).float()  # (N, 1, s*h, s*w)
    cbcr = imresize(ycc[:, 1:], model.scale)  # (N, 2, s*h, s*w)
    return ycbcr_to_rgb(torch.cat([y, cbcr], 1)).clamp(0, 1)
