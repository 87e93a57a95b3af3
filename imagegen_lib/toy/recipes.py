"""Q4's fixes for GAN training as named recipes: which knob, set how, and on whose authority.

Every recipe trains the same networks on the same ring (:data:`RING`, the Q4 notebook's: 8
Gaussians of std 0.05 on a circle of radius 2) and changes only what its paper changes:

* ``baseline``, ``label-smoothing``, ``instance-noise``, ``ttur``: the cheap fixes, on the
  baseline's optimiser (Adam 1e-3, β = (0.5, 0.999), the DCGAN setting);
* ``sn-hinge-ttur``, ``wgan-gp``, ``r1-*``: the fixes *as their papers train them* — spectral norm
  with the hinge loss and TTUR (Miyato et al. 2018, SAGAN), WGAN-GP with 5 critic steps per
  generator step (Gulrajani et al. 2017, Algorithm 1), R1 on the non-saturating loss (Mescheder
  et al. 2018);
* ``sn-bce``, ``wgan-gp-1``: the notebook's first table, which ran every fix on the baseline's
  schedule (one critic step) — kept to show what that handicap costs.

:data:`RECIPE_SETS` names the collections ``imagegen toy-sweep --set`` runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .gan import ToyGANConfig

__all__ = ["RING", "BASE", "Recipe", "RECIPES", "RECIPE_SETS", "recipe_names", "recipe_config"]

RING = {"modes": 8, "radius": 2.0, "std": 0.05}  # the Q4 notebook's ring (wider than the classic 0.02)

# What every recipe shares: the Q4 notebook's networks, batch and baseline optimiser.
BASE = dict(z_dim=8, hidden=32, depth=3, batch_size=64, lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.999))

_PAPER_ADAM = dict(betas=(0.0, 0.9))  # WGAN-GP and SN-GAN/SAGAN: no momentum, short second-moment memory


@dataclass(frozen=True)
class Recipe:
    name: str  # on the command line and in the sweep's JSON
    label: str  # the row of the book's table
    source: str  # where the settings come from
    overrides: dict = field(default_factory=dict)  # ToyGANConfig fields on top of BASE


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("baseline", "baseline (non-saturating)", "Goodfellow et al. 2014; DCGAN's Adam"),
    Recipe("label-smoothing", "label smoothing 0.1", "Salimans et al. 2016 (one-sided)",
           dict(label_smoothing=0.1)),
    Recipe("instance-noise", "instance noise 0.1", "Sønderby et al. 2017 (annealed to 0)",
           dict(instance_noise=0.1)),
    Recipe("ttur", "TTUR (lr_D 4x lr_G)", "Heusel et al. 2017", dict(lr_g=5e-4, lr_d=2e-3)),
    Recipe("sn-hinge-ttur", "spectral norm + hinge + TTUR", "Miyato et al. 2018; Zhang et al. 2019 (SAGAN)",
           dict(loss="hinge", spectral_norm=True, lr_g=1e-4, lr_d=4e-4, **_PAPER_ADAM)),
    Recipe("wgan-gp", "WGAN-GP (5 critic steps)", "Gulrajani et al. 2017, Algorithm 1",
           dict(loss="wgan-gp", d_steps=5, gp_weight=10.0, lr_g=1e-4, lr_d=1e-4, **_PAPER_ADAM)),
    Recipe("r1-0.1", "R1 γ=0.1", "Mescheder et al. 2018 (non-saturating loss)", dict(r1_gamma=0.1)),
    Recipe("r1-1", "R1 γ=1", "Mescheder et al. 2018 (non-saturating loss)", dict(r1_gamma=1.0)),
    Recipe("sn-bce", "spectral norm (D), baseline schedule", "Q4's first table", dict(spectral_norm=True)),
    Recipe("wgan-gp-1", "WGAN-GP, 1 critic step, lr 2e-4", "Q4's first table",
           dict(loss="wgan-gp", lr_g=2e-4, lr_d=2e-4)),
)}

_CHEAP = ("baseline", "label-smoothing", "instance-noise", "ttur")
RECIPE_SETS: dict[str, tuple[str, ...]] = {
    "paper": _CHEAP + ("sn-hinge-ttur", "wgan-gp", "r1-0.1", "r1-1"),
    "notebook": _CHEAP + ("sn-bce", "wgan-gp-1"),
    "all": _CHEAP + ("sn-hinge-ttur", "wgan-gp", "r1-0.1", "r1-1", "sn-bce", "wgan-gp-1"),
}


def recipe_names(set_name: str, only: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Which recipes does ``--set NAME [--variants a,b]`` mean? The set's, in its order, or ``only``
    (which must belong to the set)."""
    if set_name not in RECIPE_SETS:
        raise ValueError(f"unknown recipe set {set_name!r}; choose one of {sorted(RECIPE_SETS)}")
    names = RECIPE_SETS[set_name]
    if only is None:
        return names
    unknown = [n for n in only if n not in names]
    if unknown:
        raise ValueError(f"{unknown} not in recipe set {set_name!r}, which has {list(names)}")
    return tuple(only)


def recipe_config(name: str, seed: int, steps: int, log_every: int) -> ToyGANConfig:
    """The :class:`ToyGANConfig` of recipe ``name`` for one seed and step budget (steps = G updates)."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    return ToyGANConfig(**{**BASE, **RECIPES[name].overrides, "steps": steps, "log_every": log_every, "seed": seed})
