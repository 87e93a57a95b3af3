"""Downloads, offline: a mirror served on 127.0.0.1 by a thread of this process.

``fetch_file`` itself (verified, atomic, nothing partial left), then the data sets through
``$IMAGEGEN_DATA_URL``: the happy path into ``$IMAGEGEN_DATA``, a corrupted file, an interrupted
transfer and a stale ``.part`` (nothing kept, the next run starts cleanly), a ``.gz`` checked by its
uncompressed bytes, a 404 on every name, and ``$IMAGEGEN_DATA`` as the one strict data root.
MNIST here is a 64-image slice of the real files with the spec's hashes patched to match (the real
47 MB file would only make the tests slow); Set5 and the label files are served as they are.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import importlib.util
import io
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagegen_lib import cli
from imagegen_lib.core import data, data_files
from imagegen_lib.sr import data as sr_data
from imagegen_lib.core.data import DataCorruptedError, DataNotFoundError
from imagegen_lib.core.download import DownloadError, fetch_bytes, fetch_file

from conftest import MNIST_FILES, real_raw


def sha(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


# ---------------------------------------------------------------------------------------------
# The mirror: a folder served over HTTP on 127.0.0.1, which can also cut a transfer in half
# ---------------------------------------------------------------------------------------------

class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, mirror, **kwargs):
        self.mirror = mirror  # set before super().__init__, which handles the request
        super().__init__(*args, directory=str(mirror.root), **kwargs)

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        self.mirror.requests.append(self.path)
        if self.path not in self.mirror.cut:
            return super().do_GET()
        # Promise the whole file, send half of it, hang up: what a dropped connection looks like.
        body = (self.mirror.root / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        self.close_connection = True


class Mirror:
    def __init__(self, root: Path):
        self.root = root
        self.cut: set[str] = set()  # URL paths answered with half their bytes
        self.requests: list[str] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      lambda *a: _Handler(*a, mirror=self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def put(self, relpath: str, blob: bytes) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(blob)
        return path


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy in the environment must not see these requests
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    m = Mirror(tmp_path / "mirror")
    m.root.mkdir()
    thread = threading.Thread(target=m.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield m
    m.server.shutdown()
    m.server.server_close()


# The real sets' folders, found before a test points $IMAGEGEN_DATA elsewhere (module-scoped fixtures
# are set up before the function-scoped ones that change the environment; conftest has real_mnist_raw).
@pytest.fixture(scope="module")
def real_set5() -> Path:
    return real_raw("Set5")


@pytest.fixture(scope="module")
def real_t91() -> Path:
    return real_raw("T91")


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a port just released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith((".part", ".bmp"))] if folder.exists() else []


# ---------------------------------------------------------------------------------------------
# fetch_file
# ---------------------------------------------------------------------------------------------

BLOB = bytes(range(256)) * 400  # 100 KB: several chunks


def test_fetch_file_keeps_only_a_verified_file(mirror, tmp_path):
    mirror.put("f.bin", BLOB)
    dest = tmp_path / "out" / "f.bin"
    assert fetch_file(f"{mirror.url}/f.bin", dest, sha256=sha(BLOB), progress=False) == dest
    assert dest.read_bytes() == BLOB and leftovers(tmp_path / "out") == []

    dest.write_bytes(b"the previous good copy")
    with pytest.raises(DownloadError, match="sha256 is .*nothing was kept") as info:
        fetch_file(f"{mirror.url}/f.bin", dest, sha256=sha(b"other"), progress=False)
    assert info.value.url == f"{mirror.url}/f.bin" and info.value.status is None
    assert dest.read_bytes() == b"the previous good copy" and leftovers(tmp_path / "out") == []

    def refuse(blob):
        raise ValueError("not what was published")
    with pytest.raises(DownloadError, match="not what was published; nothing was kept"):
        fetch_file(f"{mirror.url}/f.bin", tmp_path / "out" / "g.bin", check=refuse, progress=False)
    assert not (tmp_path / "out" / "g.bin").exists() and leftovers(tmp_path / "out") == []

    with pytest.raises(ValueError, match="sha256= or check="):
        fetch_file(f"{mirror.url}/f.bin", tmp_path / "out" / "h.bin")


def test_fetch_file_404_and_refused_connection(mirror, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        fetch_file(f"{mirror.url}/nope.bin", tmp_path / "nope.bin", sha256="0" * 64, progress=False)
    assert info.value.status == 404 and not (tmp_path / "nope.bin").exists() and leftovers(tmp_path) == []
    with pytest.raises(DownloadError, match="refused"):
        fetch_file(f"{closed_port_url()}/f.bin", tmp_path / "f.bin", sha256="0" * 64, progress=False)
    mirror.put("small.json", b"{}")
    assert fetch_bytes(f"{mirror.url}/small.json") == b"{}"
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_bytes(f"{mirror.url}/missing.json")


def test_interrupted_transfer_leaves_nothing_and_the_next_run_starts_cleanly(mirror, tmp_path):
    mirror.put("f.bin", BLOB)
    mirror.cut.add("/f.bin")
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match=f"connection closed after {len(BLOB) // 2:,} of {len(BLOB):,} bytes"):
        fetch_file(f"{mirror.url}/f.bin", dest, sha256=sha(BLOB), progress=False)
    assert not dest.exists() and leftovers(tmp_path) == []
    mirror.cut.clear()
    fetch_file(f"{mirror.url}/f.bin", dest, sha256=sha(BLOB), progress=False)
    assert dest.read_bytes() == BLOB


def test_a_stale_part_file_is_overwritten_and_ctrl_c_leaves_nothing(mirror, tmp_path):
    mirror.put("f.bin", BLOB)
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"x" * (2 * len(BLOB)))  # left by a killed process: longer, wrong
    fetch_file(f"{mirror.url}/f.bin", dest, sha256=sha(BLOB), progress=False)
    assert dest.read_bytes() == BLOB and leftovers(tmp_path) == []

    def interrupt(blob):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        fetch_file(f"{mirror.url}/f.bin", tmp_path / "g.bin", check=interrupt, progress=False)
    assert not (tmp_path / "g.bin").exists() and leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Data sets from a mirror ($IMAGEGEN_DATA_URL) into $IMAGEGEN_DATA
# ---------------------------------------------------------------------------------------------

N = 64  # images in the tiny MNIST


def idx(array: np.ndarray) -> bytes:
    """An IDX file of uint8 ``array`` (the format of the official files)."""
    return bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + array.tobytes()


@pytest.fixture(scope="module")
def tiny_mnist(real_mnist_raw) -> dict[str, bytes]:
    """The first N images and labels of each real split, as IDX files."""
    out = {}
    for stem in MNIST_FILES:
        arr = data.read_idx(data._file_in(real_mnist_raw, stem))
        out[stem] = idx(np.ascontiguousarray(arr[:N]))
    return out


@pytest.fixture
def tiny_spec(tiny_mnist, monkeypatch):
    """DATASETS['mnist'] now names the tiny files' hashes (for the downloader and the loader alike)."""
    for stem, blob in tiny_mnist.items():
        monkeypatch.setitem(data_files.DATASETS["mnist"].sha256, stem, sha(blob))
    return tiny_mnist


@pytest.fixture
def target(tmp_path, monkeypatch, mirror):
    """``$IMAGEGEN_DATA`` (not yet created) with ``$IMAGEGEN_DATA_URL`` pointing at the mirror."""
    root = tmp_path / "data"
    monkeypatch.setenv("IMAGEGEN_DATA", str(root))
    monkeypatch.setenv("IMAGEGEN_DATA_URL", mirror.url + "/")  # a trailing slash is fine
    return root.resolve()


def serve_tiny_mnist(mirror, tiny, gz=("t10k-labels-idx1-ubyte",)):
    for stem, blob in tiny.items():
        if stem in gz:
            mirror.put(f"MNIST/raw/{stem}.gz", gzip.compress(blob))
        else:
            mirror.put(f"MNIST/raw/{stem}", blob)


def test_ensure_fetches_what_is_missing_from_the_mirror(mirror, target, tiny_spec, real_set5, capsys):
    serve_tiny_mnist(mirror, tiny_spec)
    (mirror.root / "sr" / "Set5").mkdir(parents=True)
    for f in sr_data._files_of("Set5"):
        (mirror.root / "sr" / "Set5" / f).symlink_to(real_set5 / f)

    got = data.ensure(["mnist", "Set5"], progress=False)
    assert [(g.name, g.folder, g.downloaded) for g in got] == [
        ("mnist", target / "MNIST" / "raw", True), ("Set5", target / "sr" / "Set5", True)]
    # .gz first, then the plain name; each file kept under the name it was served with
    assert mirror.requests[:2] == ["/MNIST/raw/train-images-idx3-ubyte.gz", "/MNIST/raw/train-images-idx3-ubyte"]
    assert sorted(p.name for p in (target / "MNIST" / "raw").iterdir()) == sorted(
        ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"])
    assert leftovers(target) == []

    # the real loaders read them (from $IMAGEGEN_DATA, the only root now), hash-checked
    x, y = data.load_images("mnist", "test", (0, 1))
    assert x.shape == (N, 1, 28, 28) and y[:5].tolist() == [7, 2, 1, 0, 4]
    assert [im.name for im in sr_data.load_sr_set("Set5")] == ["baby", "bird", "butterfly", "head", "woman"]

    # a second run finds everything and asks the server for nothing
    served = len(mirror.requests)
    assert [g.downloaded for g in data.ensure(["mnist", "Set5"], progress=False)] == [False, False]
    assert len(mirror.requests) == served

    # the command (what `make data` runs) says the same
    assert cli.main(["data", "download", "mnist"]) == 0
    assert capsys.readouterr().out == f"mnist: present in {target / 'MNIST' / 'raw'}\n"


def test_without_imagegen_data_downloads_go_to_the_user_cache(mirror, tiny_spec, tmp_path, monkeypatch):
    """A machine without a data folder beside the repository: the set lands in the user cache."""
    monkeypatch.delenv("IMAGEGEN_DATA", raising=False)
    monkeypatch.setenv("IMAGEGEN_DATA_URL", mirror.url)
    monkeypatch.setattr(data_files, "REPO_ROOT", tmp_path / "repo")  # nothing beside it
    monkeypatch.setattr(data_files, "USER_CACHE", tmp_path / "cache" / "data")
    monkeypatch.chdir(tmp_path)
    serve_tiny_mnist(mirror, tiny_spec)
    with pytest.raises(DataNotFoundError, match="which puts it in .*cache/data"):
        data.load_images("mnist", "test")
    (got,) = data.ensure("mnist", progress=False)
    assert got.downloaded and got.folder == tmp_path / "cache" / "data" / "MNIST" / "raw"
    assert data.find_dataset_dir("mnist") == got.folder.resolve()
    assert data.load_images("mnist", "test")[1][:5].tolist() == [7, 2, 1, 0, 4]


def test_cli_download_reports_what_it_fetched(mirror, target, tiny_spec, capsys):
    serve_tiny_mnist(mirror, tiny_spec, gz=MNIST_FILES)
    assert cli.main(["data", "download", "mnist"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"mnist: downloaded and verified in {target / 'MNIST' / 'raw'}\n"
    assert f"mnist: not found; downloading it into {target} from IMAGEGEN_DATA_URL={mirror.url}" in captured.err
    assert data.verify("mnist") == target / "MNIST" / "raw"


def test_a_corrupted_file_on_the_mirror_is_rejected(mirror, target, tiny_spec):
    bad = bytearray(tiny_spec["train-labels-idx1-ubyte"])
    bad[20] ^= 1  # one label: header and size still perfect
    serve_tiny_mnist(mirror, {**tiny_spec, "train-labels-idx1-ubyte": bytes(bad)})
    with pytest.raises(DownloadError) as info:
        data.ensure("mnist", progress=False)
    msg = str(info.value)
    assert "sha256" in msg and f"{mirror.url}/MNIST/raw/train-labels-idx1-ubyte" in msg
    assert "HTTP 404" in msg  # the .gz name was tried too
    assert "IMAGEGEN_DATA_URL" in msg and "copy the files into" in msg
    raw = target / "MNIST" / "raw"
    assert data._file_in(raw, "train-labels-idx1-ubyte") is None and leftovers(target) == []
    # the file fetched before it was verified and is kept; the run after a fix fetches only the rest
    assert (raw / "train-images-idx3-ubyte").is_file()
    serve_tiny_mnist(mirror, tiny_spec)
    mirror.requests.clear()
    assert data.ensure("mnist", progress=False)[0].downloaded
    assert "/MNIST/raw/train-images-idx3-ubyte" not in mirror.requests


def test_a_bad_gz_is_rejected_by_its_uncompressed_bytes(mirror, target, tiny_spec):
    serve_tiny_mnist(mirror, tiny_spec)
    wrong = bytearray(tiny_spec["t10k-labels-idx1-ubyte"])
    wrong[-1] ^= 1
    mirror.put("MNIST/raw/t10k-labels-idx1-ubyte.gz", gzip.compress(bytes(wrong)))  # a valid gzip of wrong bytes
    with pytest.raises(DownloadError, match="sha256 of the uncompressed bytes"):
        data.ensure("mnist", progress=False)
    mirror.put("MNIST/raw/t10k-labels-idx1-ubyte.gz", b"<html>not found</html>")  # a mirror's error page
    with pytest.raises(DownloadError, match="not a readable gzip file"):
        data.ensure("mnist", progress=False)
    assert data._file_in(target / "MNIST" / "raw", "t10k-labels-idx1-ubyte") is None and leftovers(target) == []


def test_the_real_gz_passes_with_the_published_hash(mirror, real_mnist_raw, target):
    """The official files come as .gz; the published sha256 is of the uncompressed bytes."""
    raw = target / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in MNIST_FILES[:3]:  # all but the test labels are there already
        (raw / stem).symlink_to(data._file_in(real_mnist_raw, stem))
    blob = data._file_in(real_mnist_raw, "t10k-labels-idx1-ubyte").read_bytes()
    mirror.put("MNIST/raw/t10k-labels-idx1-ubyte.gz", gzip.compress(blob))
    assert data.download("mnist", progress=False) == raw
    assert mirror.requests == ["/MNIST/raw/t10k-labels-idx1-ubyte.gz"]
    _, y = data.load_images("mnist", "test")
    assert y.shape == (10000,) and y[:5].tolist() == [7, 2, 1, 0, 4]


def test_an_interrupted_download_leaves_nothing_and_the_next_run_restarts(mirror, target, tiny_spec):
    serve_tiny_mnist(mirror, tiny_spec, gz=())
    mirror.cut.add("/MNIST/raw/t10k-images-idx3-ubyte")
    with pytest.raises(DownloadError, match="connection closed after"):
        data.ensure("mnist", progress=False)
    raw = target / "MNIST" / "raw"
    assert data._file_in(raw, "t10k-images-idx3-ubyte") is None and leftovers(target) == []
    with pytest.raises(DataNotFoundError):  # the loader does not see a half-fetched set
        data.load_images("mnist", "test")
    mirror.cut.clear()
    assert data.ensure("mnist", progress=False)[0].downloaded
    assert data.load_images("mnist", "test")[1][:5].tolist() == [7, 2, 1, 0, 4]


def test_a_stale_part_from_a_killed_run_is_overwritten(mirror, target, tiny_spec):
    serve_tiny_mnist(mirror, tiny_spec, gz=())
    raw = target / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.part").write_bytes(b"half of an old download")
    assert data.ensure("mnist", progress=False)[0].downloaded
    assert (raw / "train-images-idx3-ubyte").read_bytes() == tiny_spec["train-images-idx3-ubyte"]
    assert leftovers(target) == []


def test_a_file_on_neither_name_is_a_clear_error(mirror, target, tiny_spec):
    serve_tiny_mnist(mirror, {k: v for k, v in tiny_spec.items() if k != "t10k-images-idx3-ubyte"})
    with pytest.raises(DownloadError) as info:
        data.ensure("mnist", progress=False)
    msg = str(info.value)
    base = f"{mirror.url}/MNIST/raw/t10k-images-idx3-ubyte"
    assert f"could not download mnist t10k-images-idx3-ubyte into {target / 'MNIST' / 'raw'}" in msg
    assert f"{base}.gz: HTTP 404" in msg and f"{base}: HTTP 404" in msg
    assert f"IMAGEGEN_DATA_URL={mirror.url} is up and serves a data root's layout" in msg
    assert leftovers(target) == []


def test_no_server_at_all_says_what_to_check(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEGEN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("IMAGEGEN_DATA_URL", closed_port_url())
    with pytest.raises(DownloadError, match="Connection refused") as info:
        data.ensure("Set5", progress=False)
    assert "unset IMAGEGEN_DATA_URL to download from the official sources" in str(info.value)
    # the CLI: one `imagegen: error:` with the same text, exit status 2
    assert cli.main(["data", "download", "sr"]) == 2


def test_sr_sets_download_into_the_root_asked_for(mirror, real_set5, tmp_path, monkeypatch):
    monkeypatch.setenv("IMAGEGEN_DATA_URL", mirror.url)
    (mirror.root / "sr").mkdir()
    (mirror.root / "sr" / "Set5").symlink_to(real_set5, target_is_directory=True)
    assert sr_data.download_sr_sets(["Set5"], root=tmp_path / "a", progress=False) == tmp_path / "a" / "sr"
    assert len(sr_data.load_sr_set("Set5", root=tmp_path / "a")) == 5
    with pytest.raises(DataNotFoundError):  # download=False (the default) never downloads
        sr_data.load_sr_set("Set5", root=tmp_path / "b")
    assert [im.name for im in sr_data.load_sr_set("Set5", root=tmp_path / "b", download=True)][0] == "baby"
    assert leftovers(tmp_path) == []


def test_official_sources_without_a_mirror(monkeypatch):
    """Without $IMAGEGEN_DATA_URL: torchvision's MNIST mirrors (.gz) and the pinned GitHub commits."""
    monkeypatch.delenv("IMAGEGEN_DATA_URL", raising=False)
    mnist = data_files._idx_sources(data_files.DATASETS["mnist"], "train-labels-idx1-ubyte")
    assert mnist[0] == ("https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz",
                        "train-labels-idx1-ubyte.gz")
    # the same mirrors as torchvision's (read from its source: importing torchvision takes seconds)
    tv = Path(importlib.util.find_spec("torchvision").origin).parent / "datasets" / "mnist.py"
    for spec in data_files.DATASETS.values():
        assert all(f'"{m}"' in tv.read_text() for m in spec.mirrors), spec.mirrors
    set5 = data_files._sr_sources("Set5")
    assert set5[0] == ("https://raw.githubusercontent.com/majedelhelou/denoising_datasets/"
                       "58234876fef6f1b56306705c78dfd40cdb837b86/CSet5/baby.png", "baby.png")
    t91 = dict((dst, url) for url, dst in data_files._sr_sources("T91"))
    assert t91["t1.png"].endswith("d382bc30d41c94ac72f8cb148d61cc4864b3b380/data/yang91/t1.bmp")
    assert dict((dst, url) for url, dst in data_files._sr_sources("BSD100"))["101085.png"].endswith("/img_001.png")


def test_t91_comes_as_bmp_and_is_kept_as_a_png_with_its_pixels(mirror, real_t91, tmp_path):
    real = real_t91 / "t1.png"
    buf = io.BytesIO()
    Image.open(real).save(buf, format="BMP")
    mirror.put("yang91/t1.bmp", buf.getvalue())
    folder = tmp_path / "sr" / "T91"
    data_files._fetch_sr_file("T91", f"{mirror.url}/yang91/t1.bmp", folder, "t1.png")
    assert [p.name for p in folder.iterdir()] == ["t1.png"]  # the BMP is gone
    img = sr_data._read_verified("T91", folder / "t1.png")  # the loader's check: by its pixels
    assert img.size == Image.open(real).size
    # a BMP with other pixels is rejected, and nothing is kept
    other = Image.open(real).convert("RGB")
    other.putpixel((0, 0), (1, 2, 3))
    buf = io.BytesIO()
    other.save(buf, format="BMP")
    mirror.put("yang91/t2.bmp", buf.getvalue())
    with pytest.raises(DownloadError, match="pixels differ from the published T91 image t2"):
        data_files._fetch_sr_file("T91", f"{mirror.url}/yang91/t2.bmp", folder, "t2.png")
    assert [p.name for p in folder.iterdir()] == ["t1.png"]
    # from a mirror a T91 image is already a PNG: re-encoded bytes pass on their pixels
    reencoded = io.BytesIO()
    Image.open(real).save(reencoded, format="PNG", compress_level=1)
    assert sha(reencoded.getvalue()) != sha(real.read_bytes())
    data_files._sr_check("T91", "t1.png")(reencoded.getvalue())
    with pytest.raises(ValueError, match="Set5/baby.png"):
        data_files._sr_check("Set5", "baby.png")(reencoded.getvalue())


# ---------------------------------------------------------------------------------------------
# $IMAGEGEN_DATA is the data root: only there, and downloads go there
# ---------------------------------------------------------------------------------------------

def test_imagegen_data_without_the_data_is_an_error_that_names_it(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("IMAGEGEN_DATA", str(empty))
    assert data.search_roots() == [empty.resolve()] and data.data_root() == empty.resolve()
    with pytest.raises(DataNotFoundError) as info:
        data.load_images("mnist")  # even though a data folder beside the repository may hold it
    msg = str(info.value)
    assert f"mnist not found in IMAGEGEN_DATA={empty}" in msg and "the only place looked" in msg
    assert "imagegen data download mnist" in msg and "unset IMAGEGEN_DATA" in msg
    with pytest.raises(DataNotFoundError, match=r"(?s)super-resolution set Set5 not found in IMAGEGEN_DATA=.*"
                                                r"imagegen data download sr"):
        sr_data.load_sr_set("Set5")
    assert cli.main(["data", "check", "mnist"]) == 2


def test_a_corrupted_file_already_in_the_data_root_is_named(mirror, target, tiny_spec):
    serve_tiny_mnist(mirror, tiny_spec)
    raw = target / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01" + b"garbage")  # a partial set, one file bad
    with pytest.raises(DataCorruptedError, match=r"t10k-labels-idx1-ubyte: sha256 .*Delete it and run "
                                                 r"`imagegen data download mnist` again"):
        data.ensure("mnist", progress=False)


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown data set 'cifar10'; choose from mnist, fashion-mnist, sr, Set5"):
        data.ensure(["cifar10"])


def test_make_data_with_everything_present_imports_no_torch(real_mnist_raw, tmp_path):
    """`make data` runs before every build: with the data there it must not pay torch's ~2 s import."""
    root = tmp_path / "data"
    (root / "MNIST").mkdir(parents=True)
    (root / "MNIST" / "raw").symlink_to(real_mnist_raw, target_is_directory=True)
    code = ("import sys; from imagegen_lib import cli; rc = cli.main(['data', 'download', 'mnist']); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    env = {**os.environ, "IMAGEGEN_DATA": str(root), "IMAGEGEN_DATA_URL": closed_port_url()}  # no download
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"mnist: present in {root.resolve() / 'MNIST' / 'raw'}\n"
