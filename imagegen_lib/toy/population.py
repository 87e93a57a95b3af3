"""Many 2-D GANs trained at once: one batched forward pass per step for every (variant, seed).

Q4 compares eight training recipes over three seeds — 24 GANs. Trained one after another on a
CPU, tiny MLPs spend their time in per-operation overhead, not arithmetic. Here the 24 networks
are *stacked*: every weight has a leading "member" dimension ``S`` and a layer is one batched
matrix product (``torch.baddbmm``). Nothing is shared between members:

* each member's loss is a mean over its own batch, and the total is a *sum* over members, so
  the gradient of member ``s``'s weights is exactly its own loss's gradient;
* Adam is elementwise, so one Adam over stacked tensors is ``S`` independent Adams — here with
  a per-member learning rate and betas (that is how TTUR members get their own rates);
* spectral norm keeps a power-iteration vector per member.

Every member follows the recipe of a :class:`~imagegen_lib.toy.gan.ToyGANConfig` (loss, learning
rates, betas, label smoothing, instance noise, spectral norm, gradient-penalty weight, R1, seed);
the fields of :data:`SHARED_FIELDS` (steps, batch size, widths, D steps per G step, ...) must
agree — :func:`population_groups` splits a list of configs into populations that can train
together. ``tests/test_toy.py`` checks that a member's run does not depend on who else is in the
population. One thing *is* shared: the random stream. Member ``i`` draws slice ``i`` of every
batch, so its data depend on its position, on the population's size, and on whether any member
draws extra noise (instance noise, the gradient penalty's interpolation) — the same statistics,
other numbers.

On a GPU (``device='cuda'``) the random numbers are still drawn on the CPU, from the same
stream, and copied over: a run's data do not depend on the device. Steps of such small networks
cost kernel launches, not arithmetic, so a GPU trains many members for the price of one; what
costs time is steps × (1 + D steps) × layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .gan import ToyGANConfig, mode_coverage, ring_of_gaussians

__all__ = ["PopLinear", "PopMLP", "PopAdam", "PopulationRun", "SHARED_FIELDS", "population_groups",
           "train_population", "sample_population", "coverage_score"]

# What one population's members must agree on: they step together, on batches of one shape.
SHARED_FIELDS = ("steps", "batch_size", "z_dim", "hidden", "depth", "d_steps", "log_every", "d_head_start")
_LOSS_CODE = {"saturating": 0, "nonsaturating": 1, "wgan-gp": 2, "hinge": 3}


class PopLinear(nn.Module):
    """``S`` independent ``Linear(fan_in, fan_out)`` layers; optional spectral norm per member."""

    def __init__(self, seeds: list[int], fan_in: int, fan_out: int, sn_mask: torch.Tensor | None = None):
        super().__init__()
        S, bound = len(seeds), 1 / math.sqrt(fan_in)  # nn.Linear's default init range
        w, b = torch.empty(S, fan_in, fan_out), torch.empty(S, 1, fan_out)
        for s, seed in enumerate(seeds):
            g = torch.Generator().manual_seed(seed)
            w[s].uniform_(-bound, bound, generator=g)
            b[s].uniform_(-bound, bound, generator=g)
        self.weight, self.bias = nn.Parameter(w), nn.Parameter(b)
        self.register_buffer("sn_mask", sn_mask)  # a buffer: it follows the weights to the GPU
        self.sn = sn_mask is not None and bool(sn_mask.any())  # decided once: no GPU sync per forward
        if sn_mask is not None:
            g = torch.Generator().manual_seed(seeds[0] + 7)
            self.register_buffer("u", F.normalize(torch.randn(S, fan_out, generator=g), dim=1))

    def sigma(self) -> torch.Tensor:
        """Per-member estimate of the largest singular value (one power iteration when training)."""
        W = self.weight  # (S, in, out): x @ W
        with torch.no_grad():
            u = self.u
            if self.training:
                v = F.normalize(torch.bmm(W, u.unsqueeze(2)).squeeze(2), dim=1)
                u = F.normalize(torch.bmm(W.transpose(1, 2), v.unsqueeze(2)).squeeze(2), dim=1)
                self.u.copy_(u)
            v = F.normalize(torch.bmm(W, u.unsqueeze(2)).squeeze(2), dim=1)
        return torch.einsum("si,sio,so->s", v, W, u)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (S, N, in) -> (S, N, out)
        W = self.weight
        if self.sn:
            scale = torch.where(self.sn_mask, 1 / self.sigma(), torch.ones_like(self.sn_mask, dtype=W.dtype))
            W = W * scale[:, None, None]
        return torch.baddbmm(self.bias, x, W)


class PopMLP(nn.Module):
    """``S`` stacked copies of :class:`~imagegen_lib.toy.models.ToyGenerator` (``act='relu'``) or
    of ``ToyDiscriminator`` (``act='leaky'``, output squeezed to ``(S, N)``)."""

    def __init__(self, seeds, in_dim, hidden, depth, out_dim, act="relu", sn_mask=None):
        super().__init__()
        dims = [in_dim] + [hidden] * depth + [out_dim]
        self.layers = nn.ModuleList(
            PopLinear([s * 1000 + i for s in seeds], a, b, sn_mask) for i, (a, b) in enumerate(zip(dims, dims[1:])))
        self.act = nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2)
        self.z_dim = in_dim

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = self.act(layer(x))
        return self.layers[-1](x)


class PopAdam:
    """Adam over stacked parameters with a per-member learning rate ``lr`` of shape ``(S,)``.

    ``betas``: one pair for every member, or an ``(S, 2)`` tensor of per-member pairs. An update is
    a dozen ``torch._foreach_*`` calls over all parameters: on a GPU, where these tiny steps cost
    kernel launches, one launch per operation instead of one per parameter; on a CPU they run the
    same per-tensor operations as a loop would, so shared-betas results stay bit for bit what they
    were. Per-member values (learning rate, betas) are kept spread to each parameter's shape:
    the GPU's one-launch path wants operands of equal shape."""

    def __init__(self, params, lr: torch.Tensor, betas=(0.5, 0.999), eps=1e-8):
        self.params, self.eps, self.t = list(params), eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.lr = self._spread(lr)
        self.shared = not isinstance(betas, torch.Tensor)
        if self.shared:
            self.betas = tuple(betas)
        else:
            b = betas.double()  # 1 - β in float64, as Python computes it for shared betas
            self.b1, self.b2 = self._spread(b[:, 0]), self._spread(b[:, 1])
            self.one_minus_b1, self.one_minus_b2 = self._spread(1 - b[:, 0]), self._spread(1 - b[:, 1])
            self.b1_power = [torch.ones_like(p) for p in self.params]  # β^t, for the bias corrections
            self.b2_power = [torch.ones_like(p) for p in self.params]

    def _spread(self, values: torch.Tensor) -> list[torch.Tensor]:
        """An ``(S,)`` tensor as one dense tensor of each parameter's shape."""
        return [values.to(p.device, p.dtype).view((-1,) + (1,) * (p.dim() - 1)).expand_as(p).contiguous()
                for p in self.params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def _moments(self, grads, i):
        """Update the moments of parameters ``i``; return the bias corrections (numbers or tensor lists)."""
        m, v = [self.m[j] for j in i], [self.v[j] for j in i]
        if self.shared:  # the original scalar arithmetic
            b1, b2 = self.betas
            torch._foreach_mul_(m, b1)
            torch._foreach_add_(m, grads, alpha=1 - b1)
            torch._foreach_mul_(v, b2)
            torch._foreach_addcmul_(v, grads, grads, value=1 - b2)
            return 1 - b1 ** self.t, 1 - b2 ** self.t
        b1, b2 = [self.b1[j] for j in i], [self.b2[j] for j in i]
        torch._foreach_mul_(m, b1)
        torch._foreach_addcmul_(m, [self.one_minus_b1[j] for j in i], grads)
        torch._foreach_mul_(v, b2)
        torch._foreach_addcmul_(v, [self.one_minus_b2[j] for j in i], torch._foreach_mul(grads, grads))
        p1, p2 = [self.b1_power[j] for j in i], [self.b2_power[j] for j in i]
        torch._foreach_mul_(p1, b1)
        torch._foreach_mul_(p2, b2)
        return torch._foreach_add(torch._foreach_neg(p1), 1.0), torch._foreach_add(torch._foreach_neg(p2), 1.0)

    @torch.no_grad()
    def step(self):
        """``p -= lr · m̂ / (√v̂ + eps)`` for every parameter that has a gradient."""
        self.t += 1
        i = [j for j, p in enumerate(self.params) if p.grad is not None]
        if not i:
            return
        c1, c2 = self._moments([self.params[j].grad for j in i], i)
        update = torch._foreach_div([self.m[j] for j in i], c1)  # m̂
        torch._foreach_mul_(update, [self.lr[j] for j in i])  # lr · m̂ (the order of the original expression)
        denom = torch._foreach_div([self.v[j] for j in i], c2)  # v̂
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_div_(update, denom)
        torch._foreach_sub_([self.params[j] for j in i], update)


@dataclass
class PopulationRun:
    G: PopMLP
    D: PopMLP
    configs: list[ToyGANConfig]
    history: list[dict] = field(default_factory=list)  # per log row: step and (S,) lists per statistic


def _member_tensor(configs, name, dtype=torch.float32):
    return torch.tensor([getattr(c, name) for c in configs], dtype=dtype)


def _per_member_grad_norm(module) -> torch.Tensor:
    sq = sum(p.grad.pow(2).flatten(1).sum(1) for p in module.parameters() if p.grad is not None)
    return sq.sqrt()


def population_groups(configs: list[ToyGANConfig]) -> list[list[int]]:
    """Which configs can train together? Indices grouped by :data:`SHARED_FIELDS`, in first-seen order."""
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(tuple(getattr(c, k) for k in SHARED_FIELDS), []).append(i)
    return list(groups.values())


def _check_population(configs: list[ToyGANConfig]) -> None:
    """Refuse, with what to do instead, a population whose members cannot step together."""
    if not configs:
        raise ValueError("train_population needs at least one config")
    base = configs[0]
    for c in configs:
        bad = [k for k in SHARED_FIELDS if getattr(c, k) != getattr(base, k)]
        if bad:
            raise ValueError(f"population members must share {bad}; split the configs with "
                             f"population_groups() and train one population per group")
        if c.minibatch_std or c.optimizer != "adam":
            raise ValueError("minibatch_std and optimizer='sgd' are not supported in a population; "
                             "use train_toy_gan")


def _member_betas(configs):
    """One shared pair (the original arithmetic) or an ``(S, 2)`` tensor when members differ."""
    betas = [tuple(c.betas) for c in configs]
    return betas[0] if len(set(betas)) == 1 else torch.tensor(betas, dtype=torch.float64)


def train_population(configs: list[ToyGANConfig], sampler=None, data: torch.Tensor | None = None,
                     callback=None, callback_steps: tuple[int, ...] = (), device: str | torch.device = "cpu",
                     score: Callable[[PopMLP], dict] | None = None) -> PopulationRun:
    """Train one 2-D GAN per config, all at once. Real data: fresh ring samples (or ``sampler``),
    or minibatches of a fixed ``data`` set. ``callback(step, G, D)`` runs at ``callback_steps``.
    ``score(G)`` (e.g. :func:`coverage_score`) runs at every history row and its per-member lists
    join the row. The networks live on ``device``; weights start and data are drawn on the CPU, so
    a member starts from the same weights and sees the same data on any device.
    Returns stacked G and D plus per-member history."""
    _check_population(configs)
    base, device = configs[0], torch.device(device)
    S, N = len(configs), base.batch_size
    seeds = [c.seed for c in configs]
    code = torch.tensor([_LOSS_CODE[c.loss] for c in configs], device=device)
    sn_mask = torch.tensor([c.spectral_norm for c in configs])
    G = PopMLP(seeds, base.z_dim, base.hidden, base.depth, 2, "relu").to(device)
    D = PopMLP([s + 500 for s in seeds], 2, base.hidden, base.depth, 1, "leaky",
               sn_mask if sn_mask.any() else None).to(device)
    betas = _member_betas(configs)
    betas = betas.to(device) if isinstance(betas, torch.Tensor) else betas
    opt_g = PopAdam(G.parameters(), _member_tensor(configs, "lr_g").to(device), betas)
    opt_d = PopAdam(D.parameters(), _member_tensor(configs, "lr_d").to(device), betas)
    real_label = (1 - _member_tensor(configs, "label_smoothing"))[:, None].to(device)
    noise0 = _member_tensor(configs, "instance_noise")[:, None, None]
    gp_w = torch.tensor([c.gp_weight if c.loss == "wgan-gp" else 0.0 for c in configs])
    r1_w = 0.5 * _member_tensor(configs, "r1_gamma")
    # Decided once, on the CPU: a data-dependent `if` on a GPU tensor would wait for the GPU every step.
    any_noise, any_gp, any_r1 = bool((noise0 > 0).any()), bool((gp_w > 0).any()), bool((r1_w > 0).any())
    noise0, gp_w, r1_w = noise0.to(device), gp_w.to(device), r1_w.to(device)
    gen = torch.Generator().manual_seed(base.seed * 7919 + 1)
    sampler = sampler or (lambda n, g: ring_of_gaussians(n, generator=g))

    def on_device(x):  # non_blocking: the copy queues behind the GPU's work instead of waiting for it
        return x.to(device, non_blocking=True)

    def draw():
        if data is not None:
            return on_device(data[torch.randint(len(data), (S, N), generator=gen)])
        return on_device(sampler(S * N, gen).view(S, N, -1))

    def latent():
        return on_device(torch.randn(S, N, base.z_dim, generator=gen))

    def noisy(x, std):
        return x + std * on_device(torch.randn(x.shape, generator=gen)) if any_noise else x

    def d_step(noise_std):
        real, z = draw(), latent()
        with torch.no_grad():
            fake = G(z)
        real_in, fake_in = noisy(real, noise_std), noisy(fake, noise_std)
        if any_r1:
            real_in.requires_grad_(True)
        r, f = D(real_in).squeeze(2), D(fake_in).squeeze(2)  # (S, N)
        bce = F.binary_cross_entropy_with_logits(r, real_label.expand_as(r), reduction="none").mean(1) \
            + F.softplus(f).mean(1)
        wgan = f.mean(1) - r.mean(1)
        hinge = F.relu(1 - r).mean(1) + F.relu(1 + f).mean(1)
        loss = torch.where(code <= 1, bce, torch.where(code == 2, wgan, hinge))
        if any_gp:
            eps = on_device(torch.rand(S, N, 1, generator=gen))
            x_hat = (eps * real_in.detach() + (1 - eps) * fake_in).requires_grad_(True)
            (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
            loss = loss + gp_w * ((grad.norm(dim=2) - 1) ** 2).mean(1)
        if any_r1:  # R1: γ/2 E||∇_x D(x)||² on the real batch; member s's scores depend on its inputs only
            (grad,) = torch.autograd.grad(r.sum(), real_in, create_graph=True)
            loss = loss + r1_w * grad.pow(2).sum(2).mean(1)
        opt_d.zero_grad()
        loss.sum().backward()  # sum over members: each member's weights get its own loss's gradient
        opt_d.step()
        return loss.detach(), torch.sigmoid(r.detach()).mean(1), torch.sigmoid(f.detach()).mean(1)

    for _ in range(base.d_head_start):
        d_step(noise0)
    run = PopulationRun(G, D, configs)
    acc: dict[str, torch.Tensor] = {}
    for step in range(1, base.steps + 1):
        noise_std = noise0 * (1 - (step - 1) / base.steps)
        for _ in range(base.d_steps):
            loss_d, d_real, d_fake = d_step(noise_std)
        f = D(noisy(G(latent()), noise_std)).squeeze(2)
        loss_g = torch.where(code == 0, -F.softplus(f).mean(1),
                             torch.where(code == 1, F.softplus(-f).mean(1), -f.mean(1)))
        opt_g.zero_grad()
        loss_g.sum().backward()
        gnorm = _per_member_grad_norm(G)
        opt_g.step()
        for k, v in (("loss_d", loss_d), ("loss_g", loss_g.detach()), ("g_grad_norm", gnorm),
                     ("d_real", d_real), ("d_fake", d_fake)):
            acc[k] = acc.get(k, 0) + v
        if step % base.log_every == 0:
            row = {"step": step, **{k: (v / base.log_every).tolist() for k, v in acc.items()}}
            run.history.append({**row, **(score(G) if score is not None else {})})
            acc.clear()
        if callback is not None and step in callback_steps:
            callback(step, G, D)
    return run


@torch.no_grad()
def sample_population(G: PopMLP, n: int = 2500, seed: int = 12345) -> torch.Tensor:
    """``(S, n, 2)`` samples, the same evaluation noise for every member."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    weight = G.layers[0].weight
    return G(z.to(weight.device).expand(weight.shape[0], n, G.z_dim).contiguous())


def coverage_score(centres: torch.Tensor, std: float, n: int = 2500) -> Callable[[PopMLP], dict]:
    """A ``score`` for :func:`train_population`: every member's modes covered and high-quality
    fraction (:func:`~imagegen_lib.toy.gan.mode_coverage`) on ``n`` samples of the fixed evaluation noise."""
    def score(G: PopMLP) -> dict:
        results = [mode_coverage(x, centres, std) for x in sample_population(G, n).cpu()]
        return {"modes": [r["modes"] for r in results], "high_quality": [r["high_quality"] for r in results]}
    return score
