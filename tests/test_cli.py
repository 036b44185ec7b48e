"""The command line's session start: commands that run jobs import the gates (Great Expectations,
~6 s of one core) on a thread while the JVM starts, not at their first gate."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

import lakehouse.spark
from lakehouse import cli
from lakehouse.config import load_settings


@pytest.fixture()
def recorded(monkeypatch):
    """build_session and the gates' import replaced by recorders: what ran, on which thread."""
    seen: dict[str, object] = {"imports": []}

    def build_session(settings):
        time.sleep(0.2)  # the JVM starting
        seen["threads_while_building"] = {t.name for t in threading.enumerate()}
        return "session"

    def import_gates():
        time.sleep(0.5)  # longer than the session: _session must wait for it
        seen["imports"].append(threading.current_thread().name)

    monkeypatch.setattr(lakehouse.spark, "build_session", build_session)
    monkeypatch.setattr(cli, "_import_gates", import_gates)
    return seen


def test_a_gated_command_imports_the_gates_on_a_thread_while_the_session_starts(recorded):
    assert cli._session(load_settings("local"), gated=True) == "session"
    assert "import-gates" in recorded["threads_while_building"]
    # Joined before the first job: the import is done, on its own thread.
    assert recorded["imports"] == ["import-gates"]


def test_other_commands_do_not_import_the_gates(recorded):
    assert cli._session(load_settings("local")) == "session"
    assert "import-gates" not in recorded["threads_while_building"]
    assert recorded["imports"] == []


def test_every_command_that_runs_jobs_is_gated():
    assert {"run", "run-all", "run-layer", "audience"} <= cli.GATED_COMMANDS
    assert not {"summary", "oneid", "report", "jobs", "fetch-jars"} & cli.GATED_COMMANDS


def test_a_failing_import_on_the_thread_is_left_to_the_first_gate(monkeypatch):
    def broken(name):
        raise ImportError(f"no module named {name}")

    monkeypatch.setattr(cli.importlib, "import_module", broken)
    cli._import_gates()  # does not raise: the job's own import reports it, with its traceback


def test_the_gates_module_is_what_the_thread_imports(monkeypatch):
    imported = []
    monkeypatch.setattr(cli.importlib, "import_module", imported.append)
    cli._import_gates()
    assert imported == ["lakehouse.quality.results"]


def test_that_module_brings_great_expectations_in():
    """In a fresh interpreter: were the import made lazy, the thread would preload nothing."""
    probe = "import sys, lakehouse.quality.results; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
