"""The ``imagegen`` command, in-process through ``cli.main`` and once through the installed script."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from imagegen_lib import cli
from imagegen_lib.core import data_files, runtime
from imagegen_lib.gan.train import load_generator

from conftest import needs_data, require_data

TINY = ["--epochs", "1", "--limit", "256", "--batch-size", "64", "--width", "8", "--z-dim", "16",
        "--device", "cpu"]


def grid_size(n: int, nrow: int = 8, scale: int = 2) -> tuple[int, int]:
    rows = -(-n // nrow)
    return scale * (nrow * 30 + 2), scale * (rows * 30 + 2)  # 28 px tiles, 2 px padding


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("IMAGEGEN_DEBUG", raising=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny DCGAN run made by the CLI: 256 images / batch 64 = 4 steps."""
    require_data("mnist")
    out = tmp_path_factory.mktemp("cli") / "run"
    assert cli.main(["train", "dcgan", *TINY, "--out", str(out), "--no-progress"]) == 0
    return out


def test_train_writes_a_documented_run(trained):
    for name in ("last.safetensors", "last.json", "generator.safetensors", "generator.json"):
        assert (trained / name).is_file(), name
    assert [p.name for p in (trained / "samples").glob("*.png")] == ["step_0000004.png"]
    meta = json.loads((trained / "generator.json").read_text())
    assert meta["command"].startswith("imagegen train dcgan --epochs 1 --limit 256")
    assert meta["seed"] == 0 and meta["step"] == 4
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", meta["git_commit"])
    assert meta["device"].startswith("cpu")
    assert meta["torch"] == torch.__version__
    assert (meta["arch"], meta["width"], meta["z_dim"]) == ("dcgan", 8, 16)
    assert meta["config"]["limit"] == 256 and meta["config"]["batch_size"] == 64
    G, _ = load_generator(trained / "generator.safetensors")
    assert G(torch.randn(2, 16)).shape == (2, 1, 28, 28)
    last = json.loads((trained / "last.json").read_text())
    assert last["step"] == 4 and last["command"] == meta["command"]
    assert meta["config"]["bf16"] is False  # the default precision, resolved: float32 on a CPU


@pytest.mark.parametrize("flags, bf16", [([], None), (["--bf16"], True), (["--fp32"], False)])
def test_precision_flags(flags, bf16):
    """No flag: bf16 where the fast GPU step runs, float32 elsewhere (train_gan resolves None)."""
    assert cli.build_parser().parse_args(["train", "dcgan", "--out", "x", *flags]).bf16 is bf16


def test_precision_flags_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "dcgan", "--out", "x", "--bf16", "--fp32"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_resume_with_more_epochs_continues_the_step_count(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    args = ["train", "dcgan", *TINY, "--out", str(run), "--no-progress"]
    args[args.index("--epochs") + 1] = "2"
    assert cli.main([*args, "--resume"]) == 0
    assert "done: 8 steps" in capsys.readouterr().out
    last = json.loads((run / "last.json").read_text())
    assert last["step"] == 8 and [r["step"] for r in last["history"]] == [4, 8]
    assert last["command"].endswith("--resume")
    assert (run / "samples" / "step_0000008.png").is_file()


def test_ema_and_r1_run_exports_both_generators_and_resumes_exactly(tmp_path, capsys):
    """--ema/--r1: generator.safetensors (raw G) and generator_ema.safetensors (the EMA), both loadable
    by what `imagegen eval` loads; 2 steps + --resume to 4 is the straight 4-step run, bit for bit."""
    require_data("mnist")
    from imagegen_lib.core.checkpoint import load_checkpoint

    args = ["train", "dcgan", *TINY, "--ema", "0.99", "--r1", "2", "--r1-every", "3", "--no-progress"]
    assert cli.main([*args, "--out", str(tmp_path / "straight")]) == 0
    assert "EMA generator: " + str(tmp_path / "straight" / "generator_ema.safetensors") in capsys.readouterr().out
    assert cli.main([*args, "--max-steps", "2", "--out", str(tmp_path / "resumed")]) == 0
    assert cli.main([*args, "--resume", "--out", str(tmp_path / "resumed")]) == 0
    straight, meta = load_checkpoint(tmp_path / "straight" / "last")
    resumed, _ = load_checkpoint(tmp_path / "resumed" / "last")
    assert straight.keys() == resumed.keys() and any(k.startswith("G_ema.") for k in straight)
    assert [k for k in straight if not torch.equal(straight[k], resumed[k])] == []
    assert (meta["config"]["ema"], meta["config"]["r1"], meta["config"]["r1_every"]) == (0.99, 2.0, 3)
    for name, weights in (("generator", "raw"), ("generator_ema", "ema")):
        G, gen_meta = load_generator(tmp_path / "resumed" / f"{name}.safetensors")
        assert gen_meta["weights"] == weights and gen_meta["step"] == 4
        assert G(torch.randn(2, 16)).shape == (2, 1, 28, 28)
        assert all(torch.equal(v, straight[f"{'G_ema' if weights == 'ema' else 'G'}.{k}"])
                   for k, v in G.state_dict().items())


def test_existing_run_needs_resume(trained, capsys):
    assert cli.main(["train", "dcgan", *TINY, "--out", str(trained), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "imagegen: error:" in err and "--resume" in err


def test_resume_with_other_settings_is_refused(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    assert cli.main(["train", "dcgan", *TINY, "--lr", "1e-3", "--out", str(run), "--no-progress", "--resume"]) == 2
    assert "Only --epochs may change" in capsys.readouterr().err
    assert json.loads((run / "last.json").read_text())["step"] == 4


@needs_data("mnist")  # the CLI loads the data before it gets to this check
def test_resume_without_a_run(tmp_path, capsys):
    assert cli.main(["train", "dcgan", *TINY, "--out", str(tmp_path / "new"), "--no-progress", "--resume"]) == 2
    assert "holds no checkpoint" in capsys.readouterr().err


def test_sample_writes_a_png_grid(trained, tmp_path, capsys):
    out = tmp_path / "deep" / "grid.png"
    assert cli.main(["sample", str(trained / "generator.safetensors"), "--n", "16", "--out", str(out),
                     "--device", "cpu"]) == 0
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == grid_size(16) and img.mode == "L"
    assert "16 samples from dcgan (mnist)" in capsys.readouterr().out
    # the same seed draws the same grid; the stem works as well as the file name
    again = tmp_path / "again.png"
    assert cli.main(["sample", str(trained / "generator"), "--n", "16", "--out", str(again), "--device", "cpu"]) == 0
    assert again.read_bytes() == out.read_bytes()
    assert cli.main(["sample", str(trained / "generator.json"), "--n", "10", "--nrow", "5",
                     "--out", str(again), "--device", "cpu"]) == 0
    with Image.open(again) as img:
        assert img.size == grid_size(10, nrow=5)


@needs_data("mnist")
def test_mlpgan_trains_and_samples(tmp_path):
    out = tmp_path / "mlp"
    assert cli.main(["train", "mlpgan", "--epochs", "1", "--limit", "64", "--batch-size", "64", "--z-dim", "8",
                     "--device", "cpu", "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "generator.json").read_text())["arch"] == "mlpgan"
    assert cli.main(["sample", str(out / "generator.safetensors"), "--n", "8", "--out", str(tmp_path / "g.png"),
                     "--device", "cpu"]) == 0
    with Image.open(tmp_path / "g.png") as img:
        assert img.size == grid_size(8)


@needs_data("mnist")
def test_progress_bar_on_stderr(tmp_path, capsys):
    assert cli.main(["train", "dcgan", "--epochs", "1", "--limit", "64", "--batch-size", "64", "--width", "8",
                     "--z-dim", "8", "--device", "cpu", "--out", str(tmp_path / "bar")]) == 0
    captured = capsys.readouterr()
    assert re.search(r"dcgan: .*1/1 \[.*step", captured.err), captured.err
    assert "step/s" not in captured.out and "done: 1 steps" in captured.out


@needs_data("mnist")
def test_no_progress_hides_the_bar(tmp_path, capsys):
    assert cli.main(["train", "dcgan", "--epochs", "1", "--limit", "64", "--batch-size", "64", "--width", "8",
                     "--z-dim", "8", "--device", "cpu", "--out", str(tmp_path / "quiet"), "--no-progress"]) == 0
    assert "1/1 [" not in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Bad input: exit status 2 and one clear line
# ---------------------------------------------------------------------------------------------

def test_unknown_model(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "stylegan", "--out", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'stylegan'" in err and "dcgan" in err


@pytest.mark.parametrize("argv, message", [
    (["train", "dcgan", "--epochs", "0", "--out", "OUT"], "must be >= 1, got 0"),
    (["train", "dcgan", "--batch-size", "abc", "--out", "OUT"], "expected a whole number, got 'abc'"),
    (["train", "dcgan", "--lr", "-1", "--out", "OUT"], "must be > 0"),
    (["train", "dcgan", "--lr", "fast", "--out", "OUT"], "expected a number"),
    (["train", "mlpgan", "--width", "8", "--out", "OUT"], "unrecognized arguments: --width"),
    (["train", "dcgan", "--dataset", "cifar10", "--out", "OUT"], "invalid choice"),
    (["train", "dcgan"], "the following arguments are required: --out"),
    (["sample", "x.safetensors", "--n", "0", "--out", "OUT"], "must be >= 1"),
    (["data", "verify"], "invalid choice"),
])
def test_bad_flag_values(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        cli.main([str(out) if a == "OUT" else a for a in argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # rejected before anything was started


@needs_data("mnist")  # the CLI loads the data before it gets to this check
def test_unwritable_out_dir(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    rc = cli.main(["train", "dcgan", "--epochs", "1", "--limit", "64", "--batch-size", "64", "--width", "8",
                   "--device", "cpu", "--out", str(blocker / "run"), "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"cannot write to output folder {blocker / 'run'}" in err and "Traceback" not in err
    assert blocker.read_text() == "not a folder"


@needs_data("mnist")  # the CLI loads the data before it gets to this check
def test_too_few_images_for_the_batch(tmp_path, capsys):
    rc = cli.main(["train", "dcgan", "--epochs", "1", "--limit", "10", "--batch-size", "64",
                   "--device", "cpu", "--out", str(tmp_path / "r"), "--no-progress"])
    assert rc == 2 and "lower --batch-size" in capsys.readouterr().err


def test_missing_checkpoint(tmp_path, capsys):
    assert cli.main(["sample", str(tmp_path / "nope.safetensors"), "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("imagegen: error:") and "does not exist" in err
    assert not (tmp_path / "g.png").exists()


def test_sample_refuses_a_training_state(trained, tmp_path, capsys):
    assert cli.main(["sample", str(trained / "last.safetensors"), "--out", str(tmp_path / "g.png")]) == 2
    assert "'gan-train-state' checkpoint, but a 'gan-generator' one is needed" in capsys.readouterr().err


def test_missing_data(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("IMAGEGEN_DATA", raising=False)
    monkeypatch.setattr(data_files, "REPO_ROOT", tmp_path / "repo")
    monkeypatch.setattr(data_files, "USER_CACHE", tmp_path / "cache")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["data", "check", "mnist"]) == 2
    err = capsys.readouterr().err
    assert "mnist not found" in err and "IMAGEGEN_DATA" in err and "imagegen data download mnist" in err


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEGEN_DEBUG", "1")
    with pytest.raises(RuntimeError, match="does not exist"):
        cli.main(["sample", str(tmp_path / "nope.safetensors")])


def test_no_cuda_is_a_clear_error(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert cli.main(["train", "dcgan", *TINY[:-2], "--device", "cuda", "--out", str(tmp_path / "r")]) == 2
    assert "torch sees no CUDA GPU" in capsys.readouterr().err


@needs_data("mnist", "fashion-mnist")
def test_data_check(capsys):
    assert cli.main(["data", "check"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^mnist: OK \(4 files, sha256 verified\)", out, re.M)
    assert re.search(r"^fashion-mnist: OK \(4 files, sha256 verified\)", out, re.M)


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("imagegen ")


# ---------------------------------------------------------------------------------------------
# The command registry: every command registers itself; --help lists what is registered
# ---------------------------------------------------------------------------------------------

COMMANDS = ["train", "sample", "ship", "eval", "eval-sr", "data", "toy-sweep"]
MODELS = ["dcgan", "mlpgan", "classifier", "sr", "cgan", "vae", "ddpm", "flow"]


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as info:
        cli.main([*argv, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def test_the_registry_holds_every_command_and_help_lists_them(capsys):
    from imagegen_lib.cli import registry
    from imagegen_lib.cli.train import TRAINERS

    from imagegen_lib.cli.main import ordered_commands

    cli.build_parser()  # imports the command modules, which register themselves
    assert sorted(registry.COMMANDS) == sorted(COMMANDS)
    assert [c.name for c in ordered_commands()] == COMMANDS  # the order of --help
    assert list(TRAINERS) == MODELS
    assert all(row.run is not None for row in TRAINERS.values())
    listed = re.findall(r"^    (\S+)", _help([], capsys), re.M)
    assert listed == COMMANDS
    assert re.findall(r"^    (\S+)", _help(["train"], capsys), re.M) == MODELS


def test_help_order_does_not_depend_on_which_command_module_was_imported_first(monkeypatch, capsys):
    from imagegen_lib.cli import registry

    cli.build_parser()
    shuffled = dict(reversed(list(registry.COMMANDS.items())))  # as if `eval` had been imported first
    monkeypatch.setattr(registry, "COMMANDS", shuffled)
    assert re.findall(r"^    (\S+)", _help([], capsys), re.M) == COMMANDS


def test_registering_a_name_twice_is_an_error(monkeypatch):
    from imagegen_lib.cli import registry

    cli.build_parser()
    monkeypatch.setattr(registry, "COMMANDS", dict(registry.COMMANDS))  # the real table stays as it was
    with pytest.raises(ValueError, match=r"imagegen command 'eval' is registered twice \(by imagegen_lib\.cli\.eval"):
        registry.command("eval", help="another eval")(lambda p: None)
    assert registry.COMMANDS["eval"].help.startswith("FID, KID")  # the first registration is kept
    row = registry.Command("dcgan", "again", lambda p: None)
    with pytest.raises(ValueError, match="imagegen train model 'dcgan' is registered twice"):
        registry.table([row, row], "imagegen train model")


def test_a_registered_command_is_a_sub_command(monkeypatch, capsys):
    from imagegen_lib.cli import registry

    cli.build_parser()
    monkeypatch.setattr(registry, "COMMANDS", dict(registry.COMMANDS))

    @registry.command("hello", help="say hello")
    def add_arguments(p):
        p.add_argument("--name", default="world")
        p.set_defaults(func=lambda args, argv: print(f"hello {args.name}") or 0)

    assert cli.main(["hello", "--name", "book"]) == 0
    assert capsys.readouterr().out == "hello book\n"
    assert "say hello" in _help([], capsys)


# ---------------------------------------------------------------------------------------------
# The installed console script
# ---------------------------------------------------------------------------------------------

def test_console_script(trained, tmp_path):
    script = Path(sys.executable).parent / "imagegen"
    assert script.is_file(), f"console script not installed next to {sys.executable}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("IMAGEGEN_DEBUG", None)
    out = tmp_path / "grid.png"
    ok = subprocess.run([str(script), "sample", str(trained / "generator.safetensors"), "--n", "16",
                         "--out", str(out), "--device", "cpu"], capture_output=True, text=True, env=env,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr
    with Image.open(out) as img:
        assert img.size == grid_size(16)
    bad = subprocess.run([str(script), "sample", str(tmp_path / "missing.safetensors")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.startswith("imagegen: error:") and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["train", "dcgan", "--out", "x", "--epochs", "0"], "--epochs: must be >= 1, got 0"),
    (["train", "dcgan", "--out", "x", "--lr", "0"], "--lr: must be > 0, got 0.0"),
    (["train", "sr", "--arch", "resnet", "--out", "x", "--eval-every", "-1"], "--eval-every: must be >= 0, got -1"),
    (["train", "vae", "--out", "x", "--beta", "-1"], "--beta: must be >= 0, got -1.0"),
    (["train", "ddpm", "--out", "x", "--ema", "abc"], "--ema: expected a number, got 'abc'"),
    (["train", "dcgan", "--out", "x", "--ema", "1"], "--ema: must be in [0, 1) (e.g. 0.999; 0: off), got 1.0"),
    (["train", "dcgan", "--out", "x", "--ema", "-0.5"], "--ema: must be >= 0, got -0.5"),
    (["train", "dcgan", "--out", "x", "--r1", "-1"], "--r1: must be >= 0, got -1.0"),
    (["train", "dcgan", "--out", "x", "--r1-every", "0"], "--r1-every: must be >= 1, got 0"),
    (["eval", "real", "--n", "1.5"], "--n: expected a whole number, got '1.5'"),
])
def test_bad_flag_values_say_what_was_expected(argv, message, capsys):
    # One set of argparse types (cli.arg_types) serves every sub-command: same rule, same message.
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_git_commit_prefers_the_commit_the_sender_passes(monkeypatch):
    # A tree copied to a GPU machine can carry a stale .git: the explicit commit must win.
    monkeypatch.setenv("IMAGEGEN_GIT_COMMIT", "0123abc")
    assert runtime.git_commit() == "0123abc"
    monkeypatch.delenv("IMAGEGEN_GIT_COMMIT")
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", runtime.git_commit())


def _recorded_commands(node) -> list[str]:
    """Every ``imagegen ...`` command line the manifest records (training, evaluation, sampler checks)."""
    if isinstance(node, dict):
        return [c for v in node.values() for c in _recorded_commands(v)]
    if isinstance(node, list):
        return [c for v in node for c in _recorded_commands(v)]
    return [node] if isinstance(node, str) and node.startswith("imagegen ") else []


def test_every_command_the_manifest_records_still_parses():
    # The manifest is how a reader reruns a shipped checkpoint: its command lines must stay valid.
    import shlex

    from imagegen_lib.core.manifest import read_manifest

    commands = sorted(set(_recorded_commands(read_manifest())))
    assert len(commands) >= 20, commands  # every checkpoint's training command, plus its evaluations
    assert {c.split()[1] for c in commands} >= {"train", "eval", "eval-sr"}
    for line in commands:
        argv = shlex.split(line)[1:]
        try:
            args = cli.build_parser(only=argv[0]).parse_args(argv)
        except SystemExit:
            pytest.fail(f"the manifest's command no longer parses: {line}")
        assert callable(args.func), line
