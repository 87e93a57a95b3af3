"""Training the VAE: its config, its update step for the shared loop (:mod:`imagegen_lib.core.loop`),
and its export.

Adam on ``recon + β·KL`` (:func:`~imagegen_lib.vae.model.elbo_terms`); the loop holds images in
``[-1, 1]`` and the step maps them to the ``[0, 1]`` the Bernoulli likelihood wants.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from ..core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..core.loop import GenerativeRun, Job, check_loop_config, fit
from ..core.training import bf16_autocast
from .model import ConvVAE, check_unit_images, elbo_terms

__all__ = ["VAEConfig", "train_vae", "save_vae", "load_vae"]


@dataclass
class VAEConfig:
    dataset: str = "mnist"
    latent_dim: int = 16
    width: int = 32  # channels of the first conv (the second has 2×)
    hidden: int = 256  # the fully connected layer between the convs and the latent code
    beta: float = 1.0  # weight of the KL term (1: the ELBO; > 1: β-VAE)
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    limit: int | None = None
    log_every: int = 50
    sample_every: int = 2000
    ckpt_every: int = 2000
    bf16: bool = False  # bf16 autocast on CUDA

    def __post_init__(self):
        check_loop_config(self)
        for name in ("latent_dim", "width", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.beta >= 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")

    @classmethod
    def from_dict(cls, d: dict) -> "VAEConfig":
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def save_vae(model: ConvVAE, config: VAEConfig, stem, extra_meta: dict | None = None) -> Path:
    meta = {"kind": "vae", "arch": "vae", "dataset": config.dataset, "latent_dim": config.latent_dim,
            "width": config.width, "hidden": config.hidden, "value_range": [-1, 1],
            "likelihood": "bernoulli", "config": asdict(config), **(extra_meta or {})}
    return save_checkpoint(stem, model.state_dict(), meta)


def load_vae(stem, device="cpu") -> tuple[ConvVAE, dict]:
    """The VAE exported by :func:`save_vae`, in eval mode, and its metadata."""
    tensors, meta = load_checkpoint(stem, expect_kind="vae")
    model = ConvVAE(meta["latent_dim"], meta["width"], meta["hidden"])
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise CheckpointError(f"{stem}: weights don't fit a VAE of the size its JSON states: {e}") from None
    return model.to(device).eval(), meta


def _vae_job(config: VAEConfig, device: torch.device, gen: torch.Generator) -> Job:
    model = ConvVAE(config.latent_dim, config.width, config.hidden).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    autocast = bf16_autocast(config.bf16, device)
    fixed_z = torch.randn(64, config.latent_dim, generator=torch.Generator().manual_seed(config.seed + 2)).to(device)

    def update(x, step):
        x = (x + 1) / 2  # the loop keeps [-1, 1] images; the Bernoulli likelihood wants [0, 1]
        noise = torch.randn((x.shape[0], config.latent_dim), generator=gen, device=device)
        with autocast():
            recon_logits, mu, logvar = model(x, noise)
        terms = elbo_terms(x, recon_logits, mu, logvar, config.beta, check=False)  # checked once, up front
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def grid():
        model.eval()
        x = torch.sigmoid(model.decode(fixed_z).float()) * 2 - 1
        model.train()
        return x.cpu()

    def export(stem, meta):
        save_vae(model, config, stem, meta)

    return Job("vae", model, opt, update, grid, export,
                postfix=lambda r: {"recon": f"{r['recon']:.1f}", "KL": f"{r['kl']:.1f}"})


def train_vae(config: VAEConfig, images: torch.Tensor | None = None, **kwargs) -> GenerativeRun:
    """Train the VAE on ``images`` (``(N,1,28,28)`` in [0, 1]; loaded from ``config.dataset`` if None).

    Keyword arguments as :func:`imagegen_lib.diffusion.train.train_ddpm`.
    """
    if images is not None:
        check_unit_images(images)
        images = images * 2 - 1  # the shared loop holds [-1, 1]; the VAE's step maps it back
    return fit(config, _vae_job, images, **kwargs)
