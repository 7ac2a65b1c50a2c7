"""A green pytest run must have run its tests, not skipped them: `check_junit.py REPORT`.

.ci/run calls this on the suite's JUnit XML report. It fails (exit 1, one
line naming what is missing) when no test ran, when no Docker integration
test ran, when no PostgreSQL test ran, or when any test was skipped for
want of PostgreSQL or of a tool .ci/run installs (promtool): in CI a missing
server or tool is a failure, never a skip. (The Python 3.13 run in the trixie
root has no promtool and no report checked: there it may skip.)
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET

# Tools .ci/run installs; a test skipped with "<tool> not found" is a failure here.
REQUIRED_TOOLS = ("promtool",)
# test_x[postgres], test_x[postgres-int], test_x[int-postgres]: the engine parameter.
_POSTGRES_PARAMETER = re.compile(r"\[(?:[^\]]*-)?postgres(?:-[^\]]*)?\]$")


def is_postgres(case: ET.Element) -> bool:
    """A test of the PostgreSQL engine: its parameter, or a module about it."""
    name, module = case.get("name", ""), case.get("classname", "")
    return bool(_POSTGRES_PARAMETER.search(name)) or "postgres" in module


def skip_of(case: ET.Element) -> ET.Element | None:
    """The case's <skipped> element, unless it is an expected failure (which ran)."""
    skip = case.find("skipped")
    if skip is None or skip.get("type") == "pytest.xfail":
        return None
    return skip


def problems(report: str) -> tuple[str, list[str]]:
    """A summary line and what is wrong with the run in report (empty: fine)."""
    root = ET.parse(report).getroot()  # noqa: S314 - our own pytest's report
    cases = list(root.iter("testcase"))
    ran = [c for c in cases if skip_of(c) is None]
    integration = [c for c in ran if ".integration." in c.get("classname", "")]
    postgres = [c for c in ran if is_postgres(c)]
    skipped_pg = [
        f"{c.get('classname')}::{c.get('name')}"
        for c in cases
        if (skip := skip_of(c)) is not None
        and "postgresql" in (skip.get("message", "") + (skip.text or "")).lower()
    ]
    skipped_tool = [
        f"{c.get('classname')}::{c.get('name')}"
        for c in cases
        if (skip := skip_of(c)) is not None
        and any(
            f"{tool} not found" in skip.get("message", "") + (skip.text or "")
            for tool in REQUIRED_TOOLS
        )
    ]
    summary = (
        f"CI: {len(cases)} tests, {len(ran)} ran, {len(integration)} integration "
        f"tests ran, {len(postgres)} PostgreSQL tests ran"
    )
    wrong = []
    if not ran:
        wrong.append("CI: no test ran")
    if not integration:
        wrong.append("CI: no integration test ran (Docker tests skipped or missing)")
    if not postgres:
        wrong.append("CI: no PostgreSQL test ran (PostgreSQL tests skipped or missing)")
    if skipped_pg:
        wrong.append(
            f"CI: {len(skipped_pg)} test(s) skipped for want of PostgreSQL, "
            f"e.g. {skipped_pg[0]}"
        )
    if skipped_tool:
        wrong.append(
            f"CI: {len(skipped_tool)} test(s) skipped for want of a tool .ci/run "
            f"installs, e.g. {skipped_tool[0]}"
        )
    return summary, wrong


def main(argv: list[str]) -> int:
    """Print the summary; exit 1 with the first problem when there is one."""
    summary, wrong = problems(argv[1])
    print(summary)
    for line in wrong:
        print(line, file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
