"""A chapter downloaded alone runs top to bottom: its first cell installs the library and fetches its files.

Everything a reader's machine would fetch from the internet is served on loopback instead:

- the library's repository: a throwaway git repository made from this working tree's files,
  committed, served as a bare repository over git's dumb HTTP protocol (``IMAGEGEN_REPO``);
- the same tree as the raw-file server (``IMAGEGEN_FILES_URL``) and the data root as the data
  mirror (``IMAGEGEN_DATA_URL``).

The notebook runs in a fresh venv that cannot import ``imagegen_lib`` but sees the heavy
dependencies (torch, ipykernel, nbclient, setuptools) through a ``.pth`` file pointing at symlinks
to this venv's packages, as Colab has torch but not the library. pip gets no index and no build
isolation, and a dead proxy catches any request that is not to loopback. HOME and the cache are
empty folders.

q4_training_problems is the chapter: it needs data (MNIST), a checkpoint and its quiz, and runs in
about 75 s on 2 cores.

The chapter runs beside the rest of the suite: conftest.py calls :func:`start_early` once the
tests are collected, which builds the repository, the venv and the notebook (a few seconds) and
starts the kernel's run in the background, and puts this test last; the test waits for the run and
checks it. The unit tests run torch on one thread (conftest.py), so the second core was idle; the
kernel gets one OpenMP thread so that it does not spin-wait against them (q4's claims hold at one
thread: CI's second nbval pass runs every notebook so).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

import pytest

from imagegen_lib.core import data_files
from imagegen_lib.book.files import CHAPTERS

from bootstrap_script import nbb

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "q4_training_problems"
# What the pip install and the chapter's files need from the tree.
TREE = ("imagegen_lib", "pyproject.toml", "README.md")




def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    return _run(["git", *args], cwd=cwd, env=env).stdout.strip()


def _source_tree(dest: Path) -> str:
    """The working tree's library, the chapter's checkpoints and quiz, committed; returns the commit."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in TREE:
        src = REPO / name
        (shutil.copytree(src, dest / name, ignore=ignore) if src.is_dir() else shutil.copy2(src, dest / name))
    (dest / "checkpoints").mkdir()
    manifest = json.loads((REPO / "checkpoints" / "MANIFEST.json").read_text())
    shutil.copy2(REPO / "checkpoints" / "MANIFEST.json", dest / "checkpoints")
    for name in CHAPTERS[CHAPTER].checkpoints:
        entry = manifest["checkpoints"][name]
        for file in (entry["file"], entry["meta_file"], entry.get("history_file")):
            if file:
                shutil.copy2(REPO / "checkpoints" / file, dest / "checkpoints")
    (dest / "book" / "quizzes").mkdir(parents=True)
    shutil.copy2(REPO / "book" / "quizzes" / f"{CHAPTER}.yml", dest / "book" / "quizzes")
    (dest / "book" / "results").mkdir(parents=True)
    for name in CHAPTERS[CHAPTER].results:
        shutil.copy2(REPO / "book" / "results" / name, dest / "book" / "results")
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "add", ".")
    _git(dest, "commit", "-q", "-m", "book")
    return _git(dest, "rev-parse", "HEAD")


def _bare_repo(src: Path, dest: Path) -> None:
    """``src`` as a bare repository that git's dumb HTTP protocol can clone from a static file server."""
    _git(src.parent, "clone", "-q", "--bare", "--no-local", str(src), str(dest))
    _git(dest, "repack", "-a", "-d", "-q")  # one pack: one request instead of one per object
    _git(dest, "update-server-info")  # info/refs and objects/info/packs, what a dumb client reads


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(folder: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _fresh_venv(dest: Path, deps: Path) -> Path:
    """A venv without imagegen_lib that sees every other package of this venv; returns its python."""
    deps.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        skip = (entry.name.startswith(("imagegen_lib", "__editable__", "__pycache__"))
                or entry.suffix == ".pth")  # the editable install's hooks, and .pth files (not read here anyway)
        if not skip:
            (deps / entry.name).symlink_to(entry)
    _run([sys.executable, "-m", "venv", "--without-pip", str(dest)])  # pip comes through the symlinks too
    python = dest / "bin" / "python"
    fresh_site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (fresh_site / "project_deps.pth").write_text(f"{deps}\n")
    return python


def _lone_notebook(folder: Path, commit: str) -> Path:
    """The chapter copied alone into ``folder``, its setup cell stamped with the throwaway commit."""
    nb = nbb.read_notebook(REPO / "notebooks" / f"{CHAPTER}.ipynb")
    for cell in nb["cells"]:  # until the notebook loads its checkpoint with shipped(): a path into the clone
        source = "".join(cell["source"])
        if '"../checkpoints/dcgan_mnist"' in source:
            source = ("from imagegen_lib.core.manifest import shipped\n"
                      + source.replace('"../checkpoints/dcgan_mnist"', 'shipped("dcgan_mnist")'))
            cell["source"] = source.splitlines(keepends=True)
    nb = nbb.with_cell(nb, nbb.make_cell(CHAPTER, nbb.repository_url(), commit))
    folder.mkdir()
    path = folder / f"{CHAPTER}.ipynb"
    nbb.write_notebook(path, nb)
    return path


RUN_NOTEBOOK = """
import sys, nbformat
from nbclient import NotebookClient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, kernel_name="lone", timeout=600, resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, path)
"""


def _kernel_spec(jupyter: Path, python: Path) -> None:
    spec = jupyter / "kernels" / "lone"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh venv", "language": "python"}))


class LoneRun:
    """The chapter, prepared and started in a fresh venv; :meth:`wait` returns its finished process."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.error: BaseException | None = None  # raised by wait(): a skip, or a failure to set up
        self.server = self.process = None
        try:
            self._start()
        except (Exception, pytest.skip.Exception) as e:  # a skip is no Exception
            self.error = e
            self.close()
            if isinstance(e, pytest.skip.Exception):
                shutil.rmtree(tmp_path, ignore_errors=True)

    def _start(self) -> None:
        tmp_path = self.tmp_path
        if shutil.which("git") is None:
            pytest.skip("needs git")
        srv = tmp_path / "srv"
        srv.mkdir()
        self.commit = _source_tree(srv / "src")
        _bare_repo(srv / "src", srv / "repo.git")
        (srv / "data").symlink_to(data_files.find_dataset_dir("mnist").parents[1])  # a data root's layout
        self.server, self.url = _serve(srv)

        self.python = python = _fresh_venv(tmp_path / "venv", tmp_path / "deps")
        missing = subprocess.run([str(python), "-c", "import imagegen_lib"], capture_output=True, text=True,
                                 cwd=tmp_path)
        assert missing.returncode != 0 and "No module named 'imagegen_lib'" in missing.stderr
        _run([str(python), "-c", "import torch, nbclient, ipykernel, setuptools, pip"], cwd=tmp_path)

        self.nb_path = nb_path = _lone_notebook(tmp_path / "alone", self.commit)
        _kernel_spec(tmp_path / "jupyter", python)
        (tmp_path / "home").mkdir()
        url = self.url
        self.env = {
            # One thread: the kernel runs beside the unit tests (see the module's docstring).
            "PATH": os.environ["PATH"], "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
            "HOME": str(tmp_path / "home"), "IMAGEGEN_CACHE": str(tmp_path / "cache"), "TMPDIR": str(tmp_path),
            "JUPYTER_PATH": str(tmp_path / "jupyter"), "JUPYTER_PLATFORM_DIRS": "1",
            "IMAGEGEN_REPO": f"{url}/repo.git", "IMAGEGEN_FILES_URL": f"{url}/src/", "IMAGEGEN_DATA_URL": f"{url}/data",
            # pip: no index (nothing but the loopback repository), and no build isolation: an isolated
            # build would have to download setuptools. (pip reads PIP_NO_BUILD_ISOLATION inverted: 0 = off.)
            "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            # Anything that is not loopback goes to a dead proxy and fails at once.
            "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
            "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
            "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost", "GIT_CONFIG_NOSYSTEM": "1",
        }
        self.process = subprocess.Popen([str(python), "-c", RUN_NOTEBOOK, str(nb_path), str(nb_path.parent)],
                                        env=self.env, cwd=nb_path.parent, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True,
                                        start_new_session=True)  # close() ends the kernel with it
        # Read both pipes while it runs (a full pipe would stall the kernel's run).
        self._out = {}
        self._readers = [threading.Thread(target=self._drain, args=(name, stream), daemon=True)
                         for name, stream in (("stdout", self.process.stdout), ("stderr", self.process.stderr))]
        for t in self._readers:
            t.start()

    def _drain(self, name, stream) -> None:
        self._out[name] = stream.read()

    def wait(self, timeout: float = 900) -> subprocess.CompletedProcess:
        if self.error is not None:
            raise self.error
        try:
            returncode = self.process.wait(timeout=timeout)
            for t in self._readers:
                t.join()
        finally:
            self.close()
        return subprocess.CompletedProcess(self.process.args, returncode, self._out.get("stdout", ""),
                                           self._out.get("stderr", ""))

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: the runner and its kernel
            self.process.wait()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


_RUN: LoneRun | None = None


def start_early(config) -> None:
    """Called by conftest.py once the session's tests are collected (this one among them)."""
    global _RUN
    if _RUN is None:
        _RUN = LoneRun(Path(tempfile.mkdtemp(prefix="lone-notebook-")))


def stop() -> None:
    """Called by conftest.py at the session's end: a run this test did not wait for is ended."""
    if _RUN is not None:
        _RUN.close()


def test_a_lone_notebook_installs_the_library_and_fetches_its_files():
    start_early(None)  # started already, unless conftest.py's hook did not run
    done = _RUN.wait()  # skips (no git, no MNIST) and set-up failures are raised here
    tmp_path, python, url, commit, env, nb_path = _RUN.tmp_path, _RUN.python, _RUN.url, _RUN.commit, _RUN.env, _RUN.nb_path
    assert done.returncode == 0, f"the lone notebook failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"

    executed = nbb.read_notebook(nb_path)
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors
    assert "ig-quiz" in json.dumps(executed["cells"][-1]["outputs"]), "the quiz (its bank fetched) renders at the end"

    # the library came from the loopback repository, at the commit, into the fresh venv
    info = _run([str(python), "-c", "import imagegen_lib, importlib.metadata as m; print(imagegen_lib.__file__); "
                 "print(m.distribution('imagegen-lib').read_text('direct_url.json'))"], cwd=tmp_path, env=env).stdout
    where, direct_url = info.split("\n", 1)
    assert where.startswith(str(tmp_path / "venv"))
    direct_url = json.loads(direct_url)
    assert direct_url["url"] == f"{url}/repo.git" and direct_url["vcs_info"]["commit_id"] == commit

    # the checkpoints and quiz are in the cache, verified; the data came from the mirror
    files = tmp_path / "cache" / "book-files"
    assert (files / "commit").read_text().strip() == commit
    manifest = json.loads((files / "checkpoints" / "MANIFEST.json").read_text())["checkpoints"]
    for name in CHAPTERS[CHAPTER].checkpoints:
        weights = files / "checkpoints" / manifest[name]["file"]
        assert hashlib.sha256(weights.read_bytes()).hexdigest() == manifest[name]["sha256"]
    assert (files / "book" / "quizzes" / f"{CHAPTER}.yml").is_file()
    assert data_files.find_dataset_dir("mnist", tmp_path / "cache" / "data")
    shutil.rmtree(tmp_path, ignore_errors=True)  # kept when a check above failed, for a look
