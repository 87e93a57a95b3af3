"""Notebooks that run outside the clone: the generated setup cell, the chapter table, fetching.

- every notebook's first cell is the one ``scripts/notebook_bootstrap.py`` generates, and the
  commit it pins has the library HEAD has;
- ``book.files.CHAPTERS`` names everything a notebook loads (found by scanning its code);
- ``prepare_chapter`` against a loopback file server: verified, idempotent, re-fetches on a new commit;
- the Binder requirements keep requirements.txt's pins.

The end-to-end run of a lone notebook in a fresh venv is tests/test_lone_notebook.py (slow).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import http.server
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from imagegen_lib.core import data_files, manifest, paths
from imagegen_lib.practice import quiz
from imagegen_lib.book.files import CHAPTERS, BookFilesError, files_url, prepare_chapter
from imagegen_lib.core.download import DownloadError

from bootstrap_script import nbb

REPO = Path(__file__).resolve().parents[1]
FIX = "fix: commit the library, then run `python scripts/notebook_bootstrap.py --write`"


NOTEBOOKS = nbb.toc_notebooks()


# --------------------------------------------------------------------------------------------
# The setup cell in the real notebooks
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_starts_with_the_generated_setup_cell(path):
    nb = nbb.read_notebook(path)
    stamp = nbb.stamp_of(nb)
    assert stamp is not None, f"{path.name} has no setup cell; {FIX}"
    assert nbb.same_cell(nbb.find_cell(nb), nbb.make_cell(path.stem, nbb.repository_url(), stamp[1])), (
        f"{path.name}'s setup cell differs from the generated one (hand-edited, or _config.yml's repository "
        f"changed); {FIX}")


def _shallow() -> bool:
    out = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=REPO, capture_output=True, text=True)
    return out.stdout.strip() == "true"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_pinned_commit_has_the_library_of_head(path):
    stamp = nbb.stamp_of(nbb.read_notebook(path))
    if stamp is None:
        pytest.fail(f"{path.name} has no setup cell; {FIX}")
    if _shallow():
        pytest.skip("shallow clone: the pinned commit may be outside the fetched history")
    found = nbb.commit_problems(stamp[1])
    assert not found, f"{path.name}: {'; '.join(found)}; {FIX}"


# --------------------------------------------------------------------------------------------
# The chapter table covers what the notebooks load
# --------------------------------------------------------------------------------------------

DATA_NAMES = set(data_files.DATASETS) | set(data_files.SR_SETS)
GENERATOR_KINDS = ("gan-generator", "vae", "ddpm")


def _code(path: Path) -> ast.Module:
    """All code cells of a notebook as one module (IPython magics and shell lines dropped)."""
    cells = [c for c in nbb.read_notebook(path)["cells"] if c["cell_type"] == "code" and c.get("id") != nbb.CELL_ID]
    lines = [ln for c in cells for ln in "".join(c["source"]).splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return ast.parse("\n".join(lines))


def _call_name(node: ast.Call) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")


def _keyword(node: ast.Call, name: str, position: int | None, default):
    for kw in node.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    if position is not None and len(node.args) > position and isinstance(node.args[position], ast.Constant):
        return node.args[position].value
    return default


def _implied(node: ast.Call, entries: dict) -> set[str]:
    """What a call loads that no string in the notebook names (defaults of the library)."""
    name = _call_name(node)
    if name in ("load_images", "ImageTensorDataset") and _keyword(node, "name", 0, "mnist") == "mnist":
        return {"mnist"}  # the default data set
    if name == "train_sr":
        return {"T91", "Set5"}  # SRConfig: trains on T91, scores on eval_set="Set5"
    if name == "comparison_table":  # loads every shipped generator of the data set (parameter counts)
        dataset = _keyword(node, "dataset", 1, "mnist")
        return {k for k, e in entries.items() if e.get("kind") in GENERATOR_KINDS and e.get("dataset") == dataset
                and not e.get("study")}
    if name in ("evaluate_generator", "evaluate_real", "default_classifier_stem"):
        dataset = _keyword(node, "dataset", None, "mnist")
        return {dataset, f"classifier_{'mnist' if dataset == 'mnist' else 'fashion'}"}
    return set()


def _loaded_names(tree: ast.Module, entries: dict) -> tuple[set[str], list[str]]:
    """Checkpoint and data-set names the code uses (a name only used as a manifest key is not loaded),
    and the relative paths it opens (which break outside the clone)."""
    keys = {id(n.slice) for n in ast.walk(tree) if isinstance(n, ast.Subscript)}
    used, relative = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            used |= _implied(node, entries)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in keys:
            used.add(node.value)
            if node.value.startswith(("../", "..\\")) or node.value == "..":
                relative.append(node.value)
    results = {p.name for p in (REPO / "book" / "results").glob("*.json")}
    return used & (set(entries) | DATA_NAMES | results), relative


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_table_has_what_the_notebook_loads(path):
    entries = manifest.read_manifest()["checkpoints"]
    used, relative = _loaded_names(_code(path), entries)
    assert path.stem in CHAPTERS, f"add {path.stem!r} to imagegen_lib.book.files.CHAPTERS"
    needs = CHAPTERS[path.stem]
    missing = sorted(used - set(needs.checkpoints) - set(needs.data) - set(needs.results))
    assert not missing, f"{path.stem} loads {missing}: add them to book.files.CHAPTERS[{path.stem!r}]"
    assert not relative, (f"{path.name} opens {relative}: a path into the clone, missing elsewhere. Load shipped "
                          "checkpoints with shipped('NAME') and data with data.load_images / load_sr_set")


def test_the_scan_sees_through_loops_and_defaults():
    entries = manifest.read_manifest()["checkpoints"]
    tree = ast.parse('m = {n: load_sampler(shipped(n)) for n in ("dcgan_mnist", "vae_mnist")}\n'
                     'x = manifest["checkpoints"]["dcgan_fashion"]\ndata.load_images()\ncomparison_table()\n'
                     'load_generator("../checkpoints/cgan_mnist")')
    used, relative = _loaded_names(tree, entries)
    assert {"dcgan_mnist", "vae_mnist", "mnist", "ddpm_mnist"} <= used and "dcgan_fashion" not in used
    assert relative == ["../checkpoints/cgan_mnist"]


def test_chapter_table_names_real_things():
    entries = manifest.read_manifest()["checkpoints"]
    for chapter, needs in CHAPTERS.items():
        assert (REPO / "notebooks" / f"{chapter}.ipynb").is_file(), f"{chapter}: no such notebook"
        assert (REPO / "book" / "quizzes" / f"{chapter}.yml").is_file(), f"{chapter}: no quiz bank"
        assert set(needs.checkpoints) <= set(entries), f"{chapter}: {set(needs.checkpoints) - set(entries)}"
        assert set(needs.data) <= DATA_NAMES, f"{chapter}: unknown data {set(needs.data) - DATA_NAMES}"
        for name in needs.results:
            assert (REPO / "book" / "results" / name).is_file(), f"{chapter}: no book/results/{name}"


# --------------------------------------------------------------------------------------------
# Where the library finds the book's files
# --------------------------------------------------------------------------------------------

def test_in_the_clone_the_files_are_the_clones():
    assert paths.in_clone() and paths.book_root() == REPO
    assert manifest.CHECKPOINT_DIR == REPO / "checkpoints"
    assert quiz.quiz_dir() == REPO / "book" / "quizzes"


def test_outside_a_clone_the_files_are_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "PACKAGE_REPO", tmp_path / "site-packages")  # no checkpoints/ beside it
    monkeypatch.delenv("IMAGEGEN_BOOK_FILES", raising=False)
    monkeypatch.setenv("IMAGEGEN_CACHE", str(tmp_path / "cache"))
    assert paths.book_root() == tmp_path / "cache" / "book-files"
    monkeypatch.setenv("IMAGEGEN_BOOK_FILES", str(tmp_path / "mine"))
    assert paths.book_root() == tmp_path / "mine"
    (tmp_path / "mine" / "book" / "quizzes").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert quiz.quiz_dir() == tmp_path / "mine" / "book" / "quizzes"


def test_a_shipped_but_missing_checkpoint_says_how_to_get_it(tmp_path):
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"checkpoints": {"dcgan_mnist": {}}}))
    with pytest.raises(FileNotFoundError, match="prepare_chapter"):
        manifest.shipped("dcgan_mnist", tmp_path)


# --------------------------------------------------------------------------------------------
# files_url and prepare_chapter against a loopback file server
# --------------------------------------------------------------------------------------------

C1, C2 = "1" * 40, "2" * 40


def test_files_url(monkeypatch):
    monkeypatch.delenv("IMAGEGEN_FILES_URL", raising=False)
    for repo in ("https://github.com/o/n", "https://github.com/o/n.git", "https://github.com/o/n/"):
        assert files_url(repo, C1) == f"https://raw.githubusercontent.com/o/n/{C1}/"
    with pytest.raises(BookFilesError, match="IMAGEGEN_FILES_URL"):
        files_url("https://gitlab.com/o/n", C1)
    monkeypatch.setenv("IMAGEGEN_FILES_URL", "http://127.0.0.1:1/raw/{commit}")
    assert files_url("https://gitlab.com/o/n", C1) == f"http://127.0.0.1:1/raw/{C1}/"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def file_server(tmp_path):
    """A loopback HTTP server of the folder ``tmp_path/srv``; yields (folder, base URL)."""
    folder = tmp_path / "srv"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _publish(folder: Path, chapter: str = "q4_training_problems", weights: bytes = b"weights v1") -> str:
    """A minimal repository tree: the manifest, q4's checkpoint (fake bytes) and quiz bank."""
    sha = hashlib.sha256(weights).hexdigest()
    ckpt = folder / "checkpoints"
    ckpt.mkdir(exist_ok=True)
    (ckpt / "dcgan_mnist.safetensors").write_bytes(weights)
    (ckpt / "dcgan_mnist.json").write_text(json.dumps({"kind": "gan-generator", "tensors_sha256": sha}))
    (ckpt / "dcgan_mnist.history.json").write_text("[]")
    (ckpt / "MANIFEST.json").write_text(json.dumps({"checkpoints": {"dcgan_mnist": {
        "file": "dcgan_mnist.safetensors", "meta_file": "dcgan_mnist.json", "sha256": sha,
        "history_file": "dcgan_mnist.history.json"}}}))
    (folder / "book" / "quizzes").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "book" / "quizzes" / f"{chapter}.yml", folder / "book" / "quizzes")
    (folder / "book" / "results").mkdir(parents=True, exist_ok=True)
    for name in CHAPTERS[chapter].results:
        (folder / "book" / "results" / name).write_text(json.dumps({"runs": [], "weights": weights.decode()}))
    return sha


def test_prepare_chapter_fetches_verifies_and_stamps(file_server, tmp_path, monkeypatch):
    folder, url = file_server
    sha = _publish(folder)
    monkeypatch.setenv("IMAGEGEN_FILES_URL", url)
    root = tmp_path / "files"
    assert prepare_chapter("q4_training_problems", "https://example.org/x", C1, root=root, data=False) == root
    assert hashlib.sha256((root / "checkpoints" / "dcgan_mnist.safetensors").read_bytes()).hexdigest() == sha
    assert (root / "checkpoints" / "dcgan_mnist.history.json").is_file()
    assert quiz.Quiz.from_file(root / "book" / "quizzes" / "q4_training_problems.yml")
    for name in CHAPTERS["q4_training_problems"].results:
        assert json.loads((root / "book" / "results" / name).read_text())["runs"] == []
    assert (root / "commit").read_text().strip() == C1

    # same commit: nothing is fetched again (the server is empty now)
    shutil.rmtree(folder / "checkpoints")
    prepare_chapter("q4_training_problems", "https://example.org/x", C1, root=root, data=False)

    # a new commit: the small files are fetched again, weights only if their hash changed
    sha2 = _publish(folder, weights=b"weights v2")
    prepare_chapter("q4_training_problems", "https://example.org/x", C2, root=root, data=False)
    assert hashlib.sha256((root / "checkpoints" / "dcgan_mnist.safetensors").read_bytes()).hexdigest() == sha2
    assert (root / "commit").read_text().strip() == C2


def test_prepare_chapter_keeps_nothing_unverified(file_server, tmp_path, monkeypatch):
    folder, url = file_server
    _publish(folder)
    (folder / "checkpoints" / "dcgan_mnist.safetensors").write_bytes(b"tampered")
    monkeypatch.setenv("IMAGEGEN_FILES_URL", url)
    root = tmp_path / "files"
    with pytest.raises(DownloadError, match="sha256"):
        prepare_chapter("q4_training_problems", "https://example.org/x", C1, root=root, data=False)
    assert not (root / "checkpoints" / "dcgan_mnist.safetensors").exists()
    assert not (root / "commit").exists()


def test_prepare_chapter_refuses_bad_arguments(tmp_path):
    with pytest.raises(BookFilesError, match="unknown chapter"):
        prepare_chapter("q9", "https://github.com/o/n", C1, root=tmp_path)
    with pytest.raises(BookFilesError, match="40-hex"):
        prepare_chapter("q4_training_problems", "https://github.com/o/n", "main", root=tmp_path)
    with pytest.raises(BookFilesError, match="clone"):
        prepare_chapter("q4_training_problems", "https://github.com/o/n", C1, root=REPO)


# --------------------------------------------------------------------------------------------
# The generator script on a throwaway repository
# --------------------------------------------------------------------------------------------

def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def toy_repo(tmp_path):
    """A git repository with a one-file library and a notebook."""
    root = tmp_path / "repo"
    (root / "imagegen_lib").mkdir(parents=True)
    (root / "imagegen_lib" / "__init__.py").write_text("")
    (root / "notebooks").mkdir()
    nb = {"cells": [{"cell_type": "markdown", "id": "t", "metadata": {}, "source": ["# Q1"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    nbb.write_notebook(root / "notebooks" / "q1_what_is_a_gan.ipynb", nb)
    _git(root, "init", "-q")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "empty")
    _git(root, "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "library")
    return root


def test_script_stamps_the_library_commit_and_refuses_a_stale_one(toy_repo):
    nb_path = toy_repo / "notebooks" / "q1_what_is_a_gan.ipynb"
    head = _git(toy_repo, "rev-parse", "HEAD")
    assert nbb.library_commit(toy_repo) == head
    with pytest.raises(nbb.BootstrapError, match="commit the library first"):
        nbb.check_commit("HEAD~1", toy_repo)  # the empty commit has no library
    (toy_repo / "imagegen_lib" / "new.py").write_text("")  # uncommitted (untracked) library code
    with pytest.raises(nbb.BootstrapError, match="new.py"):
        nbb.check_commit(head, toy_repo)
    (toy_repo / "imagegen_lib" / "new.py").unlink()

    commit = nbb.check_commit(head, toy_repo)
    assert nbb.write([nb_path], "https://github.com/o/n", commit) == [nb_path]
    assert nbb.write([nb_path], "https://github.com/o/n", commit) == []  # idempotent
    nb = nbb.read_notebook(nb_path)
    assert [c["id"] for c in nb["cells"]] == [nbb.CELL_ID, "t"]
    assert nb["cells"][0]["metadata"]["tags"] == ["remove-cell"]
    assert nbb.stamp_of(nb) == ("https://github.com/o/n", head)
    assert nbb.problems([nb_path], "https://github.com/o/n", toy_repo) == []
    assert "differs" in nbb.problems([nb_path], "https://github.com/o/other", toy_repo)[0]

    (toy_repo / "imagegen_lib" / "__init__.py").write_text("x = 1\n")
    _git(toy_repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "library v2")
    assert "changed after" in nbb.problems([nb_path], "https://github.com/o/n", toy_repo)[0]


def test_the_cell_is_valid_python_and_does_nothing_when_the_library_is_importable():
    source = nbb.cell_source("q4_training_problems", "https://github.com/o/n", C1)
    namespace: dict = {}
    exec(compile(source, "<setup cell>", "exec"), namespace)  # imagegen_lib is importable here
    assert namespace["BOOK_COMMIT"] == C1 and "repo" not in namespace


# --------------------------------------------------------------------------------------------
# Binder
# --------------------------------------------------------------------------------------------

def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)", line.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_binder_keeps_the_pins_of_requirements_txt():
    ours, binder = _pins(REPO / "requirements.txt"), _pins(REPO / "binder" / "requirements.txt")
    for name in ("torch", "torchvision"):  # the CPU wheels: same version, "+cpu" build
        assert binder.get(name) == ours[name] + "+cpu", f"binder/requirements.txt: pin {name}=={ours[name]}+cpu"
    for name, version in binder.items():
        if name not in ("torch", "torchvision"):
            assert ours.get(name) == version, f"binder/requirements.txt pins {name}=={version}, requirements.txt " \
                                              f"{ours.get(name)}"
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    runtime = {re.split(r"[<>=!~ \[]", d, maxsplit=1)[0].lower() for d in deps}
    assert runtime <= set(binder), f"binder/requirements.txt lacks {runtime - set(binder)}"
    postbuild = (REPO / "binder" / "postBuild").read_text()
    assert "--no-deps" in postbuild and "-e ." in postbuild


def test_an_executed_setup_cell_is_still_the_generated_one_but_an_edited_one_is_not():
    generated = nbb.make_cell("q1_what_is_a_gan", "https://github.com/o/r", "0" * 40)
    executed = {**generated, "execution_count": 1,
                "metadata": {**generated["metadata"], "execution": {"iopub.status.busy": "2026-12-03T05:00:00Z"}}}
    assert nbb.same_cell(executed, generated)
    edited = {**generated, "source": generated["source"] + ["print('hi')\n"]}
    assert not nbb.same_cell(edited, generated)
    untagged = {**generated, "metadata": {}}
    assert not nbb.same_cell(untagged, generated)
