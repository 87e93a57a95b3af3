"""Small MLPs for 2-D toy GANs (Q1, Q2, Q4): the 8-Gaussians ring trains in seconds on a CPU.

Both networks are plain ``Linear`` stacks. The discriminator returns a raw score of shape
``(N,)``: a logit for the BCE losses, an unbounded critic value for WGAN / hinge. Two options
used by Q4's fixes:

* ``spectral_norm=True`` wraps every ``Linear`` in
  :func:`torch.nn.utils.parametrizations.spectral_norm` (Miyato et al. 2018): each weight is
  divided by an estimate of its largest singular value (one power iteration per forward pass in
  training mode), so every layer — and the whole D, with 1-Lipschitz activations — is 1-Lipschitz.
* ``minibatch_std=True`` appends one feature to the last hidden layer: the standard deviation of
  the hidden features across the batch, averaged (Karras et al. 2018). A collapsed batch of fakes
  has a tell-tale small spread, so D can punish collapse directly.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

__all__ = ["ToyGenerator", "ToyDiscriminator"]


class ToyGenerator(nn.Module):
    def __init__(self, z_dim: int = 2, hidden: int = 128, depth: int = 3, out_dim: int = 2):
        super().__init__()
        self.z_dim = z_dim
        layers, width = [], z_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, out_dim))  # no tanh: the data is not bounded

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (N, z_dim) -> (N, 2)
        return self.net(z)


class ToyDiscriminator(nn.Module):
    def __init__(self, in_dim: int = 2, hidden: int = 128, depth: int = 3,
                 spectral_norm: bool = False, minibatch_std: bool = False):
        super().__init__()
        wrap = _sn if spectral_norm else (lambda m: m)
        layers, width = [], in_dim
        for _ in range(depth):
            layers += [wrap(nn.Linear(width, hidden)), nn.LeakyReLU(0.2)]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.minibatch_std = minibatch_std
        self.head = wrap(nn.Linear(width + int(minibatch_std), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 2) -> (N,) scores
        h = self.body(x)
        if self.minibatch_std:
            spread = h.std(dim=0, unbiased=False).mean() if len(h) > 1 else h.new_zeros(())
            h = torch.cat([h, spread.expand(len(h), 1)], dim=1)
        return self.head(h).squeeze(1)
