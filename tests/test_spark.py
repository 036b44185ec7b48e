"""The session builder's own checks: Java 17+, and Delta's coordinates."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from lakehouse.spark import JavaMissingError, check_java, delta_package


def _fake_java(home: Path, version_line: str) -> None:
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)


def test_old_java_is_one_clear_sentence(tmp_path, monkeypatch):
    _fake_java(tmp_path, 'openjdk version "11.0.2" 2019-01-15')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(JavaMissingError, match=r"needs Java 17 or newer.*version \"11"):
        check_java()


def test_missing_java_is_one_clear_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(JavaMissingError, match=r"needs Java 17 or newer.*install OpenJDK 17"):
        check_java()


def test_java_17_passes(tmp_path, monkeypatch):
    _fake_java(tmp_path, 'openjdk version "17.0.15" 2025-04-15')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    check_java()


def test_delta_coordinates_follow_the_installed_versions():
    assert delta_package() == "io.delta:delta-spark_4.1_2.13:4.4.0"
