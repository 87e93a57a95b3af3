"""One interface to draw images from every generator the book ships: GANs, the conditional GAN, the VAE, the DDPM.

``load_sampler(stem)`` reads a checkpoint's kind from its JSON and returns an object with

    .sample(n, seed=0, device=None, labels=None, **options) -> (n, 1, 28, 28) float32 in [-1, 1], on the CPU

so ``imagegen sample``, ``imagegen eval``, the metrics and the comparison table treat all models
alike. What ``seed`` fixes, per kind:

- **GANs** (MLP GAN, DCGAN, conditional GAN): exactly :func:`imagegen_lib.gan.train.sample_images` —
  CPU noise, 1000 per batch — so a GAN's samples, and the metrics in the manifest, are the same
  whichever of the two is used. The conditional GAN draws ``labels`` (default ``0, 1, …, 9, 0, …``).
- **VAE**: ``z ~ N(0, I)`` from a CPU generator; the image is the decoder's mean, ``sigmoid(f(z))``.
- **DDPM**: the noise comes from a generator *on the sampling device* (a CPU-side one would spend
  more time in ``randn`` and copies than the GPU spends in the U-Net), so samples of one seed are
  reproducible on one kind of device, not across CPU and GPU. ``options``: ``sampler='ancestral'``
  (all ``T`` steps) or ``'ddim'`` with ``steps`` (default 50) and ``eta`` (default 0).
"""

from __future__ import annotations

import json

import torch
from torch import nn

from ..core.checkpoint import CheckpointError, checkpoint_paths, load_checkpoint
from ..core.training import count_parameters
from ..gan.conditional import balanced_labels, check_labels

__all__ = ["load_sampler", "GANSampler", "VAESampler", "DDPMSampler", "GENERATOR_KINDS", "CPU_CHECK", "FLOW_CPU_CHECK",
           "count_parameters", "measure_sampling_time", "check_class_labels"]

GENERATOR_KINDS = ("gan-generator", "vae", "ddpm", "flow")
DEFAULT_BATCH = 1000
# The DDPM's CPU-feasible check (tests/test_checkpoints.py recomputes it on a laptop): DDIM with
# 10 steps, 200 images, on the CPU. Recorded in the manifest by `imagegen eval --device cpu`.
CPU_CHECK = {"sampler": "ddim", "steps": 10, "n": 200}
FLOW_CPU_CHECK = {"sampler": "euler", "steps": 10, "n": 200}  # the same for a flow-matching model


def _device(device) -> torch.device:
    return torch.device(device if device is not None else "cpu")


class _Sampler:
    kind: str = ""
    conditional = False
    network: nn.Module  # the part that runs when sampling (G, the VAE's decoder, the U-Net)

    def __init__(self, meta: dict, device):
        self.meta = meta
        self.arch = meta.get("arch")
        self.dataset = meta.get("dataset", "mnist")
        self.device = _device(device)

    @property
    def n_params(self) -> int:
        """Parameters of the network that sampling runs (the VAE's decoder, not its encoder)."""
        return count_parameters(self.network)

    def sampler_key(self, **options) -> str | None:
        """A name for the sampling procedure (``'ancestral1000'``, ``'ddim50'``); None when there is only one."""
        self._check_options(options)
        return None

    def _check_options(self, options: dict) -> None:
        given = {k: v for k, v in options.items() if v is not None}
        if given:
            raise ValueError(f"sampler options {sorted(given)} apply to diffusion models only; "
                             f"this is a {self.arch} checkpoint")

    @staticmethod
    def default_labels(n: int) -> torch.Tensor:
        """The classes a conditional generator draws when none are given: ``0, 1, …, 9, 0, …``."""
        return balanced_labels(n)

    def _labels(self, n: int, labels):
        if labels is not None and not self.conditional:
            raise ValueError(f"this {self.arch} generator is unconditional: class labels (--label) apply to "
                             "class-conditional models only (the conditional GAN, a diffusion or flow model "
                             "trained with --cond-drop)")
        return labels

    def sample(self, n: int, seed: int = 0, device=None, labels=None, batch_size: int = DEFAULT_BATCH,
               **options) -> torch.Tensor:
        raise NotImplementedError


class GANSampler(_Sampler):
    kind = "gan"

    def __init__(self, stem, device="cpu"):
        from ..gan.train import is_conditional, load_generator

        G, meta = load_generator(stem, device=device)
        super().__init__(meta, device)
        self.network = self.G = G
        self.conditional = is_conditional(G)
        if self.conditional:
            self.kind = "cgan"

    def sample(self, n, seed=0, device=None, labels=None, batch_size=DEFAULT_BATCH, **options):
        from ..gan.train import sample_images

        self._check_options(options)
        labels = self._labels(n, labels)
        device = _device(device) if device is not None else self.device
        self.G.to(device)
        return sample_images(self.G, n, seed=seed, device=device, batch_size=batch_size, labels=labels)

    def class_grid(self, rows: int = 10, seed: int = 0, device=None) -> torch.Tensor:
        """``rows × 10`` images, column ``k`` of class ``k`` (conditional GAN only): show with ``nrow=10``."""
        if not self.conditional:
            raise ValueError(f"a class grid needs the conditional GAN; this is {self.arch}")
        return self.sample(10 * rows, seed=seed, device=device, labels=balanced_labels(10 * rows))


class VAESampler(_Sampler):
    kind = "vae"

    def __init__(self, stem, device="cpu"):
        from ..vae.train import load_vae

        self.vae, meta = load_vae(stem, device=device)
        super().__init__(meta, device)
        self.network = self.vae.decoder

    @torch.no_grad()
    def sample(self, n, seed=0, device=None, labels=None, batch_size=DEFAULT_BATCH, **options):
        self._check_options(options)
        self._labels(n, labels)
        device = _device(device) if device is not None else self.device
        self.vae.to(device).eval()
        gen = torch.Generator().manual_seed(seed)
        out = []
        for start in range(0, n, batch_size):
            z = torch.randn(min(batch_size, n - start), self.vae.latent_dim, generator=gen)
            out.append(torch.sigmoid(self.vae.decode(z.to(device)).float()).cpu() * 2 - 1)
        return torch.cat(out)


class DDPMSampler(_Sampler):
    """A diffusion (``kind='ddpm'``) or flow-matching (``kind='flow'``) model, any sampler of
    :mod:`imagegen_lib.diffusion.samplers`, optionally class-conditional with guidance."""

    kind = "ddpm"

    def __init__(self, stem, device="cpu"):
        from ..diffusion.train import load_ddpm

        self.unet, self.schedule, meta = load_ddpm(stem, device=device)
        super().__init__(meta, device)
        self.network = self.unet
        self.kind = meta["kind"]
        self.flow = self.kind == "flow"
        self.prediction = meta["prediction"]
        self.conditional = meta.get("num_classes", 0) > 0

    @property
    def samplers(self) -> tuple[str, ...]:
        from ..diffusion.samplers import FLOW_SAMPLERS, SAMPLERS

        return FLOW_SAMPLERS if self.flow else SAMPLERS

    def _resolve(self, sampler=None, steps=None, eta=None, guidance=None) -> tuple[str, int, float, float]:
        sampler = sampler or ("euler" if self.flow else "ancestral")
        if sampler not in self.samplers:
            why = " (flow matching has no discrete noise chain)" if self.flow else ""
            raise ValueError(f"unknown sampler {sampler!r} for this {self.kind} model{why}; "
                             f"choose one of {list(self.samplers)}")
        guidance = 1.0 if guidance is None else float(guidance)
        if guidance != 1 and not self.conditional:
            raise ValueError(f"--guidance {guidance:g} needs a class-conditional model (trained with --cond-drop); "
                             "this one is unconditional")
        if guidance < 0:
            raise ValueError(f"the guidance scale must be >= 0 (1: no guidance, 0: unconditional), got {guidance}")
        if eta not in (None, 0, 0.0) and sampler != "ddim" and not (sampler == "ancestral" and eta == 1):
            raise ValueError("eta applies to the DDIM sampler only")
        if sampler == "ancestral":
            T = self.schedule.T
            if steps not in (None, T):
                raise ValueError(f"the ancestral sampler takes all T={T} steps; for fewer, use --sampler ddim "
                                 f"(or euler, heun, dpmpp2m) --steps {steps}")
            return sampler, T, 1.0, guidance
        steps = 50 if steps is None else int(steps)
        if steps < 1 or (not self.flow and steps > self.schedule.T):
            raise ValueError(f"steps must be between 1 and T={self.schedule.T}, got {steps}" if not self.flow
                             else f"steps must be >= 1, got {steps}")
        eta = 0.0 if eta is None else float(eta)
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        return sampler, steps, eta, guidance

    def sampler_key(self, sampler=None, steps=None, eta=None, guidance=None, **rest) -> str:
        super()._check_options(rest)
        sampler, steps, eta, guidance = self._resolve(sampler, steps, eta, guidance)
        return (f"{sampler}{steps}" + (f"_eta{eta:g}" if sampler == "ddim" and eta != 0 else "")
                + (f"_w{guidance:g}" if guidance != 1 else ""))

    def network_calls(self, **options) -> int:
        """Network evaluations per image of the sampler ``options`` describe."""
        from ..diffusion.samplers import network_calls

        sampler, steps, _, guidance = self._resolve(**options)
        if sampler in ("euler", "heun", "dpmpp2m"):
            steps = len(self._ode_levels(self.schedule, steps)) - 1  # Karras spacing may merge steps
        return network_calls(sampler, steps, guidance)

    def _ode_levels(self, schedule, steps: int) -> list:
        """The noise levels an ODE solver walks: flow matching's even ``t``, or the DDPM's Karras-spaced steps
        (on a short or cosine schedule, several targets can round to one step: fewer levels than ``steps``)."""
        from ..diffusion import samplers as S

        return S.flow_levels(steps) if self.flow else S.ddpm_levels(schedule, S.karras_timesteps(schedule, steps))

    @property
    def default_key(self) -> str:
        return self.sampler_key()

    @torch.no_grad()
    def sample(self, n, seed=0, device=None, labels=None, batch_size=DEFAULT_BATCH, sampler=None, steps=None,
               eta=None, guidance=None, trajectory=None, keep_every=None, autocast=None):
        """``trajectory``: a list that receives ``(level, x)`` of the *first* batch along the way.

        A class-conditional model draws ``labels`` (default ``0, 1, …, 9, 0, …``)."""
        from ..diffusion import samplers as S

        sampler, steps, eta, guidance = self._resolve(sampler, steps, eta, guidance)
        if self.conditional:
            labels = self.default_labels(n) if labels is None else check_labels(labels, n=n)
        else:
            self._labels(n, labels)
        device = _device(device) if device is not None else self.device
        self.unet.to(device).eval()
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # one batch shape for every call: let cuDNN pick its kernels
        schedule = None if self.flow else (self.schedule if self.schedule.device == device
                                           else self.schedule.to(device))
        gen = torch.Generator(device).manual_seed(seed)
        out = []
        for start in range(0, n, batch_size):
            m = min(batch_size, n - start)
            keep = trajectory if start == 0 else None
            batch_labels = labels[start:start + m].to(device) if labels is not None else None
            options = dict(prediction=self.prediction, labels=batch_labels, guidance=guidance, autocast=autocast)
            if sampler == "ancestral":
                x = S.sample_ancestral(self.unet, schedule, m, gen, device=device, trajectory=keep,
                                       keep_every=keep_every or 100, **options)
            elif sampler == "ddim":
                x = S.sample_ddim(self.unet, schedule, m, gen, steps=steps, eta=eta, device=device, trajectory=keep,
                                  keep_every=keep_every or max(1, steps // 10), **options)
            else:
                denoise = S.Denoiser(self.unet, discrete=not self.flow, **options)
                levels = self._ode_levels(schedule, steps)
                run = {"euler": S.sample_euler, "heun": S.sample_heun, "dpmpp2m": S.sample_dpmpp_2m}[sampler]
                x = run(denoise, levels, torch.randn((m, 1, 28, 28), generator=gen, device=device), trajectory=keep)
            out.append(x.float().cpu())
        return torch.cat(out)


_BY_KIND = {"gan-generator": GANSampler, "vae": VAESampler, "ddpm": DDPMSampler, "flow": DDPMSampler}
_EXPORT_OF_TRAIN_STATE = {"gan-train-state": ("gan-generator", "generator.safetensors"),
                          "vae-train-state": ("vae", "model.safetensors"),
                          "ddpm-train-state": ("ddpm", "model.safetensors"),
                          "flow-train-state": ("flow", "model.safetensors")}


def load_sampler(stem, device="cpu") -> _Sampler:
    """The sampler of any generator checkpoint (``NAME`` or ``NAME.safetensors`` or ``NAME.json``)."""
    _, json_path = checkpoint_paths(stem)
    if not json_path.is_file():
        load_checkpoint(stem)  # raises the standard "checkpoint file ... does not exist" error
    try:
        kind = json.loads(json_path.read_text()).get("kind")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{json_path} is not valid JSON ({e}); the checkpoint is corrupted.") from None
    if kind in _EXPORT_OF_TRAIN_STATE:
        wanted, file = _EXPORT_OF_TRAIN_STATE[kind]
        raise CheckpointError(f"{json_path} holds a {kind!r} checkpoint, but a {wanted!r} one is needed here: "
                              f"pass the run's {file} instead of its training state.")
    if kind not in _BY_KIND:
        raise CheckpointError(f"{json_path} holds a {kind!r} checkpoint, not a generator "
                              f"(one of {list(GENERATOR_KINDS)}).")
    return _BY_KIND[kind](stem, device=device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device) -> float:
    import time

    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def measure_sampling_time(model: _Sampler, device="cpu", batch: int = 1000, repeats: int = 3,
                          max_seconds: float = 60.0, probe_steps: int = 5, **options) -> dict:
    """Seconds to draw 1000 images from ``model`` (a :func:`load_sampler` object) on ``device``, and how.

    ``options``: the diffusion sampler's (``sampler='ddim', steps=50``). With guidance, one "call"
    evaluates the network on twice the batch; its time is counted as two calls (close: the U-Net's
    cost is linear in the batch at these sizes).

    One-shot generators (GANs, VAE): ``batch`` images, the median of ``repeats`` runs, scaled to 1000.
    Diffusion: if the whole procedure on ``batch`` images would take over ``max_seconds`` (judged
    from ``probe_steps`` DDIM steps), the time per network call is measured on ``probe_steps``
    calls and multiplied by the procedure's number of calls — every step runs the same U-Net on
    the same batch, so the cost is linear in the steps. The ``method`` field says which was done.
    """
    import statistics

    device = _device(device)
    scale = 1000 / batch
    if not isinstance(model, DDPMSampler):
        model.sample(min(batch, 100), seed=0, device=device)  # warm-up: allocations, kernel choice
        runs = [_timed(lambda: model.sample(batch, seed=0, device=device), device) for _ in range(repeats)]
        return {"seconds_per_1k": statistics.median(runs) * scale, "batch": batch, "repeats": repeats,
                "method": f"median of {repeats} runs of {batch} images" + (f", x{scale:g}" if scale != 1 else "")}
    steps = model.network_calls(**options)  # U-Net calls per image (a guided call evaluates a double batch)
    model.sample(batch, seed=0, device=device, sampler="euler", steps=1)  # warm-up
    probe = _timed(lambda: model.sample(batch, seed=0, device=device, sampler="euler", steps=probe_steps), device)
    per_call = probe / probe_steps
    if per_call * steps <= max_seconds:
        seconds = _timed(lambda: model.sample(batch, seed=0, device=device, **options), device)
        method = f"one full run on {batch} images" + (f", x{scale:g}" if scale != 1 else "")
    else:
        seconds = per_call * steps
        method = (f"{probe_steps} U-Net calls on {batch} images timed, x {steps} calls"
                  + (f", x{scale:g}" if scale != 1 else "") + " (cost is linear in the steps)")
    return {"seconds_per_1k": seconds * scale, "batch": batch, "seconds_per_call": per_call, "calls": steps,
            "method": method}


def check_class_labels(labels, n: int) -> torch.Tensor:
    """``labels`` as a validated ``(n,)`` tensor (an int broadcasts to all ``n`` images)."""
    if isinstance(labels, int):
        labels = torch.full((n,), labels, dtype=torch.long)
    return check_labels(labels, n=n)
