"""Pictures: image grids (to PNG or a matplotlib axis) and training curves."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from .checkpoint import atomic_write_bytes

__all__ = ["image_grid", "save_grid", "show_grid", "plot_gan_history"]


def image_grid(x: torch.Tensor, nrow: int = 8, padding: int = 2, value_range=(-1.0, 1.0)) -> np.ndarray:
    """``(N, C, H, W)`` images -> one ``(rows*H', nrow*W')`` (gray) or ``(.., .., 3)`` uint8 array."""
    if x.dim() != 4:
        raise ValueError(f"expected a (N, C, H, W) batch, got shape {tuple(x.shape)}")
    lo, hi = value_range
    x = ((x.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    n, c, h, w = x.shape
    rows = -(-n // nrow)
    canvas = torch.ones(c, rows * (h + padding) + padding, nrow * (w + padding) + padding)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        canvas[:, top:top + h, left:left + w] = x[i]
    arr = (canvas * 255).round().to(torch.uint8).numpy()
    return arr[0] if c == 1 else arr.transpose(1, 2, 0)


def save_grid(x: torch.Tensor, path, nrow: int = 8, value_range=(-1.0, 1.0), scale: int = 2) -> Path:
    """Write a PNG grid atomically (nearest-neighbour upscaled ``scale``× so digits are visible)."""
    from PIL import Image

    arr = image_grid(x, nrow=nrow, value_range=value_range)
    img = Image.fromarray(arr)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def show_grid(x: torch.Tensor, ax=None, nrow: int = 8, title: str | None = None, value_range=(-1.0, 1.0)):
    """Draw a grid on a matplotlib axis (created if not given) and return the axis."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(nrow * 0.6, -(-len(x) // nrow) * 0.6))
    ax.imshow(image_grid(x, nrow=nrow, value_range=value_range), cmap="gray", vmin=0, vmax=255,
              interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_gan_history(history: list[dict], axes=None, title: str | None = None):
    """Two panels: D and G losses, and the discriminator's outputs D(x) and D(G(z))."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    steps = [r["step"] for r in history]
    axes[0].plot(steps, [r["loss_d"] for r in history], label="D loss")
    axes[0].plot(steps, [r["loss_g"] for r in history], label="G loss")
    axes[0].axhline(2 * np.log(2), color="gray", ls=":", lw=1, label="D loss at equilibrium (2 ln 2)")
    axes[0].set_xlabel("step")
    axes[0].legend(fontsize=8)
    axes[1].plot(steps, [r["d_real"] for r in history], label="D(x), real")
    axes[1].plot(steps, [r["d_fake"] for r in history], label="D(G(z)), fake")
    axes[1].axhline(0.5, color="gray", ls=":", lw=1, label="equilibrium 0.5")
    axes[1].set_ylim(0, 1)
    axes[1].set_xlabel("step")
    axes[1].legend(fontsize=8)
    if title:
        axes[0].figure.suptitle(title)
    return axes


def show_source(obj) -> None:
    """Display the source of a library object in a notebook (the book shows the code that runs)."""
    import inspect

    from IPython.display import Code, display

    display(Code(inspect.getsource(obj), language="python"))
