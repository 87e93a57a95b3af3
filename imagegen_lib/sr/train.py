"""Training super-resolution models on T91 patches (and loading / scoring what it produces).

The recipe (EDSR's, shortened): random LR/HR patch pairs of T91 (optionally at FSRCNN's 5 sizes),
random flips and 90° rotations, **L1 loss** (EDSR found it trains better than MSE for PSNR,
although PSNR is an MSE), Adam (β = 0.9, 0.999), a linear warm-up then a **cosine** decay of the
learning rate to 0, and an exponential moving average (**EMA**) of the weights, which is what gets
evaluated and exported.

Two ways to say how long to train: ``steps`` (the schedule is a function of the step: resuming is
bit-exact on CPU) or ``minutes`` (the schedule is a function of the *elapsed time*, so the cosine
reaches 0 exactly when the budget ends, whatever the GPU's speed — what a fixed GPU allowance
needs; resuming then continues the clock, but is not bit-exact). Give both and the schedule
follows whichever clock is further along: training ends at N steps or M minutes, whichever comes
first, with the learning rate annealed either way (a small model sharing a GPU with a big one
stops using it once its steps are done). The time budget includes the setup (reading T91, building
the patch buffers), not the final evaluation.

**Adversarial term** (``adv_weight`` W > 0; SRGAN/ESRGAN's idea, for the perception–distortion
trade-off of Blau & Michaeli 2018): a patch discriminator D (:class:`.models.PatchDiscriminator`)
learns to tell HR patches from the net's outputs, with its own Adam (peak rate ``d_lr``, on the same
warm-up + cosine schedule), and the SR net minimises ``pixel loss + W · non-saturating GAN loss``.
The pixel loss alone predicts the mean of the HR images that fit an LR patch — a blur of them;
the GAN term pulls the output towards *a* sharp one: lower PSNR, more texture. Meant as a fine-tune
of a pixel-trained net (``init_from``); D starts from scratch.

A run folder holds ``last.safetensors/.json`` (weights, EMA, Adam moments, the sampler's RNG, and
D with its Adam when adversarial: all that ``resume`` needs; the JSON has the history) and
``model.safetensors/.json`` (the EMA model of the SR net alone, kind ``sr-model``: what
``imagegen eval-sr`` and ``imagegen ship`` take).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..core.checkpoint import (CheckpointError, load_checkpoint, load_optimizer, open_run_dir,
                               optimizer_tensors, save_checkpoint)
from ..core.runtime import resolve_device
from ..core.training import bf16_autocast, check_resume_settings, count_parameters, ema_update
from ..gan.losses import d_loss_bce, g_loss_nonsaturating
from .data import FSRCNN_DOWNSCALES, PatchSampler, load_sr_set
from .models import SR_ARCHS, PatchDiscriminator, arch_defaults, build_sr, super_resolve

__all__ = ["SRConfig", "SRTrainResult", "train_sr", "save_sr_model", "load_sr_model", "sr_upscaler",
           "evaluate_model", "lr_at"]

LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}
# Settings that may differ when resuming (they change what is logged, not what is learnt).
_RESUME_FREE = ("eval_every", "log_every", "ckpt_every", "ckpt_minutes")


@dataclass
class SRConfig:
    arch: str = "resnet"  # 'srcnn' | 'espcn' | 'resnet'
    scale: int = 3
    color: str | None = None  # 'rgb' | 'y'; None: the architecture's own (SRCNN/ESPCN: y, resnet: rgb)
    width: int = 64  # resnet: channels of the body; srcnn/espcn: filters of the first layer (n1)
    blocks: int = 16  # resnet only
    res_scale: float = 1.0  # resnet only: residual branch scaling (EDSR uses 0.1 for wide nets)
    global_skip: bool | None = None  # add the bicubic upscale to the output; None: the arch's default
    patch: int = 32  # LR patch side (the HR patch is scale * patch)
    batch_size: int = 16
    lr: float = 5e-4  # peak learning rate (after warm-up)
    beta1: float = 0.9
    beta2: float = 0.999
    loss: str = "l1"  # 'l1' | 'mse'
    adv_weight: float = 0.0  # W in: loss = pixel loss + W * adversarial loss (0: off, no discriminator)
    d_lr: float = 1e-4  # the discriminator's peak learning rate (used when adv_weight > 0)
    steps: int | None = None  # train for this many steps, and/or ...
    minutes: float | None = None  # ... for this much wall time (setup included); whichever ends first
    warmup: float = 0.02  # fraction of the schedule spent ramping the learning rate up from 0
    downscales: tuple[float, ...] = FSRCNN_DOWNSCALES  # T91 also at these sizes (FSRCNN's augmentation)
    ema: float = 0.999  # EMA decay of the weights (0: off; the raw weights are exported then)
    grad_clip: float = 0.0  # max gradient norm (0: off)
    seed: int = 0
    log_every: int = 100  # steps between loss readings (each reading syncs the GPU)
    eval_every: int = 0  # steps between PSNR checks on eval_set (0: only at the end)
    ckpt_every: int = 5000  # steps between checkpoints ...
    ckpt_minutes: float = 2.0  # ... or minutes, whichever comes first (plus one at the end)
    eval_set: str = "Set5"
    bf16: bool = False  # bf16 autocast (CUDA only)
    channels_last: bool = False  # NHWC memory layout (faster convolutions on tensor cores)
    init_from: str | None = None  # start from this sr-model's weights (layers whose shapes fit)

    def __post_init__(self):
        defaults = arch_defaults(self.arch)  # also rejects unknown architectures, listing the known ones
        self.color = self.color or defaults["color"]
        self.global_skip = defaults["global_skip"] if self.global_skip is None else bool(self.global_skip)
        self.downscales = tuple(float(f) for f in self.downscales)
        if self.color not in ("rgb", "y"):
            raise ValueError(f"color must be 'rgb' or 'y', got {self.color!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {sorted(LOSSES)}")
        if self.scale not in (2, 3, 4):
            raise ValueError(f"scale must be 2, 3 or 4 (the benchmark scales), got {self.scale}")
        if self.steps is None and self.minutes is None:
            raise ValueError("say how long to train: steps (--steps N) and/or minutes (--minutes M)")
        if self.steps is not None and self.steps < 1 or self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"steps must be >= 1 and minutes > 0, got steps={self.steps}, minutes={self.minutes}")
        for name in ("width", "blocks", "patch", "batch_size", "log_every", "ckpt_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or not 0 <= self.warmup < 1 or not 0 <= self.ema < 1:
            raise ValueError(f"need lr > 0, 0 <= warmup < 1, 0 <= ema < 1; got lr={self.lr}, "
                             f"warmup={self.warmup}, ema={self.ema}")
        if not self.downscales or not all(0 < f <= 1 for f in self.downscales):
            raise ValueError(f"downscales must be factors in (0, 1], got {self.downscales}")
        if not 0 <= self.adv_weight < math.inf or not self.d_lr > 0:
            raise ValueError(f"need adv_weight >= 0 (0: no adversarial term) and d_lr > 0; got "
                             f"adv_weight={self.adv_weight}, d_lr={self.d_lr}")

    @classmethod
    def from_dict(cls, d: dict) -> "SRConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def model_kwargs(self) -> dict:
        kw = {"color": self.color, "global_skip": self.global_skip}
        if self.arch == "resnet":
            kw.update(width=self.width, blocks=self.blocks, res_scale=self.res_scale)
        else:
            kw.update(n1=self.width)
        return kw


@dataclass
class SRTrainResult:
    model: torch.nn.Module  # the exported model (EMA weights if ema > 0), eval mode
    config: SRConfig
    history: list[dict] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    final_psnr: float | None = None  # on config.eval_set, Y channel, the standard protocol


def lr_at(progress: float, config: SRConfig) -> float:
    """Linear warm-up over the first ``warmup`` of the schedule, then cosine decay to 0 at progress 1."""
    if progress < config.warmup:
        return config.lr * progress / config.warmup
    t = (progress - config.warmup) / (1 - config.warmup)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


# ---------------------------------------------------------------------------------------------
# Saving, loading, scoring a model
# ---------------------------------------------------------------------------------------------

def save_sr_model(model, config: SRConfig, stem, extra_meta: dict | None = None) -> Path:
    """Export the model alone: what ``imagegen eval-sr``, ``imagegen ship`` and the book load."""
    meta = {"kind": "sr-model", "arch": config.arch, "scale": config.scale, "dataset": "T91",
            "model_kwargs": config.model_kwargs(), "parameters": count_parameters(model),
            "value_range": [0, 1], "config": asdict(config), **(extra_meta or {})}
    state = {k: v.float() for k, v in model.state_dict().items()}
    return save_checkpoint(stem, state, meta)


def load_sr_model(stem, device="cpu") -> tuple[torch.nn.Module, dict]:
    """Load a model exported by :func:`save_sr_model`; returns ``(model in eval mode, meta)``."""
    tensors, meta = load_checkpoint(stem, expect_kind="sr-model")
    if meta.get("arch") not in SR_ARCHS:
        raise CheckpointError(f"{stem}: unknown architecture {meta.get('arch')!r} in its JSON")
    model = build_sr(meta["arch"], int(meta["scale"]), **meta["model_kwargs"])
    try:
        model.load_state_dict(tensors)
    except RuntimeError as e:
        raise CheckpointError(f"{stem}: weights don't fit a {meta['arch']} x{meta['scale']} model: {e}") from None
    return model.to(device).eval(), meta


def sr_upscaler(model, device, ensemble: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """``lr uint8 (1, 3, h, w) -> sr float (1, 3, s*h, s*w)`` for :func:`imagegen_lib.sr.metrics.evaluate_sr`."""
    def upscale(lr: torch.Tensor) -> torch.Tensor:
        return super_resolve(model, lr.to(device).float() / 255.0, ensemble=ensemble).cpu()
    return upscale


def evaluate_model(model, set_name: str, device="cpu", ensemble: bool = False, **protocol) -> dict:
    """Score ``model`` on a test set (the standard protocol unless ``protocol`` overrides it)."""
    from .metrics import evaluate_sr

    was_training = model.training
    model.eval()
    try:
        return evaluate_sr(sr_upscaler(model, device, ensemble), set_name, model.scale, **protocol)
    finally:
        model.train(was_training)


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------

def _init_from(model, arch: str, path) -> dict:
    """Copy every tensor of a trained sr-model whose name and shape fit (e.g. all but the upsampler)."""
    source, meta = load_sr_model(path)
    if meta["arch"] != arch:
        raise ValueError(f"--init-from {path}: a {meta['arch']} model cannot initialise a {arch}")
    if source.color != model.color:
        raise ValueError(f"--init-from {path}: its color is {source.color!r}, this run's is {model.color!r}")
    own = model.state_dict()
    fitting = {k: v for k, v in source.state_dict().items() if k in own and own[k].shape == v.shape}
    own.update(fitting)
    model.load_state_dict(own)
    return {"path": str(path), "loaded": len(fitting), "kept_fresh": sorted(set(own) - set(fitting))}


class _Adversary:
    """The GAN half of an adversarial run: the discriminator D, its Adam, and its running losses.

    Per step, after the SR net's forward pass: :meth:`generator_loss` is the term G adds (times
    ``adv_weight``) — non-saturating, "make D call the outputs real" — and :meth:`step` then trains
    D one step on HR patches vs the same outputs, detached. The losses are :mod:`imagegen_lib.gan.losses`'s.
    """

    def __init__(self, config: SRConfig, channels: int, device: torch.device, memory_format, autocast):
        self.D = PatchDiscriminator(channels).to(device, memory_format=memory_format).train()
        # β = (0.9, 0.999), G's own (config.beta1/beta2), as SRGAN and ESRGAN use for both nets: D
        # here plays against a net anchored by its pixel loss, not the free generator whose
        # oscillations made DCGAN lower β1 to 0.5.
        self.opt = torch.optim.Adam(self.D.parameters(), lr=config.d_lr, betas=(config.beta1, config.beta2),
                                    **({"fused": True} if device.type == "cuda" else {}))
        self.peak_lr, self.memory_format, self.autocast = config.d_lr, memory_format, autocast
        self.running = torch.zeros(2, dtype=torch.float32, device=device)  # sums of G's adv. loss, D's loss

    def generator_loss(self, sr: torch.Tensor) -> torch.Tensor:
        """G's adversarial loss on its outputs ``sr`` (B, C, H, W); gradients reach G only."""
        self.D.requires_grad_(False)  # no gradients into D's weights from G's loss: saves the work
        try:
            with self.autocast():
                logits = self.D(sr.contiguous(memory_format=self.memory_format))  # (B, 1, H/8, W/8)
        finally:
            self.D.requires_grad_(True)
        loss = g_loss_nonsaturating(logits.float())
        self.running[0] += loss.detach()
        return loss

    def step(self, hr: torch.Tensor, sr: torch.Tensor, lr_factor: float) -> None:
        """One Adam step of D on real ``hr`` vs fake ``sr`` patches; ``lr_factor``: G's schedule / its peak."""
        for group in self.opt.param_groups:
            group["lr"] = self.peak_lr * lr_factor
        batch = torch.cat([hr, sr.detach()]).contiguous(memory_format=self.memory_format)
        with self.autocast():
            logits = self.D(batch).float()  # one pass: no batch statistics, so the same as two
        loss = d_loss_bce(logits[:len(hr)], logits[len(hr):])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.running[1] += loss.detach()

    def read(self, n: int) -> dict:
        """The mean losses since the last reading (``n`` steps), then zeroes the sums."""
        g_adv, d_loss = (self.running / n).tolist()
        self.running.zero_()
        return {"g_adv": g_adv, "d_loss": d_loss}

    def state(self) -> tuple[dict, dict]:
        tensors = {f"disc.{k}": v for k, v in self.D.state_dict().items()}
        t_opt, m_opt = optimizer_tensors(self.opt, "opt_d")
        return {**tensors, **t_opt}, {"opt_d": m_opt, "running_adv": self.running.tolist()}

    def load(self, tensors: dict, meta: dict) -> None:
        self.D.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("disc.")})
        load_optimizer(self.opt, tensors, "opt_d", meta["opt_d"])
        self.running.copy_(torch.tensor(meta["running_adv"], dtype=torch.float32))


def _save_run(out, model, ema, opt, gen, config, step, seconds, budget, history, extra_meta, final_psnr, running,
              adversary=None):
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    t_opt, m_opt = optimizer_tensors(opt, "opt")
    tensors.update(t_opt)
    tensors["sampler_rng"] = gen.get_state()
    meta = {"kind": "sr-train-state", "config": asdict(config), "step": step, "seconds": seconds,
            "budget_seconds": budget, "opt": m_opt, "history": history, "running_loss": running, **extra_meta}
    if adversary is not None:
        t_adv, m_adv = adversary.state()
        tensors.update(t_adv)
        meta.update(m_adv)
    save_checkpoint(out / "last", tensors, meta)
    export = {"step": step, "train_seconds": round(seconds, 2), "weights": "ema" if ema is not None else "raw",
              **extra_meta}
    if final_psnr is not None:
        export[f"{config.eval_set.lower()}_psnr_y"] = final_psnr
    save_sr_model(ema if ema is not None else model, config, out / "model", export)


def _restore(out, model, ema, opt, gen, config, adversary=None):
    tensors, meta = load_checkpoint(out / "last", expect_kind="sr-train-state")
    saved = SRConfig.from_dict(meta["config"])
    check_resume_settings(config, saved, may_change=_RESUME_FREE)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    load_optimizer(opt, tensors, "opt", meta["opt"])
    gen.set_state(tensors["sampler_rng"])
    if adversary is not None:
        adversary.load(tensors, meta)
    return (int(meta["step"]), float(meta["seconds"]), meta.get("budget_seconds"), list(meta["history"]),
            meta.get("running_loss", [0.0, 0]))


def train_sr(
    config: SRConfig,
    out_dir: str | Path | None = None,
    resume: bool = False,
    device: str | torch.device = "auto",
    progress: bool = True,
    max_steps: int | None = None,
    extra_meta: dict[str, Any] | None = None,
    train_images: list[torch.Tensor] | None = None,
    on_log: Callable[[dict], None] | None = None,
) -> SRTrainResult:
    """Train ``config.arch`` at ``config.scale`` on T91 (or on ``train_images``, uint8 ``(3, H, W)`` HR images).

    ``out_dir`` (optional) receives the run folder described in the module docstring; ``resume``
    continues it. ``max_steps`` stops early (resume later); in steps mode the schedule still
    spans ``config.steps``. ``on_log`` gets every history row (loss rows and PSNR rows).
    """
    t_setup = time.perf_counter()
    device = resolve_device(device)
    extra_meta = dict(extra_meta or {})
    out = open_run_dir(out_dir, resume)  # refuses to overwrite a run before any work is done
    if train_images is None:
        train_images = [im.hr for im in load_sr_set("T91")]
    sampler = PatchSampler(train_images, config.scale, config.patch, config.downscales, config.color, device)

    torch.manual_seed(config.seed)
    model = build_sr(config.arch, config.scale, **config.model_kwargs()).to(device)
    if config.init_from and not resume:
        extra_meta["init_from"] = _init_from(model, config.arch, config.init_from)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    ema = copy.deepcopy(model).requires_grad_(False) if config.ema > 0 else None
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2),
                           **({"fused": True} if device.type == "cuda" else {}))
    gen = torch.Generator(device=device).manual_seed(config.seed + 1)
    loss_fn = LOSSES[config.loss]
    autocast = bf16_autocast(config.bf16, device)
    # Built after G (and only when asked for), so that G's initialisation is the same either way.
    adversary = _Adversary(config, model.channels, device, memory_format, autocast) if config.adv_weight > 0 else None
    if adversary is not None:
        extra_meta["discriminator_parameters"] = count_parameters(adversary.D)

    step, seconds_before, budget, history, running_loss = 0, 0.0, None, [], [0.0, 0]
    if out is not None and resume:
        step, seconds_before, budget, history, running_loss = _restore(out, model, ema, opt, gen, config, adversary)
    if config.minutes is not None and budget is None:
        # The budget covers the whole command: what setup took is taken off the training time.
        budget = config.minutes * 60.0 - (time.perf_counter() - t_setup)
        if budget <= 0:
            raise ValueError(f"--minutes {config.minutes}: setup alone took longer than the budget")
    extra_meta.update(sampler=repr(sampler), parameters=count_parameters(model))

    t0 = time.perf_counter()
    last_ckpt = t0

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - t0

    def progress_now() -> float:  # 0 -> 1 over the schedule, on whichever clock is further along
        by_steps = step / config.steps if config.steps is not None else 0.0
        by_time = elapsed() / budget if budget is not None else 0.0
        return max(by_steps, by_time)

    def evaluate() -> float:
        net = ema if ema is not None else model
        return evaluate_model(net, config.eval_set, device)["psnr"]

    def checkpoint(final_psnr=None):
        if out is not None:
            # the loss summed since the last history row, so that the next row is the same after a resume
            running_now = [float(running), n_running]
            _save_run(out, model, ema, opt, gen, config, step, elapsed(), budget, history, extra_meta, final_psnr,
                      running_now, adversary)

    ema_params = list(ema.parameters()) if ema is not None else None
    params = list(model.parameters())
    bar = tqdm(total=100, initial=round(100 * min(progress_now(), 1.0)), disable=not progress, unit="%",
               desc=f"{config.arch} x{config.scale}", dynamic_ncols=True,
               bar_format="{l_bar}{bar}| {n:.0f}/100% [{elapsed}<{remaining}{postfix}]")
    running = torch.tensor(float(running_loss[0]), dtype=torch.float32, device=device)
    n_running, mid_step, psnr_now = int(running_loss[1]), False, None
    eval_key, last_loss = f"{config.eval_set.lower()}_psnr", float("nan")
    model.train()
    try:
        while (p := progress_now()) < 1 and (max_steps is None or step < max_steps):
            lr_now = lr_at(p, config)
            for group in opt.param_groups:
                group["lr"] = lr_now
            mid_step = True
            lr_patch, hr_patch = sampler.sample(config.batch_size, gen)  # (B,C,p,p), (B,C,sp,sp)
            lr_patch = lr_patch.contiguous(memory_format=memory_format)
            with autocast():
                sr = model(lr_patch)  # (B, C, s*p, s*p)
            loss = loss_fn(sr.float(), hr_patch)  # the pixel loss: what is logged as "loss"
            total = loss if adversary is None else loss + config.adv_weight * adversary.generator_loss(sr)
            opt.zero_grad(set_to_none=True)
            total.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            opt.step()
            if ema is not None:
                ema_update(ema_params, params, step, config.ema)
            if adversary is not None:
                adversary.step(hr_patch, sr, lr_now / config.lr)
            step += 1
            running += loss.detach()
            n_running += 1
            mid_step = False
            if step % config.log_every == 0:
                last_loss = float(running) / n_running
                row = {"step": step, "loss": last_loss, **(adversary.read(n_running) if adversary else {}),
                       "lr": lr_now, "seconds": round(elapsed(), 2), "progress": round(min(progress_now(), 1.0), 4)}
                running.zero_()
                n_running = 0
                history.append(row)
                if on_log is not None:
                    on_log(row)
            if config.eval_every and step % config.eval_every == 0:
                psnr_now = evaluate()
                history.append({"step": step, "seconds": round(elapsed(), 2), eval_key: psnr_now})
                if on_log is not None:
                    on_log(history[-1])
            if step % config.log_every == 0:
                bar.n = round(100 * min(progress_now(), 1.0))
                bar.set_postfix(step=step, loss=f"{last_loss:.4f}", lr=f"{lr_now:.1e}",
                                **({config.eval_set: f"{psnr_now:.2f}dB"} if psnr_now is not None else {}))
            if (step % config.ckpt_every == 0 or time.perf_counter() - last_ckpt > config.ckpt_minutes * 60):
                checkpoint()
                last_ckpt = time.perf_counter()
    except KeyboardInterrupt:
        if not mid_step:  # a half-done update would not resume exactly; the last checkpoint stands
            checkpoint()
        bar.close()
        raise
    bar.n = round(100 * min(progress_now(), 1.0))
    bar.close()
    finished = progress_now() >= 1
    final_psnr = evaluate() if finished else None
    if finished:
        history.append({"step": step, "seconds": round(elapsed(), 2), "final": True, eval_key: final_psnr})
    checkpoint(final_psnr)
    exported = (ema if ema is not None else model).eval()
    return SRTrainResult(exported, config, history, step, elapsed(), final_psnr)
