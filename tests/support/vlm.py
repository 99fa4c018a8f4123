"""A small OpenAI-compatible chat-completions server (what vLLM, Ollama and hosted
services answer at ``/v1/chat/completions``), for the remote analyzer's tests."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    authorization: str | None
    body: bytes


@dataclass
class FakeServer:
    """An OpenAI-compatible endpoint that answers what the test sets, and keeps requests."""

    url: str = ""
    status: int = 200
    answer: bytes = b"{}"
    hang: bool = False
    requests: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def reply(self, content: str | None, finish: str = "stop", refusal: str | None = None) -> None:
        message: dict[str, object] = {"role": "assistant", "content": content}
        if refusal is not None:
            message["refusal"] = refusal
        choice = {"index": 0, "message": message, "finish_reason": finish}
        self.answer = json.dumps({"id": "x", "object": "chat.completion", "choices": [choice]})
        self.answer = self.answer.encode()

    @property
    def body(self) -> dict[str, object]:
        [request] = self.requests
        decoded: dict[str, object] = json.loads(request.body)
        return decoded


@contextlib.contextmanager
def serving() -> Iterator[FakeServer]:
    """A fake chat-completions server on a free port, for the ``with`` block."""
    fake = FakeServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            fake.requests.append(Received(self.path, self.headers.get("Authorization"), body))
            if fake.hang:
                fake.release.wait(10)
                return
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(fake.answer)))
            self.end_headers()
            self.wfile.write(fake.answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{httpd.server_port}"
    try:
        yield fake
    finally:
        fake.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
