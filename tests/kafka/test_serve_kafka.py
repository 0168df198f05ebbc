"""``logkit serve --sink kafka://...`` against the Tansu broker and a real uvicorn server: the
ids of the 200 answers are the keys of the topic's messages, each once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kafkakit import Broker

sys.path.insert(0, str(Path(__file__).parents[1] / "service"))

from serving import REPO_ROOT, Server, logkit_command, post, write_seq_registry


def seq_registry(tmp_path: Path) -> Path:
    return write_seq_registry(tmp_path / "registry")


def test_posted_events_become_one_message_each(broker: Broker, tmp_path: Path) -> None:
    topic = broker.topic("serve", partitions=2, dead_letter=True)
    server = Server(tmp_path / "store", ["--sink", broker.url(topic), "--workers", "2"])
    server.registry = seq_registry(tmp_path)
    server.start()
    try:

        def one(n: int) -> str:
            status, body = post(server.port, "/log/seq", b'{"seq": %d}' % n)
            assert status == 200, body
            return str(json.loads(body)["id"])

        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(one, range(200)))
        status, body = post(server.port, "/log/seq", b'{"seq": "x"}')
        assert status == 422, body
        messages = broker.read(topic, 200)
        keys = Counter(m.key().decode() for m in messages)
        assert keys == Counter(ids)  # each answered event once, nothing else
        for message in messages:
            envelope = json.loads(message.value())
            assert envelope["id"] == message.key().decode()
            assert dict(message.headers())["contract"] == b"seq"
        dead = broker.read(f"{topic}.dead_letter", 1)
        assert json.loads(dead[0].value())["reason"] == "invalid"
    finally:
        assert server.stop() == 143, server.output()
    assert not list((tmp_path / "store").glob("_spool/**/*.jsonl*"))


def test_an_unknown_topic_is_exit_2_with_one_line(broker: Broker, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *logkit_command(),
            "serve",
            "--port",
            "0",
            "--registry",
            str(seq_registry(tmp_path)),
            "--store",
            str(tmp_path / "store"),
            "--sink",
            broker.url("no-such-topic"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOGKIT_")},
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "the broker has no topic 'no-such-topic'" in lines[0], lines[0]
