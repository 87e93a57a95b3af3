"""Toy 2-D datasets, the mode-coverage metric, the toy GAN loops (single and population)."""

from __future__ import annotations

import json
import math
import shlex
import statistics

import pytest
import torch

from imagegen_lib import cli
from imagegen_lib.practice import drills
from imagegen_lib.toy.gan import (ToyGANConfig, grid_centres, grid_of_gaussians, mode_coverage, ring_centres,
                                  ring_of_gaussians, sample_toy, train_toy_gan)
from imagegen_lib.toy.population import (PopAdam, PopLinear, coverage_score, population_groups, sample_population,
                                         train_population)
from imagegen_lib.toy.recipes import RECIPE_SETS, RECIPES, recipe_config, recipe_names
from imagegen_lib.toy.sweep import FORMAT, load_sweep, plan_steps, settled_step, sweep_table


def test_ring_centres_and_samples():
    c = ring_centres(8, 2.0)
    assert c.shape == (8, 2)
    assert torch.allclose(c.norm(dim=1), torch.full((8,), 2.0), atol=1e-6)
    assert torch.allclose(c[0], torch.tensor([2.0, 0.0])) and torch.allclose(c[2], torch.tensor([0.0, 2.0]), atol=1e-6)
    x = ring_of_gaussians(8000, seed=0)
    assert x.shape == (8000, 2)
    assert torch.equal(x, ring_of_gaussians(8000, seed=0)) and not torch.equal(x, ring_of_gaussians(8000, seed=1))
    d, idx = torch.cdist(x, c).min(dim=1)
    assert d.pow(2).mean().item() == pytest.approx(2 * 0.02 ** 2, rel=0.05)  # E||ε||² = 2σ²
    counts = torch.bincount(idx, minlength=8).float()
    assert (counts / 8000 - 1 / 8).abs().max() < 0.02  # equal weights
    assert x.mean(0).abs().max() < 0.05


def test_grid_centres_and_samples():
    c = grid_centres(5, 2.0)
    assert c.shape == (25, 2) and c.min() == -4 and c.max() == 4
    x = grid_of_gaussians(5000, std=0.05, seed=3)
    assert x.shape == (5000, 2)
    assert mode_coverage(x, c, 0.05)["modes"] == 25


def test_coverage_on_hand_made_sets():
    c = ring_centres()
    one_mode = c[3] + 0.01 * torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    r = mode_coverage(one_mode, c, 0.02)
    assert r["modes"] == 1 and r["n_modes"] == 8 and r["high_quality"] > 0.95
    perfect = c.repeat(100, 1)
    r = mode_coverage(perfect, c, 0.02)
    assert r["modes"] == 8 and r["high_quality"] == 1.0 and r["counts"] == [100] * 8
    r = mode_coverage(ring_of_gaussians(2500, seed=1), c, 0.02)
    assert r["modes"] == 8 and r["high_quality"] > 0.98  # 3σ in 2-D holds 1 - e^{-4.5} ≈ 98.9 %
    origin = torch.zeros(100, 2)  # all samples in the hole of the ring: nothing is good
    r = mode_coverage(origin, c, 0.02)
    assert r["modes"] == 0 and r["high_quality"] == 0.0
    # A mode with fewer than min_count good samples is not covered.
    few = torch.cat([c[0].repeat(100, 1), c[1].repeat(2, 1)])
    assert mode_coverage(few, c, 0.02, min_count=5)["modes"] == 1
    assert mode_coverage(few, c, 0.02, min_count=1)["modes"] == 2


def test_train_toy_gan_is_deterministic_and_logs():
    cfg = ToyGANConfig(steps=20, batch_size=32, hidden=16, log_every=10, seed=3)
    seen = []
    a = train_toy_gan(cfg, callback=lambda s, G, D: seen.append(s), callback_steps=(0, 10))
    b = train_toy_gan(cfg)
    assert seen == [0, 10] and len(a.history) == 2
    assert set(a.history[0]) >= {"step", "loss_d", "loss_g", "g_grad_norm", "d_real", "d_fake"}
    assert torch.equal(sample_toy(a.G, 100), sample_toy(b.G, 100))


@pytest.mark.parametrize("kw", [dict(loss="wgan-gp"), dict(loss="hinge", spectral_norm=True),
                                dict(label_smoothing=0.1, instance_noise=0.1, minibatch_std=True),
                                dict(loss="saturating", d_head_start=3, optimizer="sgd", lr_g=0.01, lr_d=0.01),
                                dict(r1_gamma=1.0, d_steps=2, betas=(0.0, 0.9))])
def test_train_toy_gan_variants_run(kw):
    run = train_toy_gan(ToyGANConfig(steps=6, batch_size=16, hidden=16, log_every=3, **kw))
    assert all(math.isfinite(v) for row in run.history for v in row.values())


def test_pop_linear_spectral_norm():
    layer = PopLinear([0, 1], 16, 8, sn_mask=torch.tensor([True, False]))
    for _ in range(30):
        layer.sigma()
    sigma = layer.sigma()
    true = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
    assert torch.allclose(sigma.detach(), true, rtol=1e-3)


def test_population_members_are_independent():
    # A member's run must not depend on the other members (sum of losses, elementwise Adam) —
    # with the same data. Same seeds and member 0 identical -> identical samples for member 0.
    common = dict(steps=15, batch_size=16, hidden=16, log_every=5)
    a = train_population([ToyGANConfig(seed=0, **common), ToyGANConfig(seed=0, lr_d=1e-2, **common)],
                         data=ring_of_gaussians(64, seed=0))
    b = train_population([ToyGANConfig(seed=0, **common), ToyGANConfig(seed=0, loss="hinge", **common)],
                         data=ring_of_gaussians(64, seed=0))
    xa, xb = sample_population(a.G, 50), sample_population(b.G, 50)
    assert torch.allclose(xa[0], xb[0], atol=1e-6)
    assert not torch.allclose(xa[1], xb[1])
    with pytest.raises(ValueError):
        train_population([ToyGANConfig(steps=2), ToyGANConfig(steps=3)])


def test_population_members_are_independent_with_critic_steps_betas_and_r1():
    # The paper recipes: 5 critic steps, per-member betas, hinge + spectral norm, R1 — member 0 must
    # not notice which of them its neighbour uses (none of them draws extra random numbers).
    common = dict(steps=6, batch_size=16, hidden=16, log_every=3, d_steps=5)
    first = ToyGANConfig(seed=0, **common)
    a = train_population([first, ToyGANConfig(seed=1, betas=(0.0, 0.9), **common)], data=ring_of_gaussians(64, seed=0))
    b = train_population([first, ToyGANConfig(seed=1, betas=(0.0, 0.9), loss="hinge", spectral_norm=True,
                                              r1_gamma=1.0, lr_d=4e-4, **common)], data=ring_of_gaussians(64, seed=0))
    xa, xb = sample_population(a.G, 50), sample_population(b.G, 50)
    assert torch.allclose(xa[0], xb[0], atol=1e-6)
    assert not torch.allclose(xa[1], xb[1])
    assert all(math.isfinite(v) for row in b.history for k, vs in row.items() if k != "step" for v in vs)


def test_members_with_other_critic_steps_are_split_not_mixed():
    configs = [ToyGANConfig(seed=0), ToyGANConfig(seed=0, loss="wgan-gp", d_steps=5), ToyGANConfig(seed=1)]
    assert population_groups(configs) == [[0, 2], [1]]
    with pytest.raises(ValueError, match=r"must share \['d_steps'\].*population_groups"):
        train_population(configs)


def test_pop_adam_with_per_member_betas_is_torch_adam_per_member():
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(2, 3, 4, generator=gen)
    grads = [torch.randn(2, 3, 4, generator=gen) for _ in range(5)]
    lrs, betas = [1e-2, 3e-3], [(0.5, 0.999), (0.0, 0.9)]
    stacked = start.clone().requires_grad_(True)
    opt = PopAdam([stacked], torch.tensor(lrs), torch.tensor(betas, dtype=torch.float64))
    singles = [start[s].clone().requires_grad_(True) for s in range(2)]
    refs = [torch.optim.Adam([w], lr=lr, betas=b) for w, lr, b in zip(singles, lrs, betas)]
    for g in grads:
        stacked.grad = g.clone()
        opt.step()
        for s, (w, ref) in enumerate(zip(singles, refs)):
            w.grad = g[s].clone()
            ref.step()
    for s in range(2):
        assert torch.allclose(stacked[s], singles[s], atol=1e-6)


def test_population_logs_coverage_without_changing_the_run():
    common = dict(steps=6, batch_size=16, hidden=16, log_every=3)
    configs = [ToyGANConfig(seed=0, **common), ToyGANConfig(seed=1, r1_gamma=0.5, **common)]
    scored = train_population(configs, score=coverage_score(ring_centres(), 0.05, n=200))
    plain = train_population(configs)
    assert [row["step"] for row in scored.history] == [3, 6]
    for row in scored.history:
        assert len(row["modes"]) == 2 and all(0 <= m <= 8 for m in row["modes"])
        assert all(0 <= q <= 1 for q in row["high_quality"])
    assert torch.equal(sample_population(scored.G, 50), sample_population(plain.G, 50))


# ---------------------------------------------------------------------------------------------
# Q4's recipes and `imagegen toy-sweep`
# ---------------------------------------------------------------------------------------------

def test_recipes_are_valid_configs_and_sets_name_known_recipes():
    assert all(name in RECIPES for names in RECIPE_SETS.values() for name in names)
    assert RECIPE_SETS["paper"][0] == "baseline"
    for name in RECIPES:
        recipe_config(name, seed=0, steps=10, log_every=5)  # ToyGANConfig checks every field
    wgan, sn = recipe_config("wgan-gp", 0, 10, 5), recipe_config("sn-hinge-ttur", 0, 10, 5)
    assert (wgan.d_steps, wgan.lr_g, wgan.lr_d, wgan.betas, wgan.gp_weight) == (5, 1e-4, 1e-4, (0.0, 0.9), 10.0)
    assert (sn.loss, sn.spectral_norm, sn.lr_g, sn.lr_d, sn.betas) == ("hinge", True, 1e-4, 4e-4, (0.0, 0.9))
    with pytest.raises(ValueError, match="not in recipe set 'notebook'"):
        recipe_names("notebook", ("wgan-gp",))


def test_toy_sweep_cli_writes_one_json_that_the_table_reads(tmp_path, monkeypatch, capsys):
    # The real entry point, end to end: 2 recipes (one with 5 critic steps: a population of its own)
    # x 2 seeds x 20 steps on the CPU.
    monkeypatch.setenv("IMAGEGEN_GIT_COMMIT", "0123abc")
    out = tmp_path / "sweeps" / "tiny.json"
    argv = ["toy-sweep", "--variants", "baseline,wgan-gp", "--seeds", "2", "--steps", "20", "--log-every", "10",
            "--eval-samples", "400", "--keep-samples", "50", "--device", "cpu", "--out", str(out)]
    assert cli.main(argv) == 0
    sweep = load_sweep(out)
    assert sweep["format"] == FORMAT and sweep["seeds"] == [0, 1] and sweep["steps"] == 20
    run = sweep["run"]
    assert run["command"] == "imagegen " + shlex.join(argv) and run["git_commit"] == "0123abc"
    assert run["device"].startswith("cpu") and run["torch"] == torch.__version__ and run["wall_seconds"] > 0
    assert run["plan"] is None  # --steps given: no probe
    assert [v["name"] for v in sweep["variants"]] == ["baseline", "wgan-gp"]
    assert sweep["variants"][1]["config"]["d_steps"] == 5 and sweep["variants"][1]["config"]["betas"] == [0.0, 0.9]
    assert [p["d_steps"] for p in sweep["populations"]] == [1, 5]
    assert [(r["variant"], r["seed"]) for r in sweep["runs"]] == [("baseline", 0), ("baseline", 1),
                                                                    ("wgan-gp", 0), ("wgan-gp", 1)]
    for r in sweep["runs"]:
        assert r["curve"]["step"] == [10, 20] and set(r["curve"]) == {"step", "modes", "high_quality", "loss_d", "loss_g"}
        assert (r["modes"], r["high_quality"]) == (r["curve"]["modes"][-1], r["curve"]["high_quality"][-1])
        assert len(r["samples"]) == 50 and all(round(v, 3) == v for point in r["samples"] for v in point)
    rows = sweep_table(out)
    assert [row["variant"] for row in rows] == ["baseline", "wgan-gp"]
    assert rows[0]["modes"] == [r["modes"] for r in sweep["runs"][:2]]
    assert "baseline (non-saturating)" in capsys.readouterr().out


def test_plan_steps_times_a_probe_and_fits_the_budget():
    plan = plan_steps(600, ("baseline", "wgan-gp"), [0], probe_steps=3, eval_samples=200)
    assert plan["steps"] >= 100 and plan["steps"] % 100 == 0
    assert plan["seconds_per_step"] > 0 and plan["seconds_per_evaluation"] > 0 and plan["probe_seconds"] > 0
    fits = (600 - plan["probe_seconds"]) / plan["seconds_per_step"]
    assert plan["steps"] <= max(100, fits)


def test_toy_sweep_refuses_an_unknown_recipe(tmp_path, capsys):
    assert cli.main(["toy-sweep", "--variants", "baseline,nope", "--out", str(tmp_path / "s.json")]) == 2
    assert "['nope'] not in recipe set 'paper'" in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()
    with pytest.raises(SystemExit):  # a step budget or a time budget, not both
        cli.main(["toy-sweep", "--steps", "10", "--minutes", "1", "--out", str(tmp_path / "s.json")])


def test_sweep_table_statistics_and_settling():
    curve = {"step": [10, 20, 30], "modes": [3, 5, 5], "high_quality": [0.1, 0.62, 0.6]}
    sweep = {"format": FORMAT, "steps": 30, "variants": [{"name": "a", "label": "A"}],
             "runs": [{"variant": "a", "seed": s, "modes": m, "high_quality": q, "curve": curve}
                      for s, m, q in [(1, 6, 0.5), (0, 8, 0.9), (2, 7, 0.7)]]}
    (row,) = sweep_table(sweep)
    assert row["seeds"] == [0, 1, 2] and row["modes"] == [8, 6, 7] and row["settled_at"] == [20, 20, 20]
    assert row["modes_mean"] == 7 and row["modes_std"] == pytest.approx(1.0)
    assert row["hq_mean"] == pytest.approx(0.7) and row["hq_std"] == pytest.approx(statistics.stdev([0.5, 0.9, 0.7]))
    other = {**sweep, "steps": 60, "variants": [{"name": "b", "label": "B"}],
             "runs": [{**r, "variant": "b"} for r in sweep["runs"]]}
    assert [(r["variant"], r["steps"]) for r in sweep_table([sweep, other])] == [("a", 30), ("b", 60)]
    with pytest.raises(ValueError, match="'a' is in more than one"):
        sweep_table([sweep, sweep])
    assert settled_step([10, 20], [4, 4]) == 10 and settled_step([], []) is None
    assert settled_step([10, 20, 30, 40], [8, 7, 8, 8]) == 30 and settled_step([10, 20, 30, 40], [8, 7, 8, 8], tol=1) == 10


def test_load_sweep_refuses_other_json(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"fid": 3.0}))
    with pytest.raises(ValueError, match="not an `imagegen toy-sweep` result"):
        load_sweep(path)


def test_drills_symptoms():
    torch.manual_seed(0)
    r = drills.run_drill(drills.step_missing_detach, steps=2, hidden=16)
    assert r["error"] is not None and "backward through the graph a second time" in r["error"]
    ok = drills.run_drill(drills.step_correct, steps=5, hidden=16)
    retain = drills.run_drill(drills.step_missing_detach_retain_graph, steps=5, hidden=16)
    assert ok["error"] is None and torch.allclose(ok["samples"], retain["samples"])
    frozen = drills.run_drill(drills.step_zero_grad_after_backward, steps=5, hidden=16)
    assert frozen["d_weight_change"] == 0.0 and ok["d_weight_change"] > 0
