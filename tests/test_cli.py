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

    def build_session(settings, **kw):
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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "silver_sales", "--run-date", "2026-03-01"], "unknown job 'silver_sales'"),
        (["run-all", "--run-date", "2026-03-01", "--layers", ""], "--layers names no layer"),
        (["run-all", "--run-date", "2026-03-01", "--layers", " , "], "--layers names no layer"),
        (["run-all", "--from", "2026-03-02", "--to", "2026-03-01"], "before --from"),
        (["run-layer", "silver", "--from", "2026-03-02", "--to", "2026-03-01"], "before --from"),
    ],
)
def test_a_mistake_on_the_command_line_exits_2_before_a_session_starts(
    monkeypatch, capsys, argv, message
):
    def no_session(*args, **kwargs):
        raise AssertionError("a session was started")

    monkeypatch.setattr(cli, "_session", no_session)
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_salted_export_without_the_pii_salt_exits_2_before_a_session_starts(
    monkeypatch, capsys, tmp_path
):
    """Before: exit 1 (an uncaught JobError) after Spark started and the audience was read."""
    import shutil
    from pathlib import Path

    root = Path(cli.__file__).resolve().parents[2]
    conf = tmp_path / "conf"
    shutil.copytree(root / "conf", conf)
    text = (conf / "gold.yml").read_text(encoding="utf-8")
    salted = "      CRM_SALTED: {identifier: phone, hash: salted_sha256}\n"
    text = text.replace("    export_channels:", "    export_channels:\n" + salted.rstrip("\n"), 1)
    (conf / "gold.yml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("LAKEHOUSE_CONF", str(conf))
    monkeypatch.setenv("LAKEHOUSE_EXPECTATIONS", str(root / "expectations"))
    monkeypatch.delenv("LAKEHOUSE_PII_SALT", raising=False)
    monkeypatch.setattr(cli, "_session", lambda *a, **k: pytest.fail("a session was started"))
    argv = ["audience", "export", "--name", "vip", "--channel", "crm_salted"]
    assert cli.main(argv) == 2
    assert "the PII salt is not set: export LAKEHOUSE_PII_SALT" in capsys.readouterr().err


def test_a_misspelt_quality_table_exits_2_before_a_session_starts(monkeypatch, capsys, tmp_path):
    import shutil
    from pathlib import Path

    root = Path(cli.__file__).resolve().parents[2]
    conf = tmp_path / "conf"
    shutil.copytree(root / "conf", conf)
    text = (conf / "quality.yml").read_text().replace("silver.order_lines:", "silver.order_line:")
    (conf / "quality.yml").write_text(text)
    monkeypatch.setenv("LAKEHOUSE_CONF", str(conf))
    monkeypatch.setenv("LAKEHOUSE_EXPECTATIONS", str(root / "expectations"))
    monkeypatch.setattr(cli, "_session", lambda *a, **k: pytest.fail("a session was started"))
    assert cli.main(["run", "silver.sales", "--run-date", "2026-03-01"]) == 2
    assert "tables.silver.order_line name no expectation suite" in capsys.readouterr().err


def test_demo_removes_only_an_earlier_demo(monkeypatch, capsys, tmp_path):
    precious = tmp_path / "data"
    (precious / "warehouse").mkdir(parents=True)
    (precious / "landing").mkdir()
    (precious / "notes.txt").write_text("keep me")
    monkeypatch.setattr(cli, "_session", lambda *a, **k: pytest.fail("a session was started"))
    assert cli.main(["demo", "--dir", str(precious)]) == 2
    assert "not removing it" in capsys.readouterr().err
    assert (precious / "notes.txt").read_text() == "keep me"
    assert (precious / "warehouse").is_dir()


def test_demo_starts_over_in_a_folder_an_earlier_demo_left(monkeypatch, tmp_path):
    earlier = tmp_path / "demo"
    (earlier / "warehouse" / "old").mkdir(parents=True)
    (earlier / "landing").mkdir()

    def stop(*args, **kwargs):
        raise RuntimeError("generator reached")

    import lakehouse.datagen

    monkeypatch.setattr(lakehouse.datagen, "generate", stop)
    assert cli.main(["demo", "--dir", str(earlier)]) == 1
    assert not (earlier / "warehouse" / "old").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["run-all", "--run-date", "2026-03-01"],
        ["run", "gold.member_portrait", "--run-date", "2026-03-01"],
        ["run-layer", "all", "--from", "2026-03-01", "--to", "2026-03-01"],
    ],
)
def test_a_run_reaching_the_portrait_without_the_pii_salt_stops_before_it_starts(
    monkeypatch, capsys, argv
):
    """Before: bronze, silver and One ID ran (hours on a real day) and only the portrait
    failed on the missing salt."""
    monkeypatch.delenv("LAKEHOUSE_PII_SALT", raising=False)
    monkeypatch.setattr(cli, "_session", lambda *a, **k: pytest.fail("a session was started"))
    assert cli.main(argv) == 2
    assert "the PII salt is not set: export LAKEHOUSE_PII_SALT" in capsys.readouterr().err


def test_an_erasure_without_the_pii_salt_stops_before_a_session_starts(monkeypatch, capsys):
    """Before: exit 1 after Spark started and the person was looked up (its log's hashes need
    the salt), where a run stops with exit 2 before anything starts."""
    monkeypatch.delenv("LAKEHOUSE_PII_SALT", raising=False)
    monkeypatch.setattr(cli, "_session", lambda *a, **k: pytest.fail("a session was started"))
    assert cli.main(["erase", "--identifier", "phone:13800138000"]) == 2
    assert "the PII salt is not set: export LAKEHOUSE_PII_SALT" in capsys.readouterr().err


def test_a_dry_run_erasure_needs_no_salt(monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_PII_SALT", raising=False)
    monkeypatch.setattr(cli, "_session", lambda *a, **k: "session")
    asked = []

    import lakehouse.privacy

    def erase(spark, settings, target, reason, dry_run):
        asked.append((spark, dry_run))
        raise lakehouse.privacy.ErasureError("stop here")

    monkeypatch.setattr(lakehouse.privacy, "erase", erase)
    assert cli.main(["erase", "--identifier", "phone:13800138000", "--dry-run"]) == 1
    assert asked == [("session", True)]


def test_generate_into_a_folder_that_is_not_empty_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep me")
    assert cli.main(["generate", "--out", str(tmp_path), "--days", "1"]) == 2
    assert "is not empty; refusing to overwrite" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_generator_failure_past_its_argument_checks_is_not_a_usage_error(monkeypatch, tmp_path):
    import lakehouse.datagen

    def broken(*args, **kwargs):
        raise ValueError("a bug, not the caller's mistake")

    monkeypatch.setattr(lakehouse.datagen, "generate", broken)
    assert cli.main(["generate", "--out", str(tmp_path / "landing")]) == 1


def test_a_run_without_gold_needs_no_salt(monkeypatch):
    monkeypatch.delenv("LAKEHOUSE_PII_SALT", raising=False)
    started = []
    monkeypatch.setattr(cli, "_session", lambda *a, **k: started.append(1) or None)
    monkeypatch.setattr(cli, "_run_layer", lambda *a, **k: True)
    assert cli.main(["run-all", "--run-date", "2026-03-01", "--layers", "bronze,silver"]) == 0
    assert started == [1]


def test_a_report_of_a_remote_warehouse_without_out_exits_2_before_a_session_starts(
    monkeypatch, capsys
):
    """Before: the page went to ./hdfs:/lakehouse/_reports/ on the local disk."""
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", "hdfs:///lakehouse")
    monkeypatch.setattr(cli, "_session", lambda *a, **k: pytest.fail("a session was started"))
    assert cli.main(["report", "--run-date", "2026-03-01"]) == 2
    assert "is not on this machine's disk" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("warehouse", "out", "message"),
    [
        ("hdfs:/lakehouse", None, "is not on this machine's disk"),  # before: ./hdfs:/lakehouse
        ("/tmp/wh", "s3a://bucket/r/report.html", "written to this machine's disk"),
    ],
)
def test_a_report_that_would_land_in_a_local_folder_named_after_a_uri_exits_2(
    monkeypatch, capsys, warehouse, out, message
):
    """Before: `hdfs:/x` (Hadoop's own spelling of hdfs:///x) was taken for a relative local
    folder, and `--out s3a://...` wrote the page to ./s3a:/... saying it went to S3."""
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", warehouse)
    monkeypatch.setattr(cli, "_session", lambda *a, **k: pytest.fail("a session was started"))
    args = ["report", "--run-date", "2026-03-01", *(["--out", out] if out else [])]
    assert cli.main(args) == 2
    assert message in capsys.readouterr().err


def test_fetch_jars_resolves_into_the_cache_whatever_the_env_says(monkeypatch, capsys):
    """Before: with `--env cluster` (delta_jars: provided, no master) the session resolved
    nothing and the command still printed "Delta jars ready", leaving no manifest for --jars."""
    from lakehouse import spark as spark_module

    built = []

    class _Session:
        def range(self, n):
            return self

        def collect(self):
            return []

    def build(settings, app_name=None, **kw):
        built.append(settings.spark)
        return _Session()

    monkeypatch.setenv("LAKEHOUSE_LANDING", "hdfs:///landing")
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", "hdfs:///lakehouse")
    monkeypatch.setattr(spark_module, "build_session", build)
    monkeypatch.setattr(spark_module, "cached_jars", lambda settings: ["/c/delta-spark.jar"])
    assert cli.main(["fetch-jars", "--env", "cluster"]) == 0
    assert (built[0].master, built[0].delta_jars) == ("local[1]", "cache")
    assert "1 jars listed for --jars" in capsys.readouterr().out

    monkeypatch.setattr(spark_module, "cached_jars", lambda settings: None)
    assert cli.main(["fetch-jars", "--env", "cluster"]) == 1
    assert "was not resolved into" in capsys.readouterr().err


def test_jobs_and_fetch_jars_need_no_data_paths_with_env_cluster(monkeypatch, capsys):
    """Before: both stopped with "the cluster environment has no landing path ... set
    LAKEHOUSE_LANDING", though neither reads or writes a table. The commands that do still
    ask for it."""
    from lakehouse import spark as spark_module

    class _Session:
        def range(self, n):
            return self

        def collect(self):
            return []

    monkeypatch.delenv("LAKEHOUSE_LANDING", raising=False)
    monkeypatch.delenv("LAKEHOUSE_WAREHOUSE", raising=False)
    monkeypatch.setattr(spark_module, "build_session", lambda settings, **kw: _Session())
    monkeypatch.setattr(spark_module, "cached_jars", lambda settings: ["/c/delta-spark.jar"])
    assert cli.main(["fetch-jars", "--env", "cluster"]) == 0
    assert cli.main(["jobs", "--env", "cluster"]) == 0
    assert "silver.sales" in capsys.readouterr().out
    monkeypatch.setattr(cli, "_session", lambda *a, **k: pytest.fail("a session was started"))
    assert cli.main(["run", "silver.sales", "--run-date", "2026-03-01", "--env", "cluster"]) == 2
    assert "set LAKEHOUSE_LANDING" in capsys.readouterr().err
