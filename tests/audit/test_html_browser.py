"""The HTML report opens in a real browser (headless Chromium), renders its four plots and
logs no console error.

Chromium comes from Debian's ``chromium`` package, which ``make test`` installs when it is
missing. Without it this test fails and says so; set ``RULEALIGN_NO_BROWSER=1`` to skip it
deliberately on a machine that cannot have a browser.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rulealign.audit.run import AuditSettings
from tests.audit.test_audit import run_audit

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def chromium() -> str:
    if os.environ.get("RULEALIGN_NO_BROWSER") == "1":
        pytest.skip("RULEALIGN_NO_BROWSER=1: browser check skipped on purpose")
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "headless Chromium is needed (Debian: apt-get install chromium; make test " \
                 "installs it)"
    return path


def open_in_browser(page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """The DOM after scripts ran, and the console messages the page logged."""
    proc = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         page.resolve().as_uri()], capture_output=True, text=True, timeout=120, check=False)
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


def test_the_browser_check_catches_a_broken_page(tmp_path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<html><head><script>console.error('boom'); notAFunction();</script>"
                    "</head><body>x</body></html>")
    dom, console = open_in_browser(page, tmp_path)
    assert "<body>x" in dom
    assert any("boom" in c for c in console) and any("notAFunction" in c for c in console)


def test_report_renders_with_plots_and_no_console_errors(acme, synth_dir, tmp_path) -> None:
    policy, conflicts = acme
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    out = tmp_path / "audit"
    run_audit(policy, synth_dir / "data", out, adapter=str(adapter),
              settings=AuditSettings(likelihood=False, fail_under=0.8), conflicts=conflicts)
    dom, console = open_in_browser(out / "report.html", tmp_path)
    assert console == [], console
    root = re.search(r"<html[^>]*>", dom)
    assert root is not None
    assert 'data-rendered="ok"' in root.group(0) and 'data-plots="4"' in root.group(0)
    assert dom.count("<svg") == 4 and "Failing rules" in dom
