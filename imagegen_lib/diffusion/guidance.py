"""Classifier-free guidance (Ho & Salimans 2021): one network, conditional and unconditional, extrapolated.

**Training.** A class-conditional network is trained with its label replaced by the *null label*
with probability ``p`` (:func:`drop_labels`, ``imagegen train ddpm --cond-drop p``), so the same
weights learn ``ε(x, y)`` and ``ε(x, ∅)``.

**Sampling.** At every step both are evaluated and combined as

    out = out(x, ∅) + w · (out(x, y) − out(x, ∅))

— the convention of this book (and of most code): ``w = 1`` is the plain conditional model,
``w = 0`` the unconditional one, ``w > 1`` guides. (Ho & Salimans write ``(1 + w')·ε(x, y) − w'·ε(x, ∅)``:
their ``w'`` is our ``w − 1``.) Because ε = −s·∇log p, the extrapolation samples from
``p(x) · p(y | x)^w`` up to normalisation: an *implicit classifier* ``p(y|x) ∝ p(x|y)/p(x)``
sharpened by the power ``w`` — samples that are more typical of their class and less diverse.
The combination is affine with weights summing to 1, so it gives the same result on ε, x₀, v or
the flow velocity: it is applied to the raw network output.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["drop_labels", "guided_output"]


def drop_labels(labels: torch.Tensor, p: float, null_label: int, gen: torch.Generator | None = None) -> torch.Tensor:
    """``labels`` with each one replaced by ``null_label`` with probability ``p`` (noise from ``gen``)."""
    if not 0 <= p < 1:
        raise ValueError(f"the label-drop probability must be in [0, 1), got {p}")
    drop = torch.rand(labels.shape, generator=gen, device=labels.device) < p
    return torch.where(drop, torch.full_like(labels, null_label), labels)


def guided_output(model: nn.Module, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None,
                  scale: float = 1.0) -> torch.Tensor:
    """The network's output at ``(x, t)``, guided towards ``labels`` with scale ``scale``.

    ``labels`` None: the model as it is (unconditional; a class-conditional one gets the null
    label). ``scale == 1``: one conditional evaluation; ``scale == 0``: one unconditional evaluation;
    otherwise both in one batch of ``2N``.
    """
    if labels is None:
        if scale != 1:
            raise ValueError("classifier-free guidance needs class labels to guide towards (got none)")
        return model(x, t)
    null = getattr(model, "num_classes", 0)
    if not null:
        raise ValueError("labels were given but the network is unconditional (train it with --cond-drop)")
    if labels.shape != (x.shape[0],):
        raise ValueError(f"labels must be (N,) = ({x.shape[0]},), got {tuple(labels.shape)}")
    if scale == 1:
        return model(x, t, labels)
    empty = torch.full_like(labels, null)
    if scale == 0:
        return model(x, t, empty)
    both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, empty]))  # (2N, …)
    cond, uncond = both.chunk(2)
    return uncond + scale * (cond - uncond)
