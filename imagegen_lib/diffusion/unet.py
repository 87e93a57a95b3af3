"""The denoising network of every diffusion and flow model in the book: a small U-Net for 28×28 images.

28 → 14 → 7 and back, one residual block per level. The noise level enters every block through a
sinusoidal embedding and an MLP (``t`` is the DDPM's step index, 0…T−1, or ``1000·t`` for flow
matching's ``t ∈ [0, 1]``: the same range of frequencies either way); self-attention at 7×7; skip
connections by concatenation; GroupNorm + SiLU. Its last convolution starts at zero, so an
untrained model outputs 0.

**Class conditioning** (``num_classes > 0``): a learnt embedding of the label is added to the
time embedding. One extra index, ``num_classes``, is the *null label* — "no class given" — which
classifier-free guidance trains by dropping labels at random (:mod:`imagegen_lib.diffusion.guidance`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["timestep_embedding", "ResBlock", "SelfAttention", "UNet"]


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style sinusoids of the step: ``(N,)`` -> ``(N, dim)``, frequencies 1 .. 1/10⁴."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]  # (N, dim/2)
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)  # (N, dim)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)  # 8 groups; fewer when the width doesn't allow (tests)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, + the time embedding, GroupNorm-SiLU-conv, + a skip.

    ``(N, c_in, H, W) -> (N, c_out, H, W)``.
    """

    def __init__(self, c_in: int, c_out: int, t_dim: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(t_dim, c_out)  # tells the block how noisy its input is
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (N, c_out, H, W)
        h = h + self.time(F.silu(t_emb))[:, :, None, None]  # (N, c_out, H, W): a per-channel shift
        h = self.conv2(F.silu(self.norm2(h)))  # (N, c_out, H, W)
        return self.skip(x) + h  # (N, c_out, H, W)


class SelfAttention(nn.Module):
    """Multi-head self-attention over the ``H·W`` positions (used at 7×7 = 49 tokens: cheap)."""

    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.heads = heads
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        qkv = self.qkv(self.norm(x))  # (N, 3C, H, W)
        q, k, v = qkv.reshape(n, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        # q, k, v: (N, heads, H·W, C/heads)
        a = F.scaled_dot_product_attention(q, k, v)  # (N, heads, H·W, C/heads)
        a = a.transpose(-1, -2).reshape(n, c, h, w)  # (N, C, H, W)
        return x + self.out(a)  # (N, C, H, W)


class UNet(nn.Module):
    """The network of ``(N, 1, 28, 28)`` images at noise level ``t``; ``channels = (c1, c2, c3)`` at 28², 14², 7².

    Default (64, 128, 128): 2.3 M parameters, 9 MB in float32. ``num_classes > 0``: conditioned on a
    label in ``0 … num_classes − 1``, or on :attr:`null_label` (= ``num_classes``) for "no label".
    """

    def __init__(self, channels: tuple[int, int, int] = (64, 128, 128), attention: bool = True,
                 num_classes: int = 0):
        super().__init__()
        c1, c2, c3 = channels
        self.channels = tuple(channels)
        self.num_classes = int(num_classes)
        t_dim = 4 * c1
        self.time_mlp = nn.Sequential(nn.Linear(c1, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        # One row per class and one for the null label; starts at 0, so labels first change nothing.
        self.label_emb = nn.Embedding(self.num_classes + 1, t_dim) if self.num_classes else None
        if self.label_emb is not None:
            nn.init.zeros_(self.label_emb.weight)
        self.conv_in = nn.Conv2d(1, c1, 3, padding=1)
        self.down1 = ResBlock(c1, c1, t_dim)
        self.pool1 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.down2 = ResBlock(c1, c2, t_dim)
        self.pool2 = nn.Conv2d(c2, c2, 3, stride=2, padding=1)
        self.down3 = ResBlock(c2, c3, t_dim)
        self.mid_attn = SelfAttention(c3) if attention else nn.Identity()
        self.mid = ResBlock(c3, c3, t_dim)
        self.up3 = ResBlock(c3 + c3, c3, t_dim)
        self.unpool2 = nn.Conv2d(c3, c3, 3, padding=1)
        self.up2 = ResBlock(c3 + c2, c2, t_dim)
        self.unpool1 = nn.Conv2d(c2, c2, 3, padding=1)
        self.up1 = ResBlock(c2 + c1, c1, t_dim)
        self.norm_out = _norm(c1)
        self.conv_out = nn.Conv2d(c1, 1, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # start as "predict no noise": a calm, stable start
        nn.init.zeros_(self.conv_out.bias)

    @property
    def null_label(self) -> int:
        """The label index that means "no class" (classifier-free guidance's unconditional model)."""
        if not self.num_classes:
            raise ValueError("this U-Net is unconditional: it has no null label")
        return self.num_classes

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # x: (N, 1, 28, 28), t: (N,), labels: (N,) long or None
        emb = self.time_mlp(timestep_embedding(t, self.channels[0]))  # (N, 4·c1)
        if self.label_emb is not None:
            if labels is None:
                labels = torch.full((x.shape[0],), self.null_label, device=x.device, dtype=torch.long)
            emb = emb + self.label_emb(labels)  # (N, 4·c1)
        elif labels is not None:
            raise ValueError("labels given to an unconditional U-Net (train with --cond-drop for a class-conditional one)")
        h1 = self.down1(self.conv_in(x), emb)  # (N, c1, 28, 28)
        h2 = self.down2(self.pool1(h1), emb)  # (N, c2, 14, 14)
        h3 = self.down3(self.pool2(h2), emb)  # (N, c3, 7, 7)
        h = self.mid(self.mid_attn(h3), emb)  # (N, c3, 7, 7)
        h = self.up3(torch.cat([h, h3], dim=1), emb)  # (N, c3, 7, 7)
        h = self.unpool2(F.interpolate(h, scale_factor=2, mode="nearest"))  # (N, c3, 14, 14)
        h = self.up2(torch.cat([h, h2], dim=1), emb)  # (N, c2, 14, 14)
        h = self.unpool1(F.interpolate(h, scale_factor=2, mode="nearest"))  # (N, c2, 28, 28)
        h = self.up1(torch.cat([h, h1], dim=1), emb)  # (N, c1, 28, 28)
        return self.conv_out(F.silu(self.norm_out(h)))  # (N, 1, 28, 28): ε̂, x̂₀, v̂ or û, as trained
