#!/usr/bin/env python3
"""fault_proxy.py -- an HTTP proxy in front of an S3 server that injects faults.

Used by the reliability tests: the uploader talks to this proxy, the proxy
forwards to a real S3 server (s3rver) on 127.0.0.1, and for each request it
picks at most one fault, each with its own probability:

  http500        500 InternalError, not forwarded
  slowdown503    503 SlowDown with Retry-After, not forwarded
  reset_before   TCP reset before any response, not forwarded
  reset_mid      forwarded (the object IS stored), then a reset in the middle
                 of the response
  stall          a stall of --stall-seconds, then forwarded normally (the
                 client may time out and close first)
  truncated_xml  500 whose XML error document is cut: either the connection
                 closes before Content-Length bytes arrived, or the length
                 matches but the XML stops mid-element; not forwarded
  bad_etag       forwarded (stored), answered 200 with a wrong ETag

Only requests whose method is in --methods (default PUT) get faults; others
are forwarded untouched, so a bucket check is not slowed down. Counts of
requests and of each injected fault are written as JSON to --stats every
second and at exit (SIGTERM or SIGINT), and printed on stderr at exit.

  fault_proxy.py --upstream http://127.0.0.1:PORT --port-file F --stats F
                 [--faults http500=0.05,slowdown503=0.05,...] [--seed N]

Policies, applied before any fault:
  --allow-only METHODS   every request whose method is not listed is refused
                         as S3 refuses an action the IAM policy does not
                         grant: 403 with the AccessDenied XML document (no
                         body for HEAD), not forwarded; counted as "denied"
  --bucket-region R      the bucket lives in region R: a request signed for
                         another region (the Credential scope of its
                         Authorization header) gets S3's answer to that,
                         301 PermanentRedirect with the x-amz-bucket-region
                         header and the XML document naming the endpoint
                         (no body for HEAD), not forwarded; counted as
                         "redirected". --redirect-xml-only leaves out the
                         header, so that only the body names the region.

--record FILE appends one JSON line per request: {"method", "path",
"headers"} (names in lowercase), so a test can check what went on the wire.

--tls-cert CERT --tls-key KEY serves HTTPS instead of HTTP (the upstream
stays plain HTTP): a TLS front for tests of certificate checking.

Standard library only; listens on 127.0.0.1 only.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import socket
import ssl
import struct
import sys
import urllib.parse

KINDS = ("http500", "slowdown503", "reset_before", "reset_mid", "stall",
         "truncated_xml", "bad_etag")

ACCESS_DENIED_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                     '<Message>Access Denied</Message><RequestId>DENY{n}</RequestId>'
                     '<HostId>fault-proxy</HostId></Error>')
REDIRECT_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PermanentRedirect</Code>'
                '<Message>The bucket you are attempting to access must be addressed using the '
                'specified endpoint. Please send all future requests to this endpoint.</Message>'
                '<Endpoint>{bucket}.s3.{region}.amazonaws.com</Endpoint><Bucket>{bucket}</Bucket>'
                '<RequestId>MOVED{n}</RequestId><HostId>fault-proxy</HostId></Error>')
ERROR_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
             '<Message>{msg}</Message><RequestId>FAULT{n}</RequestId>'
             '<HostId>fault-proxy</HostId></Error>')


class Upstream:
    """One keep-alive connection to the S3 server, per client connection."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.r = self.w = None

    async def close(self):
        if self.w is not None:
            self.w.close()
            try:
                await self.w.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.r = self.w = None

    async def request(self, method, head, body):
        """Sends one request, returns (status, header bytes, body bytes).
        Retries once on a fresh connection if the kept-alive one was
        closed by the server."""
        for attempt in (0, 1):
            if self.w is None:
                self.r, self.w = await asyncio.open_connection(self.host, self.port)
            try:
                self.w.write(head + body)
                await self.w.drain()
                return await read_response(self.r, method, self)
            except (ConnectionError, asyncio.IncompleteReadError, OSError):
                await self.close()
                if attempt == 1:
                    raise
        raise ConnectionError("unreachable")


def parse_headers(raw):
    lines = raw.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    return lines[0], hdrs


async def read_chunked(r):
    out = bytearray()
    while True:
        line = await r.readuntil(b"\r\n")
        out += line
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            # trailers, then the empty line
            while True:
                t = await r.readuntil(b"\r\n")
                out += t
                if t == b"\r\n":
                    return bytes(out)
        out += await r.readexactly(size + 2)


async def read_response(r, method, up):
    head = await r.readuntil(b"\r\n\r\n")
    first, hdrs = parse_headers(head[:-4])
    status = int(first.split()[1])
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "content-length" in hdrs:
        body = await r.readexactly(int(hdrs["content-length"]))
    elif "chunked" in hdrs.get("transfer-encoding", "").lower():
        body = await read_chunked(r)
    else:
        body = await r.read()
        await up.close()
    if hdrs.get("connection", "").lower() == "close":
        await up.close()
    return status, head, body


class Proxy:
    def __init__(self, args):
        u = urllib.parse.urlsplit(args.upstream)
        self.host, self.port = u.hostname, u.port or 80
        self.args = args
        self.rng = random.Random(args.seed)
        self.probs = {k: 0.0 for k in KINDS}
        for item in filter(None, args.faults.split(",")):
            k, v = item.split("=")
            if k not in self.probs:
                raise SystemExit(f"fault_proxy: unknown fault {k!r} (one of {', '.join(KINDS)})")
            self.probs[k] = float(v)
        if sum(self.probs.values()) > 1.0:
            raise SystemExit("fault_proxy: the probabilities add up to more than 1")
        self.methods = set(args.methods.split(","))
        self.allow_only = set(args.allow_only.split(",")) if args.allow_only else None
        self.stats = {"requests": 0, "faultable": 0, "forwarded": 0,
                      "forwarded_faultable": 0,
                      "upstream_errors": 0, "client_gone": 0,
                      "denied": 0, "redirected": 0,
                      "faults": {k: 0 for k in KINDS}, "faults_total": 0}
        self.n = 0

    def pick(self):
        x = self.rng.random()
        for k in KINDS:
            if x < self.probs[k]:
                return k
            x -= self.probs[k]
        return None

    def count(self, kind):
        self.stats["faults"][kind] += 1
        self.stats["faults_total"] += 1

    def write_stats(self):
        if not self.args.stats:
            return
        tmp = self.args.stats + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.stats, f, sort_keys=True)
            f.write("\n")
        os.replace(tmp, self.args.stats)

    @staticmethod
    def reset(w):
        """Closes with an RST instead of a FIN (SO_LINGER 0)."""
        sock = w.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        w.transport.abort()

    def error_response(self, status, reason, code, msg, extra=""):
        self.n += 1
        body = ERROR_XML.format(code=code, msg=msg, n=self.n).encode()
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
                f"x-amz-request-id: FAULT{self.n}\r\n{extra}"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        return head, body

    def policy_response(self, method, path, hdrs):
        """The answer of an IAM policy or a bucket in another region, or
        None when the request may go on."""
        if self.allow_only is not None and method not in self.allow_only:
            self.stats["denied"] += 1
            self.n += 1
            body = b"" if method == "HEAD" else ACCESS_DENIED_XML.format(n=self.n).encode()
            head = (f"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\n"
                    f"x-amz-request-id: DENY{self.n}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            return head, body
        want = self.args.bucket_region
        if want:
            auth = hdrs.get("authorization", "")
            scope = auth.split("Credential=", 1)[1].split(",")[0].split("/") if "Credential=" in auth else []
            if len(scope) < 3 or scope[2] != want:
                self.stats["redirected"] += 1
                self.n += 1
                host = hdrs.get("host", "")
                parts = path.lstrip("/").split("/")
                bucket = parts[0] if parts and ":" in host else host.split(".")[0]
                body = b"" if method == "HEAD" else REDIRECT_XML.format(
                    bucket=bucket, region=want, n=self.n).encode()
                extra = "" if self.args.redirect_xml_only else f"x-amz-bucket-region: {want}\r\n"
                head = (f"HTTP/1.1 301 Moved Permanently\r\nContent-Type: application/xml\r\n"
                        f"x-amz-request-id: MOVED{self.n}\r\n{extra}"
                        f"Content-Length: {len(body)}\r\n\r\n").encode()
                return head, body
        return None

    async def client(self, r, w):
        up = Upstream(self.host, self.port)
        try:
            while True:
                try:
                    head = await r.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                        ConnectionError, OSError):
                    return
                first, hdrs = parse_headers(head[:-4])
                method = first.split()[0]
                n = int(hdrs.get("content-length", "0") or 0)
                body = await r.readexactly(n) if n else b""
                self.stats["requests"] += 1
                if self.args.record:
                    with open(self.args.record, "a") as f:
                        f.write(json.dumps({"method": method, "path": first.split()[1],
                                            "headers": hdrs}) + "\n")
                answer = self.policy_response(method, first.split()[1], hdrs)
                if answer is not None:
                    w.write(answer[0] + answer[1])
                    await w.drain()
                    continue
                kind = None
                if method in self.methods:
                    self.stats["faultable"] += 1
                    kind = self.pick()
                if kind is not None:
                    self.count(kind)
                if not await self.serve(kind, method, head, body, up, w):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self.stats["client_gone"] += 1
        finally:
            await up.close()
            try:
                w.close()
            except OSError:
                pass

    async def serve(self, kind, method, head, body, up, w):
        """Answers one request. Returns False when the client connection
        must be closed."""
        if kind == "http500":
            h, b = self.error_response(500, "Internal Server Error", "InternalError",
                                       "We encountered an internal error. Please try again.")
            w.write(h + b)
            await w.drain()
            return True
        if kind == "slowdown503":
            h, b = self.error_response(503, "Slow Down", "SlowDown",
                                       "Please reduce your request rate.",
                                       f"Retry-After: {self.args.retry_after}\r\n")
            w.write(h + b)
            await w.drain()
            return True
        if kind == "reset_before":
            self.reset(w)
            return False
        if kind == "truncated_xml":
            h, b = self.error_response(500, "Internal Server Error", "InternalError",
                                       "We encountered an internal error. Please try again.")
            cut = b[: len(b) // 2]
            if self.rng.random() < 0.5:
                # The length promised, the connection closed early.
                w.write(h + cut)
                await w.drain()
                return False
            h = h.replace(f"Content-Length: {len(b)}".encode(),
                          f"Content-Length: {len(cut)}".encode())
            w.write(h + cut)
            await w.drain()
            return True
        if kind == "stall":
            await asyncio.sleep(self.args.stall_seconds)
            if w.is_closing() or r_closed(w):
                self.stats["client_gone"] += 1
                return False
        try:
            status, rh, rb = await up.request(method, head, body)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            self.stats["upstream_errors"] += 1
            h, b = self.error_response(502, "Bad Gateway", "BadGateway", "upstream failed")
            w.write(h + b)
            await w.drain()
            return True
        self.stats["forwarded"] += 1
        if method in self.methods:
            self.stats["forwarded_faultable"] += 1
        if kind == "reset_mid":
            whole = rh + rb
            w.write(whole[: max(1, len(whole) // 2)])
            await w.drain()
            self.reset(w)
            return False
        if kind == "bad_etag" and 200 <= status < 300:
            lines = [ln for ln in rh[:-4].split(b"\r\n") if not ln.lower().startswith(b"etag:")]
            lines.append(b'ETag: "00000000000000000000000000000bad"')
            rh = b"\r\n".join(lines) + b"\r\n\r\n"
        w.write(rh + rb)
        await w.drain()
        return True


def r_closed(w):
    t = w.transport
    return t is None or t.is_closing()


async def main():
    ap = argparse.ArgumentParser(description="S3 fault-injecting proxy")
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--stats")
    ap.add_argument("--faults", default="")
    ap.add_argument("--methods", default="PUT")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--stall-seconds", type=float, default=2.0)
    ap.add_argument("--retry-after", type=int, default=1)
    ap.add_argument("--allow-only", default="")
    ap.add_argument("--record")
    ap.add_argument("--bucket-region", default="")
    ap.add_argument("--redirect-xml-only", action="store_true")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args()
    p = Proxy(args)
    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    srv = await asyncio.start_server(p.client, "127.0.0.1", args.port, limit=1 << 20,
                                     backlog=512, ssl=tls)
    port = srv.sockets[0].getsockname()[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    print(f"fault_proxy: listening on 127.0.0.1:{port}, upstream {args.upstream}, "
          f"faults {p.probs}", file=sys.stderr, flush=True)
    while not stop.is_set():
        p.write_stats()
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass
    srv.close()
    p.write_stats()
    print("fault_proxy: " + json.dumps(p.stats, sort_keys=True), file=sys.stderr, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
