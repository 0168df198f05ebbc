"""JUnit XML for CI test tabs: a failing test case per finding, a passing one per clean file."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import IO

from logkit.reporters.base import Outcome, Reporter
from logkit.results import Finding

# XML 1.0 cannot carry most control characters, even escaped; nor U+FFFE, U+FFFF or the
# surrogates (a file name that is not UTF-8 reaches us with surrogate escapes).
_INVALID_XML = {c: f"\\x{c:02x}" for c in range(32) if c not in (9, 10, 13)}
_INVALID_XML.update({c: f"\\u{c:04x}" for c in (*range(0xD800, 0xE000), 0xFFFE, 0xFFFF)})


def _clean(text: str) -> str:
    return text.translate(_INVALID_XML)


class JunitReporter(Reporter):
    def __init__(self, out: IO[str], err: IO[str], *, tool: str = "logkit") -> None:
        super().__init__(out, err, tool=tool)
        self.findings: list[Finding] = []

    def finding(self, finding: Finding) -> None:
        self.findings.append(finding)

    def finish(self, outcome: Outcome) -> None:
        errors = [f for f in self.findings if f.severity == "error"]
        suite = ET.Element(
            "testsuite",
            name=self.tool,
            tests=str(max(len(self.findings), 1)),
            failures=str(len(errors)),
            errors="0",
            skipped="0",
        )
        for finding in self.findings:
            where = f"{finding.file}:{finding.line}" if finding.line else finding.file
            name = f"{where} {finding.pointer or '(root)'}"
            case = ET.SubElement(
                suite,
                "testcase",
                classname=_clean(finding.subject or finding.file),
                name=_clean(name),
            )
            text = _clean(f"[{finding.rule}] {finding.message}")
            if finding.severity == "error":
                failure = ET.SubElement(case, "failure", type=_clean(finding.rule), message=text)
                failure.text = text
            else:
                out = ET.SubElement(case, "system-out")
                out.text = f"{finding.severity}: {text}"
        if not self.findings:
            ET.SubElement(suite, "testcase", classname=self.tool, name=_clean(outcome.line))
        ET.SubElement(suite, "system-out").text = _clean(outcome.line)
        ET.indent(suite)
        self.out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        self.out.write(ET.tostring(suite, encoding="unicode") + "\n")
        self.err.write(outcome.line + "\n")
