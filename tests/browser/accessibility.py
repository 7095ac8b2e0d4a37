"""axe-core in the page under test: no serious or critical accessibility violation passes.

axe-core comes from npm and ``make vendor`` copies it next to these tests
(``tests/browser/vendor/axe.min.js``); the app never serves it. It is evaluated
through the DevTools protocol rather than added as a ``<script>`` tag: the
portal's strict content security policy (``script-src 'self'``) refuses inline
scripts, and turning the policy off for the tests would hide the very
violations they should catch.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from playwright.sync_api import Page

AXE_PATH = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
FAILING_IMPACTS = ("serious", "critical")

_RUN_AXE = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    targets: v.nodes.map(n => n.target.join(" ")),
  }));
}"""


class AccessibilityError(AssertionError):
    """axe-core found serious or critical violations; the message lists each one."""


@cache
def _axe_source() -> str:
    return AXE_PATH.read_text(encoding="utf-8")


def axe_violations(page: Page) -> list[dict]:
    """Every violation axe-core finds in the page as it is now, of any impact."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    return page.evaluate(_RUN_AXE)


def assert_accessible(page: Page) -> None:
    """Fail on any serious or critical violation, naming rule, impact, elements and help."""
    failing = [v for v in axe_violations(page) if v["impact"] in FAILING_IMPACTS]
    if failing:
        lines = [f"axe-core: {len(failing)} serious or critical violation(s) on {page.url}"]
        for v in failing:
            lines.append(f"- {v['id']} ({v['impact']}): {v['help']}")
            lines.extend(f"    at {target}" for target in v["targets"][:10])
            lines.append(f"    see {v['helpUrl']}")
        raise AccessibilityError("\n".join(lines))
