"""``logkit serve`` refuses what cannot work before it starts, and stays out of ``--help``."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from serving import EXAMPLE_REGISTRY, REPO_ROOT, Server, logkit_command


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*logkit_command(), "serve", *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT,
    )  # fmt: skip


def test_a_port_in_use_is_a_usage_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = serve("--port", str(port), "--store", f"{tmp_path}/store")
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "choose another --port" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--registry", "/nonexistent"], "registry folder '/nonexistent' not found"),
        (["--workers", "0"], "--workers must be 1 or more"),
        (["--fsync", "sometimes"], "unknown --fsync 'sometimes'"),
        (["--port", "70000"], "choose a port from 1 to 65535"),
        (["--client-timeout", "0"], "--client-timeout must be more than 0 seconds"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    done = serve("--registry", str(EXAMPLE_REGISTRY), *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


def test_the_cli_does_not_load_the_service_to_show_help() -> None:
    code = (
        "import sys, logkit.cli; "
        "assert not [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'uvicorn', "
        "'starlette', 'prometheus_client')], 'serve modules imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    done = subprocess.run([*logkit_command(), "serve", "--help"], capture_output=True, text=True)
    assert "--workers" in done.stdout
    assert "--host" in done.stdout


def test_it_listens_on_loopback_by_default(server: Server) -> None:
    assert f"Uvicorn running on http://127.0.0.1:{server.port}" in server.output()
