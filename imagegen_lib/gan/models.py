"""GAN generators and discriminators for 28×28 single-channel images, in one readable file.

Two families, both producing images in ``[-1, 1]`` (``tanh``) and both judged by discriminators
that return a raw *logit* (no sigmoid: the losses use the numerically stable ``*_with_logits``):

* ``mlp``   — the interview's reference answer, fixed: fully connected layers, ``tanh`` output
  instead of a softmax over 784 pixels (a softmax forces the pixels to sum to 1, i.e. an almost
  black image with one grey smudge).
* ``dcgan`` — Radford et al. (2016) adapted to 28×28: transposed convolutions that double the
  resolution 7 → 14 → 28, batch norm in G and D (except D's first layer), ReLU in G, LeakyReLU(0.2)
  in D, no pooling, no fully connected hidden layers.

Shapes are written after every layer for a batch of N.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.training import count_parameters

__all__ = ["MLPGenerator", "MLPDiscriminator", "DCGANGenerator", "DCGANDiscriminator",
           "GAN_ARCHS", "build_gan", "count_parameters", "init_dcgan_weights"]

IMAGE_SHAPE = (1, 28, 28)


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int = 100, hidden: tuple[int, ...] = (256, 512, 1024)):
        super().__init__()
        self.z_dim = z_dim
        layers, width = [], z_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, 28 * 28), nn.Tanh())  # (N, 784) in [-1, 1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z: (N, z_dim)
        return self.net(z.flatten(1)).view(-1, *IMAGE_SHAPE)  # (N, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    def __init__(self, hidden: tuple[int, ...] = (512, 256)):
        super().__init__()
        layers, width = [], 28 * 28
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        self.net = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, 1, 28, 28)
        return self.net(x.flatten(1)).squeeze(1)  # (N,) logits


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int = 100, width: int = 64):
        super().__init__()
        self.z_dim = z_dim
        w = width
        self.net = nn.Sequential(
            # (N, z_dim, 1, 1)
            nn.ConvTranspose2d(z_dim, 4 * w, kernel_size=7, stride=1, padding=0, bias=False),
            nn.BatchNorm2d(4 * w), nn.ReLU(True),
            # (N, 4w, 7, 7)
            nn.ConvTranspose2d(4 * w, 2 * w, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * w), nn.ReLU(True),
            # (N, 2w, 14, 14)
            nn.ConvTranspose2d(2 * w, w, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(w), nn.ReLU(True),
            # (N, w, 28, 28)
            nn.Conv2d(w, 1, kernel_size=3, stride=1, padding=1),
            nn.Tanh(),
            # (N, 1, 28, 28) in [-1, 1]
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z: (N, z_dim)
        return self.net(z.view(z.shape[0], -1, 1, 1))


class DCGANDiscriminator(nn.Module):
    def __init__(self, width: int = 64):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            # (N, 1, 28, 28)
            nn.Conv2d(1, w, kernel_size=4, stride=2, padding=1),  # no BN on the input layer (DCGAN)
            nn.LeakyReLU(0.2, True),
            # (N, w, 14, 14)
            nn.Conv2d(w, 2 * w, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2, True),
            # (N, 2w, 7, 7)
            nn.Conv2d(2 * w, 4 * w, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2, True),
            # (N, 4w, 4, 4)
            nn.Flatten(),
            nn.Linear(4 * w * 4 * 4, 1),
            # (N, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)  # (N,) logits


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN's init: conv weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


# arch name -> (generator class, discriminator class, generator kwargs it accepts, D kwargs)
GAN_ARCHS = {
    "mlpgan": (MLPGenerator, MLPDiscriminator, ("z_dim",), ()),
    "dcgan": (DCGANGenerator, DCGANDiscriminator, ("z_dim", "width"), ("width",)),
}


def build_gan(arch: str, z_dim: int = 100, width: int = 64) -> tuple[nn.Module, nn.Module]:
    """Build a freshly initialised (G, D) pair by name: ``'mlpgan'`` or ``'dcgan'``."""
    if arch not in GAN_ARCHS:
        raise ValueError(f"unknown GAN architecture {arch!r}; choose one of {sorted(GAN_ARCHS)}")
    g_cls, d_cls, g_keys, d_keys = GAN_ARCHS[arch]
    options = {"z_dim": z_dim, "width": width}
    G = g_cls(**{k: options[k] for k in g_keys})
    D = d_cls(**{k: options[k] for k in d_keys})
    if arch == "dcgan":
        init_dcgan_weights(G)
        init_dcgan_weights(D)
    return G, D

