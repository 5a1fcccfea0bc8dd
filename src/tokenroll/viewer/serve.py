"""Serving the page on this machine only (`tokenroll view --serve`)."""

from __future__ import annotations

import http.server
from collections.abc import Callable
from pathlib import Path

LOCALHOST = "127.0.0.1"


def make_server(page: Path, port: int = 0) -> http.server.ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1 that answers `/` (and the page's own name) with the page."""
    body = page.read_bytes()
    names = {"/", f"/{page.name}"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] not in names:
                self.send_error(404, "only the viewer page is served here")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request would bury the URL the user needs

    return http.server.ThreadingHTTPServer((LOCALHOST, port), Handler)


def serve(page: Path, port: int = 0, announce: Callable[[str], None] = print) -> None:
    """Serve `page` until interrupted; `announce` gets the URL once the socket is listening."""
    server = make_server(page, port)
    with server:
        announce(f"http://{LOCALHOST}:{server.server_address[1]}/")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
