"""Hostile servers and URLs for the generation backends (issue 19): no secret reaches a
log, report or message; keys do not travel in the clear unannounced."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from rulealign.errors import RulealignWarning
from rulealign.llm.openai_backend import OpenAIBackend, is_local, redact_url

KEY = "sk-test-0123456789abcdef"


class _Echo(BaseHTTPRequestHandler):
    """A server that fails every request and echoes the headers it was sent."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps({"error": {"message": f"bad request; you sent {dict(self.headers)}"}})
        self.send_response(400)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


# -- defect 6: credentials never reach the log, the report or a message -------------------------


def test_defect06_credentials_redacted_from_log_and_report(tmp_path: Path, monkeypatch) -> None:
    from rulealign.llm import GenerationLog
    from rulealign.llm.base import Sampling

    server = HTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    url = f"http://user:hunter2pass@127.0.0.1:{server.server_port}/v1?api-key=qwertyuiop"
    log = GenerationLog(tmp_path / "generations.sqlite")
    try:
        backend = OpenAIBackend("m", url, log=log, max_retries=0)
        [gen] = backend.generate([[{"role": "user", "content": "hi"}]], None,
                                 Sampling(max_tokens=4))
        backend.close()
    finally:
        server.shutdown()
        server.server_close()
        log.close()
    assert gen.outcome == "error" and gen.code == "RA309"
    stored = (tmp_path / "generations.sqlite").read_bytes()
    shown = gen.message + backend.model_hash + json.dumps(backend.describe())
    for secret in (KEY, "hunter2pass", "qwertyuiop"):
        assert secret not in shown and secret.encode() not in stored, secret
    assert "Authorization': '[redacted]" in gen.message and "127.0.0.1" in backend.model_hash


# -- defect 25: the local-host test parses the host; a key over http draws a warning -----------


def test_defect25_http_key_warns_and_local_host_is_parsed(monkeypatch) -> None:
    assert is_local("http://localhost:8000/v1") and is_local("http://127.0.0.2/v1")
    assert is_local("http://[::1]:8000/v1")
    assert not is_local("http://localhost.evil.example/v1")
    assert not is_local("http://evil.example/v1?localhost")
    assert not is_local("http://127.0.0.1.evil.example/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    from rulealign.errors import ModelError

    with pytest.raises(ModelError):  # no key, and the host only looks local
        OpenAIBackend("m", "http://localhost.evil.example/v1")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with pytest.warns(RulealignWarning, match="RA313"):
        OpenAIBackend("m", "http://api.example.com/v1").close()
    OpenAIBackend("m", "https://api.example.com/v1").close()  # no warning: filterwarnings=error
    OpenAIBackend("m", "http://localhost:8000/v1").close()
    assert redact_url("http://u:p@h/v1?key=s&x=1") == "http://[redacted]@h/v1?key=[redacted]&x=[redacted]"


# -- defect 22: a checkpoint's identity is its contents -----------------------------------------


def test_defect22_checkpoint_identity_hashes_contents(tmp_path: Path) -> None:
    import os

    from rulealign.llm.checkpoint import resolve_model

    folders = []
    for name, weights in (("a", b"\x00" * 4096), ("b", b"\x01" * 4096)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(weights)
        for f in folder.iterdir():
            os.utime(f, (1_700_000_000, 1_700_000_000))
        folders.append(folder)
    # a marker claiming another model's identity is not believed
    (folders[1] / "rulealign-model.json").write_text(json.dumps({"hash": "default-model"}))
    cache = tmp_path / "cache"
    a, b = (resolve_model(f, cache=cache) for f in folders)
    assert a.hash != b.hash and b.hash != "default-model"
    assert resolve_model(folders[0], cache=cache).hash == a.hash  # stable, from the memo
    (folders[0] / "model.safetensors").write_bytes(b"\x02" * 4096)
    os.utime(folders[0] / "model.safetensors", (1_700_000_000, 1_700_000_000))
    assert resolve_model(folders[0], cache=cache).hash not in (a.hash, b.hash)
