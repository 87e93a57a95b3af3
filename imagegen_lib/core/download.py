"""Fetching one file over HTTP(S) so that a broken or interrupted download can never be used.

Every file the library downloads (data sets, and outside a clone the checkpoints and quiz banks)
goes through :func:`fetch_file`:

- it streams into ``<dest>.part`` beside the destination, with a progress bar on stderr;
- it hashes while streaming and, before anything is kept, checks the bytes: ``sha256=`` for the
  usual case, or ``check=`` (a function of the bytes that raises) when the file's identity is not
  its byte hash (a gzip whose *uncompressed* content is what is published, a T91 image checked by
  its pixels);
- only a file that passed is moved to ``dest`` (``os.replace``: atomic on one file system), so a
  reader of ``dest`` sees the whole verified file or nothing;
- on any failure — network error, short read, wrong hash, Ctrl-C — the ``.part`` file is deleted.
  A ``.part`` left by a killed process is overwritten by the next attempt, which starts cleanly.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

__all__ = ["DownloadError", "fetch_file", "fetch_bytes"]

CHUNK = 1 << 16
TIMEOUT_S = 60


class DownloadError(RuntimeError):
    """The file could not be fetched, or its bytes are not the published ones. Nothing was kept.

    ``url``: what was asked for; ``status``: the server's HTTP status when it answered with an error
    (404: it does not have the file, so a caller with another name or mirror to try moves on)."""

    def __init__(self, message: str, url: str | None = None, status: int | None = None):
        super().__init__(message)
        self.url, self.status = url, status


def _progress(total: int | None, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
                disable=not enabled, mininterval=0.5)


def fetch_bytes(url: str, timeout: float = TIMEOUT_S) -> bytes:
    """The whole body of ``url`` (for small files: a manifest, a quiz bank). Raises DownloadError."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as e:
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}", url=url, status=e.code) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        raise DownloadError(f"downloading {url} failed: {e!r}", url=url) from None


def fetch_file(url: str, dest: str | os.PathLike, sha256: str | None = None,
               check: Callable[[bytes], None] | None = None, desc: str | None = None,
               progress: bool = True, timeout: float = TIMEOUT_S) -> Path:
    """Download ``url`` to ``dest`` only if its bytes pass the check; return ``dest``.

    ``sha256``: the expected hex digest of the bytes. ``check``: called with the bytes, raises if
    they are wrong (use it when the digest of the bytes is not the identity). At least one is
    required: an unchecked download is exactly what this module exists to prevent.
    Raises :class:`DownloadError` (with the URL and what was wrong); ``dest`` is then untouched and
    no ``.part`` file is left.
    """
    if sha256 is None and check is None:
        raise ValueError("fetch_file needs sha256= or check=: refusing to keep a file nobody verified")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            with _progress(total, desc or dest.name, progress) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if total is not None and received != total:
                raise DownloadError(f"downloading {url}: connection closed after {received:,} of {total:,} bytes",
                                    url=url)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise DownloadError(f"{url}: sha256 is {digest.hexdigest()[:16]}…, expected {sha256[:16]}… — "
                                "not the published file (corrupted in transit, or a wrong mirror); nothing was kept",
                                url=url)
        if check is not None:
            try:
                check(part.read_bytes())
            except Exception as e:  # the checker's own message says what is wrong with the bytes
                raise DownloadError(f"{url}: {e}; nothing was kept", url=url) from None
        os.replace(part, dest)
        return dest
    except urllib.error.HTTPError as e:  # the server answered, with an error: say which
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}", url=url, status=e.code) from None
    except urllib.error.URLError as e:  # no answer: its reason ('Connection refused', 'timed out') is the news
        raise DownloadError(f"downloading {url} failed: {e.reason}", url=url) from None
    except (http.client.HTTPException, OSError, ValueError) as e:
        raise DownloadError(f"downloading {url} failed: {e!r}", url=url) from None
    finally:
        part.unlink(missing_ok=True)  # after a success it was already renamed; after a failure it must go
