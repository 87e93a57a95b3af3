"""The diffusion package against closed forms: the forward process, the parameterisations, Min-SNR,
classifier-free guidance, and every sampler on Gaussian data, whose exact denoiser is known."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from imagegen_lib.diffusion.guidance import drop_labels, guided_output
from imagegen_lib.diffusion.objectives import (PREDICTIONS, ddpm_loss, flow_loss, min_snr_weight, prediction_target,
                                               split_prediction)
from imagegen_lib.diffusion.samplers import (Denoiser, ddim_timesteps, ddpm_levels, flow_levels, karras_timesteps,
                                             network_calls, sample_ddim, sample_dpmpp_2m, sample_euler, sample_heun)
from imagegen_lib.diffusion.schedules import NoiseSchedule, make_betas, rescale_zero_terminal_snr
from imagegen_lib.diffusion.toy2d import exact_eps, eps_error_by_step, ring_mixture, train_toy
from imagegen_lib.diffusion.train import DDPMConfig
from imagegen_lib.diffusion.unet import UNet


# --- the forward process and the schedules ---------------------------------------------------------

def test_q_sample_has_the_closed_form_moments():
    schedule = NoiseSchedule("cosine", 100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20_000, 1, 2, 2), 0.7)
    for step in (0, 30, 99):
        t = torch.full((20_000,), step)
        xt = schedule.q_sample(x0, t, torch.randn(x0.shape, generator=g))
        ab = float(schedule.alpha_bar[step])
        assert float(xt.mean()) == pytest.approx(math.sqrt(ab) * 0.7, abs=0.01)
        assert float(xt.var()) == pytest.approx(1 - ab, abs=0.01)


def test_zero_terminal_snr_reaches_pure_noise_and_keeps_the_first_step():
    for kind in ("linear", "cosine"):
        plain, zero = make_betas(kind, 1000), make_betas(kind, 1000, zero_terminal_snr=True)
        ab_plain, ab_zero = torch.cumprod(1 - plain, 0), torch.cumprod(1 - zero, 0)
        assert float(ab_plain[-1]) > 0 and float(ab_zero[-1]) == 0.0
        assert float(ab_zero[0]) == pytest.approx(float(ab_plain[0]), rel=1e-12)
        assert (ab_zero[1:] <= ab_zero[:-1]).all()  # still a noising schedule
    assert float(rescale_zero_terminal_snr(make_betas("linear", 1000))[-1]) == pytest.approx(1.0)
    # the linear schedule's leak: sqrt(ᾱ_T) of the plain schedule is small but not zero
    assert 0.004 < math.sqrt(float(torch.cumprod(1 - make_betas("linear", 1000), 0)[-1])) < 0.01


def test_bad_schedules_are_refused():
    with pytest.raises(ValueError, match="unknown noise schedule"):
        make_betas("quadratic", 10)
    with pytest.raises(ValueError, match="T must be"):
        make_betas("linear", 1)


# --- what the network predicts -------------------------------------------------------------------

@pytest.mark.parametrize("prediction", [*PREDICTIONS, "velocity"])
def test_every_target_converts_back_to_x0_and_eps(prediction):
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(4, 1, 3, 3, generator=g), torch.randn(4, 1, 3, 3, generator=g)
    if prediction == "velocity":  # flow matching: a + s = 1
        s = torch.rand(4, 1, 1, 1, generator=g) * 0.98 + 0.01
        a = 1 - s
    else:  # the DDPM: a² + s² = 1
        ab = torch.rand(4, 1, 1, 1, generator=g) * 0.98 + 0.01
        a, s = ab.sqrt(), (1 - ab).sqrt()
    x = a * x0 + s * eps
    x0_hat, eps_hat = split_prediction(prediction, prediction_target(prediction, x0, eps, a, s), x, a, s)
    assert torch.allclose(x0_hat, x0, atol=1e-5) and torch.allclose(eps_hat, eps, atol=1e-5)


def test_min_snr_weights_make_the_x0_weight_min_snr_gamma():
    snr = torch.tensor([0.01, 0.5, 1.0, 5.0, 50.0, 1e4], dtype=torch.float64)
    x0_equivalent = {"eps": snr, "x0": torch.ones_like(snr), "v": snr + 1}  # each MSE = x₀-MSE × this
    for prediction, factor in x0_equivalent.items():
        assert torch.allclose(min_snr_weight(prediction, snr, 5.0) * factor, snr.clamp(max=5.0))
    with pytest.raises(ValueError, match="gamma"):
        min_snr_weight("eps", snr, 0)


def test_the_v_loss_is_the_x0_loss_times_snr_plus_one():
    """The identity behind 'each target is the ε-loss under a weighting', on one noised batch."""
    g = torch.Generator().manual_seed(2)
    x0, eps, err = (torch.randn(3, 1, 4, 4, generator=g) for _ in range(3))
    ab = torch.tensor([0.1, 0.5, 0.9]).view(-1, 1, 1, 1)
    a, s = ab.sqrt(), (1 - ab).sqrt()
    x = a * x0 + s * eps
    eps_net = eps + 0.1 * err  # a network with a small ε error
    x0_net, _ = split_prediction("eps", eps_net, x, a, s)
    v_net = prediction_target("v", x0_net, eps_net, a, s)
    v_err = (v_net - prediction_target("v", x0, eps, a, s)).pow(2).flatten(1).mean(1)
    x0_err = (x0_net - x0).pow(2).flatten(1).mean(1)
    eps_err = (eps_net - eps).pow(2).flatten(1).mean(1)
    snr = (ab / (1 - ab)).flatten()
    assert torch.allclose(v_err, x0_err * (snr + 1), rtol=1e-4)
    assert torch.allclose(eps_err, x0_err * snr, rtol=1e-4)


def test_losses_run_and_reject_bad_input():
    schedule = NoiseSchedule("linear", 10)
    model = UNet((4, 4, 8), attention=False, num_classes=10)
    x0 = torch.rand(6, 1, 28, 28) * 2 - 1
    labels = torch.arange(6)
    g = torch.Generator().manual_seed(0)
    for prediction in PREDICTIONS:
        loss = ddpm_loss(model, schedule, x0, g, prediction=prediction, min_snr_gamma=5.0, labels=labels,
                         cond_drop=0.1)
        assert loss.isfinite() and loss.dim() == 0
    assert flow_loss(model, x0, g, labels=labels, cond_drop=0.5).isfinite()
    with pytest.raises(ValueError, match="unknown prediction"):
        ddpm_loss(model, schedule, x0, g, prediction="score")


def test_config_refuses_combinations_that_cannot_work():
    with pytest.raises(ValueError, match="divides by a = 0"):
        DDPMConfig(zero_terminal_snr=True)  # ε-prediction by default
    assert DDPMConfig(zero_terminal_snr=True, prediction="v").prediction == "v"
    with pytest.raises(ValueError, match="predicts the velocity"):
        DDPMConfig(objective="flow", prediction="x0")
    with pytest.raises(ValueError, match="cond_drop"):
        DDPMConfig(cond_drop=1.0)
    with pytest.raises(ValueError, match="unknown objective"):
        DDPMConfig(objective="score")
    assert DDPMConfig(objective="flow").prediction == "velocity" and DDPMConfig().prediction == "eps"
    assert DDPMConfig(cond_drop=0.1).num_classes == 10 and DDPMConfig().num_classes == 0


# --- classifier-free guidance --------------------------------------------------------------------

class _LabelledLinear(nn.Module):
    """A stand-in network whose output depends on the label in a known way: x + label."""

    num_classes = 10

    def forward(self, x, t, labels=None):
        labels = torch.full((x.shape[0],), 10) if labels is None else labels
        return x + labels.view(-1, 1, 1, 1).float()


def test_guidance_scale_one_is_the_conditional_model_and_zero_the_unconditional_one():
    model, x, t = _LabelledLinear(), torch.zeros(3, 1, 2, 2), torch.zeros(3, dtype=torch.long)
    labels = torch.tensor([1, 2, 3])
    assert torch.equal(guided_output(model, x, t, labels, 1.0), model(x, t, labels))
    assert torch.equal(guided_output(model, x, t, labels, 0.0), torch.full((3, 1, 2, 2), 10.0))
    out = guided_output(model, x, t, labels, 3.0)  # 10 + 3 (label − 10)
    assert torch.allclose(out[:, 0, 0, 0], torch.tensor([-17.0, -14.0, -11.0]))
    with pytest.raises(ValueError, match="needs class labels"):
        guided_output(model, x, t, None, 2.0)
    with pytest.raises(ValueError, match="unconditional"):
        guided_output(UNet((4, 4, 8), attention=False), torch.zeros(3, 1, 28, 28), t, labels, 2.0)


def test_label_dropout_rate_and_the_null_label():
    g = torch.Generator().manual_seed(0)
    out = drop_labels(torch.zeros(100_000, dtype=torch.long), 0.1, 10, g)
    assert float((out == 10).float().mean()) == pytest.approx(0.1, abs=0.005)
    unet = UNet((4, 4, 8), attention=False, num_classes=10)
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([3, 5])
    assert unet.null_label == 10
    with torch.no_grad():  # the label embedding starts at 0: at first, labels change nothing
        assert torch.equal(unet(x, t, torch.tensor([1, 2])), unet(x, t))
    with pytest.raises(ValueError, match="unconditional U-Net"):
        UNet((4, 4, 8), attention=False)(x, t, torch.tensor([1, 2]))


# --- samplers --------------------------------------------------------------------------------------

MU, SD = 0.3, 0.2  # Gaussian "data": every pixel N(MU, SD²) independently


class _GaussianOracle(nn.Module):
    """The exact network for Gaussian data: E[x₀ | x] is linear in x. Outputs ε (DDPM) or the velocity (flow)."""

    def __init__(self, schedule: NoiseSchedule | None):
        super().__init__()
        self.schedule = schedule

    def forward(self, x, t, labels=None):
        if self.schedule is not None:  # DDPM: t is the step index
            ab = self.schedule.alpha_bar.double()[t].view(-1, 1, 1, 1)
            a, s = ab.sqrt(), (1 - ab).sqrt()
        else:  # flow matching: t is 1000 × time
            s = (t.double() / 1000).view(-1, 1, 1, 1)
            a = 1 - s
        x = x.double()
        x0 = MU + a * SD ** 2 / (a ** 2 * SD ** 2 + s ** 2) * (x - a * MU)
        eps = (x - a * x0) / s
        return (eps if self.schedule is not None else eps - x0).float()


def _moments(x):
    return float(x.mean()), float(x.std())


def _std_error(sampler, steps: int, flow: bool) -> tuple[float, int]:
    """|std − SD| / SD of 2 000 × 784 samples, and the network calls it took."""
    g = torch.Generator().manual_seed(0)
    schedule = None if flow else NoiseSchedule("linear", 1000)
    denoise = Denoiser(_GaussianOracle(schedule), "velocity" if flow else "eps", clip=False, discrete=not flow)
    levels = flow_levels(steps) if flow else ddpm_levels(schedule, karras_timesteps(schedule, steps))
    x = sampler(denoise, levels, torch.randn(2000, 1, 28, 28, generator=g))
    mean, std = _moments(x)
    assert mean == pytest.approx(MU, abs=0.005)
    return abs(std - SD) / SD, denoise.calls


@pytest.mark.parametrize("flow", [False, True], ids=["ddpm", "flow"])
def test_ode_samplers_converge_to_gaussian_data_from_its_exact_denoiser(flow):
    # measured: Euler is first order (~5 % off at 100 steps), Heun and DPM-Solver++(2M) second order
    assert _std_error(sample_euler, 400, flow)[0] < 0.02
    assert _std_error(sample_heun, 100, flow)[0] < 0.005
    assert _std_error(sample_dpmpp_2m, 100, flow)[0] < 0.006


@pytest.mark.parametrize("flow", [False, True], ids=["ddpm", "flow"])
def test_second_order_samplers_beat_euler_at_equal_network_calls(flow):
    heun, heun_calls = _std_error(sample_heun, 25, flow)
    euler, euler_calls = _std_error(sample_euler, heun_calls, flow)
    assert heun_calls == euler_calls == network_calls("heun", 25) and heun < euler
    assert _std_error(sample_dpmpp_2m, 25, flow)[0] < _std_error(sample_euler, 25, flow)[0]


def test_euler_on_the_ddim_grid_is_ddim():
    torch.manual_seed(0)
    unet = UNet((4, 4, 8), attention=False)
    for p in unet.parameters():
        nn.init.normal_(p, std=0.05)  # a random, non-trivial network
    schedule = NoiseSchedule("linear", 50)
    ddim = sample_ddim(unet, schedule, 3, torch.Generator().manual_seed(5), steps=10, eta=0.0)
    x = torch.randn((3, 1, 28, 28), generator=torch.Generator().manual_seed(5))
    euler = sample_euler(Denoiser(unet, "eps"), ddpm_levels(schedule, ddim_timesteps(50, 10)), x)
    assert torch.allclose(ddim, euler, atol=1e-5)


def test_grids_and_network_call_counts():
    schedule = NoiseSchedule("linear", 1000)
    steps = karras_timesteps(schedule, 20)
    assert steps[0] == 999 and steps[-1] == 0 and steps == sorted(steps, reverse=True) and len(steps) <= 20
    levels = ddpm_levels(schedule, steps)
    assert levels[-1].s == 0 and levels[-1].a == 1 and all(lv.s > 0 for lv in levels[:-1])
    assert [round(lv.s, 3) for lv in flow_levels(4)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert network_calls("heun", 10) == 19 and network_calls("ddim", 10, guidance=3) == 20
    assert network_calls("ancestral", 1000) == 1000
    zero = NoiseSchedule("linear", 100, zero_terminal_snr=True)
    assert karras_timesteps(zero, 10)[0] == 99  # still starts from pure noise


# --- the 2-D score view ----------------------------------------------------------------------------

def test_the_exact_mixture_score_matches_autograd_and_a_trained_net_learns_it():
    mixture, schedule = ring_mixture(), NoiseSchedule("cosine", 100)
    x = torch.randn(64, 2, dtype=torch.float64, requires_grad=True)
    a, s = 0.8, 0.6
    var = a ** 2 * mixture.stds ** 2 + s ** 2  # log p_t by hand, differentiated by autograd
    comp = (mixture.weights.log() - (x[:, None] - a * mixture.means).pow(2).sum(-1) / (2 * var)
            - torch.log(2 * math.pi * var))
    grad, = torch.autograd.grad(torch.logsumexp(comp, 1).sum(), x)
    assert torch.allclose(mixture.score(x.detach(), a, s), grad)
    model = train_toy(mixture, schedule, steps=600, batch=256)
    errors = eps_error_by_step(model, mixture, schedule, [10, 50, 90], n=2000)
    assert errors[50]["error"] < 0.1 * errors[50]["ideal_norm2"] and errors[90]["error"] < 0.1 * errors[90]["ideal_norm2"]
    assert errors[10]["error"] > errors[90]["error"]  # near the data the score is sharpest: hardest to learn
    t = torch.full((5,), 99)
    assert exact_eps(mixture, torch.zeros(5, 2), t, schedule).abs().max() < 1e-6  # symmetric ring: ε* = 0 at 0
