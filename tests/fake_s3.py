#!/usr/bin/env python3
# fake_s3.py -- a tiny HTTP server on 127.0.0.1 that plays a scripted S3.
#
#   fake_s3.py MODE PORTFILE [LIFETIME_SECONDS]
#
# MODE ok:       every request gets 200 (PUT bodies are read and discarded).
# MODE slowdown: HEAD gets 200 (the bucket exists); every other request gets
#                503 SlowDown with an S3 XML error body.
# MODE nobucket: every request gets 404 NoSuchBucket (HEAD without a body).
# MODE throttle: a server with a concurrency cap, as S3 is per prefix: each
#                PUT takes 20 ms, and one that arrives while FAKE_MAX_INFLIGHT
#                (default 8) others are being served gets 503 SlowDown at
#                once; once the file PORTFILE.open exists, there is no cap.
#                SIGTERM prints "peak_inflight N" (the most served at once).
# It listens on a free port, writes the port number to PORTFILE once it
# accepts connections, prints one line per request on stdout
# ("METHOD PATH STATUS"), and exits by itself after LIFETIME_SECONDS
# (default 300). Stop it earlier by its PID (SIGTERM).
import http.server
import os
import signal
import sys
import threading
import time

SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            b'<Message>Please reduce your request rate.</Message>'
            b'<RequestId>fake</RequestId></Error>')
NOBUCKET = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchBucket</Code>'
            b'<Message>The specified bucket does not exist</Message>'
            b'<RequestId>fake</RequestId></Error>')


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "ok"
    portfile = ""
    cap = int(os.environ.get("FAKE_MAX_INFLIGHT", "8"))
    lock = threading.Lock()
    inflight = 0
    peak = 0

    def _throttled(self):
        """True if this PUT is over the cap; else it is served (20 ms)."""
        cls = Handler
        with cls.lock:
            if cls.inflight >= cls.cap and not os.path.exists(cls.portfile + ".open"):
                return True
            cls.inflight += 1
            cls.peak = max(cls.peak, cls.inflight)
        time.sleep(0.02)
        with cls.lock:
            cls.inflight -= 1
        return False

    def log_message(self, *args):
        pass

    def _drain(self):
        n = int(self.headers.get("Content-Length") or 0)
        while n > 0:
            chunk = self.rfile.read(min(n, 65536))
            if not chunk:
                break
            n -= len(chunk)

    def _answer(self, method):
        self._drain()
        if self.mode == "slowdown" and method != "HEAD":
            status, body = 503, SLOWDOWN
        elif self.mode == "throttle" and method == "PUT" and self._throttled():
            status, body = 503, SLOWDOWN
        elif self.mode == "nobucket":
            status, body = 404, NOBUCKET
        else:
            status, body = 200, b""
        self.send_response(status)
        if method == "HEAD":
            body = b""
        if body:
            self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", "fake")
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)
        print(f"{method} {self.path} {status}", flush=True)

    def do_HEAD(self):
        self._answer("HEAD")

    def do_PUT(self):
        self._answer("PUT")

    def do_GET(self):
        self._answer("GET")

    def do_POST(self):
        self._answer("POST")

    def do_DELETE(self):
        self._answer("DELETE")


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("ok", "slowdown", "nobucket", "throttle"):
        sys.stderr.write("usage: fake_s3.py ok|slowdown|nobucket|throttle PORTFILE [LIFETIME]\n")
        return 2
    Handler.mode = sys.argv[1]
    Handler.portfile = sys.argv[2]
    lifetime = float(sys.argv[3]) if len(sys.argv) > 3 else 300.0
    # A backlog for many clients connecting at once (the default 5 resets
    # connections beyond it).
    http.server.ThreadingHTTPServer.request_queue_size = 256
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    def on_term(*_):
        print(f"peak_inflight {Handler.peak}", flush=True)
        os._exit(0)
    signal.signal(signal.SIGTERM, on_term)
    threading.Timer(lifetime, lambda: os._exit(0)).start()
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{srv.server_address[1]}\n")
    os.rename(tmp, sys.argv[2])
    srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
