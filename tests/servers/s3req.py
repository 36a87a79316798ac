# s3req.py -- one SigV4-signed S3 request with botocore, for tests.
# Run it with Debian's /usr/bin/python3 (python3-botocore).
#
#   s3req.py METHOD URL [BODY-FILE] [--secret S] [--key K] [--region R]
#            [-H 'Name: value']... [--sign-body FILE | --payload-hash H]
#            [--no-sha256] [-o FILE] [-D FILE]
#
# Credentials default to AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
# AWS_REGION from the environment (source DIR/env first). The request is
# signed with x-amz-content-sha256 = sha256 of the body (of --sign-body FILE
# instead, or the literal --payload-hash, e.g. UNSIGNED-PAYLOAD, to send a
# body that does not match the signed hash; --no-sha256 signs the body's hash
# but sends no x-amz-content-sha256 header). Headers given
# with -H are signed too. Prints "STATUS CODE" on the first line (CODE: the S3
# error Code, or "-"), then the response body (or writes it to -o FILE);
# -D FILE writes the response headers there, one "name: value" a line,
# names in lowercase. Exit status 0 whatever the
# HTTP status; 2 on usage or connection errors.
import argparse
import hashlib
import os
import re
import sys
import urllib.request
import urllib.error

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


class Auth(S3SigV4Auth):
    """S3SigV4Auth with a chosen payload hash, or without the header."""

    def __init__(self, creds, region, payload_hash=None, no_header=False):
        super().__init__(creds, "s3", region)
        self.payload_hash = payload_hash
        self.no_header = no_header

    def payload(self, request):
        if self.payload_hash:
            return self.payload_hash
        return super().payload(request)

    def _modify_request_before_signing(self, request):
        super()._modify_request_before_signing(request)
        if self.no_header:
            del request.headers["X-Amz-Content-SHA256"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("method")
    ap.add_argument("url")
    ap.add_argument("body", nargs="?")
    ap.add_argument("--key", default=os.environ.get("AWS_ACCESS_KEY_ID"))
    ap.add_argument("--secret", default=os.environ.get("AWS_SECRET_ACCESS_KEY"))
    ap.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    ap.add_argument("-H", dest="headers", action="append", default=[])
    ap.add_argument("--sign-body", help="file whose sha256 is signed instead of the body's")
    ap.add_argument("--payload-hash", help="literal x-amz-content-sha256 to sign and send")
    ap.add_argument("--no-sha256", action="store_true", help="send no x-amz-content-sha256")
    ap.add_argument("-o", dest="output", help="write the response body to this file instead")
    ap.add_argument("-D", dest="dump_headers", help="write the response headers to this file")
    a = ap.parse_args()

    body = b""
    if a.body:
        with open(a.body, "rb") as f:
            body = f.read()
    payload_hash = a.payload_hash
    if a.sign_body:
        with open(a.sign_body, "rb") as f:
            payload_hash = hashlib.sha256(f.read()).hexdigest()
    headers = {}
    for h in a.headers:
        name, _, value = h.partition(":")
        headers[name.strip()] = value.strip()

    req = AWSRequest(method=a.method, url=a.url, data=body, headers=headers)
    Auth(Credentials(a.key, a.secret), a.region, payload_hash, a.no_sha256).add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=body if a.method in ("PUT", "POST") else None,
                               method=a.method, headers=dict(p.headers.items()))
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            status, out, rh = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as e:
        status, out, rh = e.code, e.read(), e.headers
    except OSError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    if a.dump_headers:
        with open(a.dump_headers, "w") as f:
            for name, value in rh.items():
                f.write("%s: %s\n" % (name.lower(), value))
    m = re.search(rb"<Code>([^<]*)</Code>", out)
    try:
        print(status, m.group(1).decode() if m else "-", flush=True)
        if a.output:
            with open(a.output, "wb") as f:
                f.write(out)
        else:
            sys.stdout.buffer.write(out)
            sys.stdout.flush()
    except BrokenPipeError:  # the reader wanted the first line only
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
