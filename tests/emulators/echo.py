"""A misbehaving server on 127.0.0.1 that echoes the credential it is sent: a debug endpoint, a
proxy's error page or a server quoting the request in its error. Every request is answered with
``status`` and a body that holds the request's credential (the ``Authorization`` value without its
scheme, else ``X-API-Key``) at character ``offset`` of the server's own words, ``form``-encoded:

* shapes (``shape``): ``"text"`` (a plain-text page), ``"json"`` (``{"message": words}``, the
  words an error parser reads), ``"object"`` (``{"echo": words}``: a JSON object without the
  field a client looks for), ``"list"`` (``{"data": [words]}``: the field, holding a string where
  a client expects objects), ``"string"`` (the words as one JSON string);
* forms (``form``): ``"raw"``, ``"url"`` (percent-encoded, as in an echoed query string),
  ``"json"`` (JSON-escaped with ``\\/``, as an echoed request body inside a string is).

Used to check that a credential never reaches a message, whole or in part, wherever a client
cuts the server's words.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

FILLER = "The upstream refused the forwarded request; this debug page lists what it got. " * 20
SHAPES = ("text", "json", "object", "list", "string")
FORMS = ("raw", "url", "json")


def encoded(credential: str, form: str) -> str:
    """``credential`` as the server writes it in the ``form`` of :data:`FORMS`."""
    if form == "url":
        return quote(credential, safe="")
    if form == "json":
        return json.dumps(credential)[1:-1].replace("/", "\\/")
    return credential


class EchoServer:
    """``with EchoServer() as echo:`` serves on ``echo.url``; set ``status``, ``shape``, ``form``
    and ``offset`` before each request. ``seen`` holds the credentials echoed."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.status, self.shape, self.form, self.offset = 400, "text", "raw", 200
        self.seen: list[str] = []
        self._httpd = ThreadingHTTPServer((host, 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://{host}:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="echo-server", daemon=True)

    def __enter__(self) -> "EchoServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def body(self, credential: str) -> tuple[bytes, str]:
        """The answer's body and content type for a request that sent ``credential``."""
        words = FILLER[:self.offset] + encoded(credential, self.form) + " (end of the request)"
        if self.shape == "text":
            return words.encode(), "text/html"
        value: Any = {"json": {"message": words}, "object": {"echo": words}, "list": {"data": [words]}}.get(
            self.shape, words)
        return json.dumps(value).encode(), "application/json"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                auth = self.headers.get("Authorization") or ""
                credential = auth.split(" ", 1)[-1] if auth else self.headers.get("X-API-Key") or ""
                server.seen.append(credential)
                data, kind = server.body(credential)
                self.send_response(server.status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        return Handler
