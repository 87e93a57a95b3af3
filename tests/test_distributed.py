"""The training CLI under torchrun: 2 processes on CPU with gloo (imagegen_lib.core.distributed).

What "the same global batch" means here: ``--batch-size`` is the global batch; each of the 2 ranks
takes every other image of it and the matching rows of the global batch's noise, and DDP averages
the gradients. For a model *without* batch norm (the MLP GAN) that is the single-process update
up to float rounding (the mean over 64 images is computed as the mean of two means over 32). With
batch norm (the DCGAN) each rank normalises its 32 images by their own statistics — a different
estimator than one process's 64-image statistics, by design (see distributed.py) — so the DCGAN
is checked for what must hold exactly instead: identical replicas, and bit-exact resume.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

import ddp_worker
from imagegen_lib import cli
from imagegen_lib.core.checkpoint import load_checkpoint
from imagegen_lib.gan.models import build_gan

REPO = Path(__file__).resolve().parents[1]
MLP = ["train", "mlpgan", "--epochs", "1", "--limit", "256", "--batch-size", "64", "--z-dim", "16",
       "--device", "cpu", "--no-progress", "--log-every", "1"]
DCGAN = ["train", "dcgan", "--epochs", "1", "--limit", "256", "--batch-size", "64", "--z-dim", "16", "--width", "8",
         "--device", "cpu", "--no-progress", "--log-every", "1"]

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(argv: list[str], nproc: int = 2) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={nproc}", "-m", "imagegen_lib.cli", *argv],
                          env=env, capture_output=True, text=True, timeout=150)


def _spawn(argv: list[str], world: int = 2) -> None:
    """torchrun's environment without its start-up cost: the workers are forked from a fork server
    that has imported torch once (a clean process: forking pytest itself, threads and all, could
    deadlock), so a launch costs a second or two instead of 15-20 s on a busy 2-core machine."""
    mp.set_forkserver_preload(["torch", "imagegen_lib.gan.train", "ddp_worker"])
    mp.start_processes(ddp_worker.rank_main, args=(argv, world, _free_port()), nprocs=world,
                       start_method="forkserver")


def _tensors(run: Path) -> tuple[dict, dict]:
    return load_checkpoint(run / "last", expect_kind="gan-train-state")


def test_torchrun_two_ranks_match_one_process_on_the_same_global_batch(tmp_path):
    ddp_run = _torchrun([*MLP, "--out", str(tmp_path / "ddp")])
    assert ddp_run.returncode == 0, ddp_run.stderr[-3000:]
    assert ddp_run.stdout.count("done: 4 steps") == 1  # rank 0 alone reports
    assert cli.main([*MLP, "--out", str(tmp_path / "single")]) == 0
    assert cli.main([*MLP, "--batch-size", "32", "--out", str(tmp_path / "one_rank_alone")]) == 0

    ddp, ddp_meta = _tensors(tmp_path / "ddp")
    single, single_meta = _tensors(tmp_path / "single")
    alone, _ = _tensors(tmp_path / "one_rank_alone")
    assert ddp_meta["ddp"]["world_size"] == 2 and ddp_meta["ddp"]["backend"] == "gloo"
    digests = ddp_meta["ddp"]["state_sha256_by_rank"]
    assert len(digests) == 2 and digests[0] == digests[1]  # both ranks hold the same weights, bit for bit
    assert ddp_meta["step"] == single_meta["step"] == 4

    # Tolerance: 1% of how far each weight tensor moved in these 4 steps. Float rounding of the
    # split mean is ~1e-3 of that; a wrong shard, shared noise or missing averaging is ~1x.
    torch.manual_seed(0)
    G0, D0 = build_gan("mlpgan", z_dim=16)
    init = {**{f"G.{k}": v for k, v in G0.state_dict().items()}, **{f"D.{k}": v for k, v in D0.state_dict().items()}}
    assert set(init) <= set(ddp)
    for key, w0 in init.items():
        moved = (single[key] - w0).abs().max()
        assert moved > 0, key
        assert (ddp[key] - single[key]).abs().max() <= 0.01 * moved, key
        if key.endswith("weight"):  # and the check can fail: half the batch is a different run
            assert (alone[key] - single[key]).abs().max() > 0.05 * moved, key
    for row_ddp, row_single in zip(ddp_meta["history"], single_meta["history"], strict=True):
        for k in ("loss_d", "loss_g", "d_real", "d_fake"):  # logged over the global batch
            assert row_ddp[k] == pytest.approx(row_single[k], abs=1e-5), k


def test_dcgan_replicas_stay_identical_and_resume_is_exact(tmp_path):
    """Batch norm under DDP: per-rank statistics, averaged at checkpoints; stop after 2 steps,
    resume to 4 under torchrun, and the state is the uninterrupted run's, bit for bit."""
    _spawn([*DCGAN, "--out", str(tmp_path / "straight")])
    _spawn([*DCGAN, "--max-steps", "2", "--out", str(tmp_path / "resumed")])
    _spawn([*DCGAN, "--resume", "--out", str(tmp_path / "resumed")])

    straight, straight_meta = _tensors(tmp_path / "straight")
    resumed, resumed_meta = _tensors(tmp_path / "resumed")
    for meta in (straight_meta, resumed_meta):
        digests = meta["ddp"]["state_sha256_by_rank"]
        assert digests[0] == digests[1]
    assert resumed_meta["step"] == straight_meta["step"] == 4
    assert straight.keys() == resumed.keys()
    # Weights, Adam's moments, the noise generator: bit for bit.
    stats = {k for k in straight if "running_" in k}
    different = [k for k in straight if k not in stats and not torch.equal(straight[k], resumed[k])]
    assert different == []
    # BN running statistics: averaged over the ranks at each checkpoint, i.e. at step 2 as well in
    # the resumed run. Averaging commutes with the running average (both are linear), so they agree
    # up to rounding only.
    for k in stats:
        assert torch.allclose(straight[k], resumed[k], rtol=1e-5, atol=1e-7), k
    assert [r["step"] for r in resumed_meta["history"]] == [1, 2, 3, 4]
    assert any("running_mean" in k for k in straight)  # batch norm really was part of it
    gen_meta = json.loads((tmp_path / "straight" / "generator.json").read_text())
    assert gen_meta["ddp"]["world_size"] == 2
    assert sorted(p.name for p in (tmp_path / "straight" / "samples").iterdir()) == ["step_0000004.png"]


def test_global_batch_must_split_over_the_ranks(tmp_path):
    with pytest.raises(Exception, match="exited with 2"):
        _spawn([*DCGAN, "--batch-size", "63", "--out", str(tmp_path / "odd")])
    assert not (tmp_path / "odd" / "last.json").exists()
