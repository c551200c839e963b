"""A real HTTP server on 127.0.0.1 serving canned answers, for fetcher tests (no mocks of the HTTP client)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class LoopbackServer:
    base_url: str
    routes: dict[str, Route]
    requests: list[str]


@contextmanager
def loopback_server(routes: dict[str, Route] | None = None) -> Iterator[LoopbackServer]:
    """Serve ``routes`` (path with query -> answer) on an ephemeral loopback port; unknown paths get 404."""
    table = dict(routes or {})
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            route = table.get(self.path, Route(404, b"not found"))
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield LoopbackServer(f"http://127.0.0.1:{server.server_port}", table, seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
