"""A scripted OpenAI/Gemini-compatible upstream that injects faults.

The first path segment picks the behaviour, so each gateway deployment points its base_url
at its own script (e.g. http://127.0.0.1:PORT/timeout/v1):

  ok         a fixed completion (JSON or SSE)
  timeout    accept, then never answer
  429        429 with Retry-After: 1 (then ok on the next call if the path is 429once)
  429once    429 with Retry-After: 1 the first time per run, then ok
  500        500 always
  reset      close the connection without a response
  truncated  SSE that stops before any content and without [DONE]
  midstream  SSE that sends some content, then stops without [DONE]
  gemini     the Gemini generateContent shape (records the request body)
  echo       answers "You said: " + the last user message (streamed 3 characters per chunk)

Every request is recorded; GET /_log returns them, POST /_reset clears them.
"""

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = []
LOCK = threading.Lock()
SEEN = {}


def chunk(content=None, role=None, finish=None):
    delta = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    return {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": "fake",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


COMPLETION = {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": "fake",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "fake upstream answer"},
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _json(self, status, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _sse_start(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()

    def _sse(self, obj):
        data = obj if isinstance(obj, str) else json.dumps(obj)
        self.wfile.write(f"data: {data}\n\n".encode())
        self.wfile.flush()

    def _stream_text(self, pieces):
        """A complete OpenAI stream: role, the pieces, finish, usage, [DONE]."""
        self._sse_start()
        self._sse(chunk(role="assistant", content=""))
        for piece in pieces:
            self._sse(chunk(content=piece))
        self._sse(chunk(finish="stop"))
        self._sse({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1, "model": "fake",
                   "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}})
        self._sse("[DONE]")
        self.close_connection = True

    def do_GET(self):
        if self.path == "/_log":
            with LOCK:
                return self._json(200, LOG)
        self._json(404, {"error": {"message": "no such path"}})

    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        if self.path == "/_reset":
            with LOCK:
                LOG.clear()
                SEEN.clear()
            return self._json(200, {"ok": True})
        mode = self.path.strip("/").split("/")[0]
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        with LOCK:
            LOG.append({"mode": mode, "path": self.path, "body": body, "t": time.time(),
                        "raw": raw.decode("utf-8", errors="replace"),
                        "headers": {k.lower(): v for k, v in self.headers.items()}})
            count = SEEN.get(mode, 0)
            SEEN[mode] = count + 1
        stream = bool(body and body.get("stream"))

        if mode == "timeout":
            time.sleep(30)
            return
        if mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
            return
        if mode == "500":
            return self._json(500, {"error": {"message": "upstream exploded", "type": "server_error"}})
        if mode == "429" or (mode == "429once" and count == 0):
            return self._json(429, {"error": {"message": "slow down", "type": "rate_limit_error"}},
                              {"retry-after": "1"})
        if mode == "nologprobs" and body and ("logprobs" in body or "top_logprobs" in body):
            # Some OpenAI-compatible servers reject parameters they do not implement.
            return self._json(400, {"error": {"message": "logprobs is not supported", "type": "invalid_request_error"}})
        if mode == "truncated":
            self._sse_start()
            self._sse(chunk(role="assistant", content=""))
            self.wfile.write(b'data: {"id": "chatcmpl-fake", "choi')
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "slowloris":
            # Headers at once, then one byte of the first event every 0.4 s, forever.
            self._sse_start()
            try:
                for b in b'data: {"id": "chatcmpl-fake", "object": "chat.completion.chunk"' * 100:
                    self.wfile.write(bytes([b]))
                    self.wfile.flush()
                    time.sleep(0.4)
            except OSError:
                pass
            self.close_connection = True
            return
        if mode == "midreset":
            # Content, then a TCP reset mid-stream.
            self._sse_start()
            self._sse(chunk(role="assistant", content=""))
            self._sse(chunk(content="partial "))
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.close()
            return
        if mode == "garbage":
            # An event stream whose events are not JSON (before any content).
            self._sse_start()
            self.wfile.write(b"data: <html>502 Bad Gateway</html>\n\n\x00\xff\xfe garbage\n\n")
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "hugeline":
            # One 10 MB SSE line that never ends in a blank line.
            self._sse_start()
            try:
                self.wfile.write(b"data: " + b"x" * (10 << 20) + b"\n\n")
                self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True
            return
        if mode == "midstream":
            self._sse_start()
            self._sse(chunk(role="assistant", content=""))
            self._sse(chunk(content="partial "))
            self._sse(chunk(content="answer"))
            self.close_connection = True
            return
        if mode == "gemini":
            resp = {"candidates": [{"content": {"role": "model", "parts": [{"text": "gemini says hi"}]},
                                    "finishReason": "STOP"}],
                    "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3, "totalTokenCount": 7},
                    "modelVersion": "gemini-fake"}
            if "streamGenerateContent" in self.path:
                self._sse_start()
                self._sse({"candidates": [{"content": {"role": "model", "parts": [{"text": "gemini "}]}}]})
                self._sse(resp | {"candidates": [{"content": {"role": "model", "parts": [{"text": "says hi"}]},
                                                  "finishReason": "STOP"}]})
                self.close_connection = True
                return
            return self._json(200, resp)
        if mode == "echo":
            user = [m for m in (body or {}).get("messages", []) if m.get("role") == "user"]
            text = "You said: " + (user[-1].get("content") if user else "")
            if stream:
                return self._stream_text([text[i:i + 3] for i in range(0, len(text), 3)])
            return self._json(200, COMPLETION | {"choices": [{"index": 0, "finish_reason": "stop",
                                                               "message": {"role": "assistant", "content": text}}]})
        # ok (and 429once after the first call)
        if stream:
            return self._stream_text(["fake ", "upstream ", "answer"])
        self._json(200, COMPLETION)


def main():
    port = int(sys.argv[1])
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
