"""A class-conditional DCGAN for 28×28 images: tell the generator *which* digit to draw.

Same bodies as the DCGAN of :mod:`.gan`, plus the label ``y`` (0–9) in both networks:

* **G(z, y)** — the label is looked up in a learnt ``10 × e`` embedding table and *concatenated*
  with the noise, and the DCGAN generator draws from the ``(z_dim + e)``-dim input: the original
  conditional GAN recipe (Mirza & Osindero 2014) on the DCGAN body.
* **D(x, y)** — a *projection discriminator* (Miyato & Koyama 2018): the DCGAN discriminator's
  features ``φ(x)`` (everything up to its last layer) feed an unconditional logit *plus* an inner
  product with the label's embedding:

      D(x, y) = w·φ(x) + b + ⟨embed(y), φ(x)⟩

  That is the form the optimal discriminator's logit ``log p_data(x, y) / p_G(x, y)`` takes when
  ``p(y | x)`` is a softmax over a linear function of ``φ(x)``. Concatenating ``y`` to D's input
  also works, but makes it easy for D to ignore the label; the projection makes "right image,
  wrong class" directly cheap to detect.

The fakes in a training step are drawn for the labels of the real batch, so real and fake
batches have the same class frequencies and D can't tell them apart by class counts alone.
"""

from __future__ import annotations

import torch
from torch import nn

from .models import DCGANDiscriminator, DCGANGenerator, init_dcgan_weights

__all__ = ["ConditionalGenerator", "ProjectionDiscriminator", "build_cgan", "check_labels", "balanced_labels",
           "NUM_CLASSES"]

NUM_CLASSES = 10  # MNIST and Fashion-MNIST both have ten
LABEL_EMBED_DIM = 10  # G's label code: as many numbers as classes (a learnt, not one-hot, code)


class ConditionalGenerator(nn.Module):
    def __init__(self, z_dim: int = 100, width: int = 64, num_classes: int = NUM_CLASSES,
                 embed_dim: int = LABEL_EMBED_DIM):
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        self.embed = nn.Embedding(num_classes, embed_dim)  # (N,) labels -> (N, e)
        self.body = DCGANGenerator(z_dim + embed_dim, width)  # (N, z_dim + e) -> (N, 1, 28, 28)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # z: (N, z_dim), labels: (N,)
        h = torch.cat([z.flatten(1), self.embed(labels)], dim=1)  # (N, z_dim + e)
        return self.body(h)  # (N, 1, 28, 28) in [-1, 1]


class ProjectionDiscriminator(nn.Module):
    def __init__(self, width: int = 64, num_classes: int = NUM_CLASSES):
        super().__init__()
        dcgan = DCGANDiscriminator(width)
        self.features = dcgan.net[:-1]  # (N, 1, 28, 28) -> (N, 4w·4·4): the DCGAN body up to its flatten
        self.unconditional = dcgan.net[-1]  # (N, 4w·4·4) -> (N, 1): "is it a real image at all?"
        self.embed = nn.Embedding(num_classes, self.unconditional.in_features)  # (N,) -> (N, 4w·4·4)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (N, 4w·16)
        projection = (self.embed(labels) * h).sum(dim=1)  # (N,): "is it a real image *of class y*?"
        return self.unconditional(h).squeeze(1) + projection  # (N,) logits


def build_cgan(z_dim: int = 100, width: int = 64, num_classes: int = NUM_CLASSES) -> tuple[nn.Module, nn.Module]:
    """A freshly initialised (G, D) pair; DCGAN's N(0, 0.02) init, including D's label embedding.

    D's embedding gets the same small init as its linear layer: with PyTorch's default N(0, 1) the
    projection term would start at |⟨e, φ⟩| ~ √4096 = 64, saturating the loss from step one.
    """
    G = ConditionalGenerator(z_dim, width, num_classes)
    D = ProjectionDiscriminator(width, num_classes)
    init_dcgan_weights(G)
    init_dcgan_weights(D)
    nn.init.normal_(D.embed.weight, 0.0, 0.02)
    return G, D


def check_labels(labels, num_classes: int = NUM_CLASSES, n: int | None = None) -> torch.Tensor:
    """Validate class labels: a ``(N,)`` integer tensor with values in ``[0, num_classes)``."""
    if not torch.is_tensor(labels):
        labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be a 1-D integer tensor (class indices), got dtype {labels.dtype} "
                         f"and shape {tuple(labels.shape)}")
    if n is not None and len(labels) != n:
        raise ValueError(f"got {len(labels)} labels for {n} images; pass one label per image")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got values in "
                         f"{int(labels.min())}..{int(labels.max())}")
    return labels.long()


def balanced_labels(n: int, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """``0, 1, …, 9, 0, 1, …``: every class equally often (what the metrics compare against)."""
    return torch.arange(n) % num_classes
