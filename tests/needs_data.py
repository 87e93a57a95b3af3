"""Tests that need a data set skip when it is absent, and under ``CI=true`` such a skip fails the run.

A machine with some of the data (a GPU box with MNIST only) must still collect and run every test
it can, instead of aborting the whole collection; but CI has all the data (``make test`` runs
``make data`` first), so there a skip for want of data means something is broken, and a suite that
quietly skipped half its tests must not pass.

- ``needs_data("fashion-mnist", "Set5")``: a mark that skips up front. Use it where a missing set
  does not surface as a ``DataNotFoundError`` (a CLI call that returns 2, a subprocess);
- ``require_data(name)``: the same from inside a fixture or test; returns the set's folder;
- any other test that ends in an unhandled ``DataNotFoundError`` is reported as skipped too, with
  the same reason prefix, so no test has to remember to ask.

Every such skip's reason starts with :data:`NEEDS_DATA`; conftest.py imports the hooks below.
The module needs no torch (``data_files`` does not import it), so tests of it run in a subprocess
in a second.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagegen_lib.core.data_files import DATASETS, DataNotFoundError, find_dataset_dir, find_sr_set

NEEDS_DATA = "needs data:"
FIX = "run `make data` (or `imagegen data download`), or point IMAGEGEN_DATA at a folder that holds it"


def _what(error: DataNotFoundError) -> str:
    """The loader's message in one line: what is missing, and where it was looked for."""
    first, *rest = str(error).split("\nFix:")[0].splitlines()
    return " ".join([first, *(line.strip() for line in rest if line.lstrip().startswith("- "))])


def _reason(*whats: str) -> str:
    return f"{NEEDS_DATA} {'; '.join(whats)} — {FIX}"


def find(name: str) -> Path:
    """The folder of data set ``name`` ('mnist', 'fashion-mnist', or an SR set such as 'Set5')."""
    return find_dataset_dir(name) if name in DATASETS else find_sr_set(name)


def missing(name: str) -> str | None:
    """What is wrong if data set ``name`` is absent (one line), else None."""
    try:
        find(name)
    except DataNotFoundError as e:
        return _what(e)
    return None


def needs_data(*names: str) -> pytest.MarkDecorator:
    """A mark that skips the test when any of the data sets ``names`` is absent."""
    whats = [w for w in map(missing, names) if w]
    return pytest.mark.skipif(bool(whats), reason=_reason(*whats) if whats else "data present")


def require_data(name: str) -> Path:
    """The set's folder, or skip the calling test (or every test using the calling fixture)."""
    try:
        return find(name)
    except DataNotFoundError as e:
        pytest.skip(_reason(_what(e)))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """An unhandled DataNotFoundError (in a fixture or the test) is a skip for want of data, not a failure."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.excinfo is not None and call.excinfo.errisinstance(DataNotFoundError):
        path, line, _ = item.reportinfo()
        report.outcome = "skipped"
        report.longrepr = (str(path), (line or 0) + 1, f"Skipped: {_reason(_what(call.excinfo.value))}")


class _DataSkips:
    """Collects the skips for want of data; with CI=true, lists them and fails the session."""

    def __init__(self):
        self.skipped: list[str] = []

    def pytest_runtest_logreport(self, report):
        if report.skipped and isinstance(report.longrepr, tuple) and NEEDS_DATA in str(report.longrepr[2]):
            self.skipped.append(f"{report.nodeid}: {str(report.longrepr[2]).removeprefix('Skipped: ')}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        if self.skipped and in_ci() and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        if not (self.skipped and in_ci()):
            return
        terminalreporter.section("data missing under CI=true", red=True)
        for line in self.skipped:
            terminalreporter.line(line)
        terminalreporter.line(f"CI=true: {len(self.skipped)} test(s) skipped for want of data, which fails the run "
                              f"(CI must have every data set). Fix: {FIX}.", red=True)


def pytest_configure(config):
    config.pluginmanager.register(_DataSkips(), "imagegen-needs-data")
