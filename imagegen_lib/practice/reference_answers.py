"""The interview's reference answers, bugs included — kept runnable for the spot-the-bug drills.

Nothing here is meant to be used: each object reproduces a mistake so that a notebook can *run*
it and show the symptom. The fixed versions live in :mod:`imagegen_lib.gan.models` and
:mod:`imagegen_lib.sr.models`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SoftmaxMLPGenerator", "BuggySRNet"]


class SoftmaxMLPGenerator(nn.Module):
    """Exercise A's reference generator. Spot the bug before reading the next line.

    BUG: ``Softmax`` over the 784 outputs makes the pixels positive and *sum to 1*. A real
    digit has ~100-150 bright pixels of value ≈ 1 (total ink ≈ 100 on a [0, 1] scale); this
    generator can spend one unit of ink in total. The discriminator only has to add up the
    pixels to win, and G can never produce a digit. Fix: ``tanh`` (data in [-1, 1]) or
    ``sigmoid`` (data in [0, 1]) — one independent value per pixel.
    """

    def __init__(self, z_dim: int = 100):
        super().__init__()
        self.z_dim = z_dim
        self.model = nn.Sequential(
            nn.Linear(z_dim, 256), nn.LeakyReLU(0.2),
            nn.Linear(256, 512), nn.LeakyReLU(0.2),
            nn.Linear(512, 1024), nn.LeakyReLU(0.2),
            nn.Linear(1024, 784), nn.Softmax(dim=1),  # <- the bug
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z).view(-1, 1, 28, 28)  # values in (0, 1), summing to 1 per image


class BuggySRNet(nn.Module):
    """Exercise B's reference "super-resolution" network (a Keras model, translated line for line).

    It was trained on 64×64 low-resolution patches, with the same patches as targets.
    """

    def __init__(self, channels: int = 3, width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3)  # BUG: 'valid' padding: 64 -> 62
        self.conv2 = nn.Conv2d(width, width, 3)  # BUG: 'valid' again: 62 -> 60
        self.conv3 = nn.Conv2d(width, channels, 3, padding=1)  # BUG: only the last layer pads ('same')
        self.relu = nn.ReLU()

    def forward(self, lr: torch.Tensor) -> torch.Tensor:  # lr: (N, C, 64, 64)
        x = self.relu(self.conv1(lr))  # (N, 64, 62, 62)
        x = self.relu(self.conv2(x))  # (N, 64, 60, 60)
        return self.conv3(x)  # (N, C, 60, 60)  # BUG: no upsampling anywhere: LR in, (smaller) LR out
