"""Debian's Chromium driven by Playwright for the browser tests (never `playwright install`), and
the checks every page gets at 390 px: a screenshot in test-artifacts/, no sideways scrolling, tap
targets of at least 44 px, no serious or critical axe-core violation, nothing refused by the
Content-Security-Policy. Skips, with the reason, when Playwright or axe-core is missing."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = Path(os.environ.get("AXE_CORE_JS", ROOT / ".cache/npm/node_modules/axe-core/axe.min.js"))
WIDTH = 390

# Everything a finger or a keyboard reaches, with the box it can be hit in (a checkbox: its label).
_TAP_TARGETS = """() => {
  const small = [];
  for (const el of document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary')) {
    if (el.classList.contains('skip')) continue;  // off screen until focused
    let box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;  // inside a closed <details>
    if (el.type === 'checkbox') box = (el.closest('label') || el).getBoundingClientRect();
    const name = el.id || el.name || el.textContent.trim().slice(0, 30);
    if (box.width < 44 || box.height < 44) small.push(`${el.tagName} ${name}: ${box.width}x${box.height}`);
  }
  return small;
}"""
_AXE_RUN = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
  .filter(v => v.impact === 'serious' || v.impact === 'critical')
  .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)"""


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium (a Playwright Browser); skips the test when it cannot run."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    if not AXE.is_file():
        pytest.skip(f"axe-core is not installed at {AXE}: make setup-test installs it")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield launched
        finally:
            launched.close()


def phone(browser: Any) -> Any:
    """A new page 390 px wide that accepts downloads and notes what the CSP refused."""
    context = browser.new_context(viewport={"width": WIDTH, "height": 844}, accept_downloads=True)
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.csp_refusals = refused
    return page


def check(page: Any, name: str) -> None:
    """An organisation's page at 390 px: a screenshot (org-<name>.png), no sideways scrolling, tap
    targets, axe-core."""
    page.wait_for_load_state("load")  # with its stylesheet: measured before it, a page is wider
    page.screenshot(path=str(ARTIFACTS / f"org-{name}.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH, f"{name} scrolls sideways"
    small = page.evaluate(_TAP_TARGETS)
    assert small == [], f"{name}: tap targets under 44 px: {small}"
    page.evaluate(AXE.read_text(encoding="utf-8"))
    assert page.evaluate(_AXE_RUN) == [], f"{name}: axe-core"
    assert page.csp_refusals == [], f"{name}: the Content-Security-Policy refused something"
