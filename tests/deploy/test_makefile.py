"""The task runner explains itself: ``make help`` lists every target with what it does."""

from __future__ import annotations

import re
import subprocess

from .deploy_helpers import ROOT

TARGET = re.compile(r"^([a-z][a-z-]*):(?!=)", re.MULTILINE)


def test_make_help_lists_every_target_with_a_description() -> None:
    defined = set(TARGET.findall((ROOT / "Makefile").read_text()))
    proc = subprocess.run(
        ["make", "-s", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    listed = {}
    for line in proc.stdout.splitlines()[1:]:
        name, _, text = line.strip().partition(" ")
        listed[name] = text.strip()
    assert set(listed) == defined
    assert all(listed.values()), "every target needs a '## description'"
    assert {"demo", "test", "test-containers", "dist", "audit", "audit-strict"} <= set(listed)


def test_plain_make_prints_the_help() -> None:
    proc = subprocess.run(
        ["make", "-s", "--no-print-directory"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert proc.stdout.splitlines()[0].startswith("Coinstream: make <target>")
