"""GitHub Actions workflow commands, escaped so event text can never inject a command."""

from __future__ import annotations

from logkit.reporters.base import SURROGATE_ESCAPES, Reporter
from logkit.results import Finding

_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(text: str) -> str:
    return (
        text.replace("%", "%25")
        .replace("\r", "%0D")
        .replace("\n", "%0A")
        .translate(SURROGATE_ESCAPES)
    )


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


class GithubReporter(Reporter):
    def finding(self, finding: Finding) -> None:
        props = [f"file={escape_property(finding.file)}"]
        if finding.line:
            props.append(f"line={finding.line}")
        title = f"{self.tool} {finding.rule}" + (f" ({finding.subject})" if finding.subject else "")
        props.append(f"title={escape_property(title)}")
        pointer = finding.pointer or "(root)"
        message = escape_data(f"{pointer}: {finding.message}")
        self.out.write(f"::{_LEVEL.get(finding.severity, 'error')} {','.join(props)}::{message}\n")
