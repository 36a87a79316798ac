#!/usr/bin/python3
"""aws_creds.py -- stand-ins for the AWS credential services on 127.0.0.1.

STS, the SSO portal, the ECS container credentials endpoint and EC2 IMDSv2
cannot run here, so this speaks their wire formats (from the AWS API
references) well enough for a client to be tested against it:

  sts   POST /  Action=AssumeRoleWithWebIdentity (unsigned; WebIdentityToken,
        RoleArn, RoleSessionName) or Action=AssumeRole (SigV4-signed for the
        service "sts"; the signature is verified against --source-secret).
        Answers the real <AssumeRole[WithWebIdentity]Response> XML, or an
        <ErrorResponse> with the HTTP status STS uses.
  sso   GET /federation/credentials?account_id=&role_name= with the header
        x-amz-sso_bearer_token; answers {"roleCredentials": {...}} with the
        expiration in epoch milliseconds; 401 UnauthorizedException when the
        token is not --sso-token.
  ecs   GET of any path; with --auth, the Authorization header must equal it
        (401 otherwise); answers {AccessKeyId, SecretAccessKey, Token,
        Expiration, RoleArn}.
  imds  PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds
        (400 without), then GET /latest/meta-data/iam/security-credentials/
        (the role name) and .../ROLE (the document, Code "Success"); every GET
        without a valid X-aws-ec2-metadata-token gets 401, as IMDSv2 does.

Every answer hands out --access-key / --secret-key (from the second answer
on --next-access-key / --next-secret-key, when given, so a test can tell
which answer signed a request) with a new session token
("<service>-token-<n>") that expires --ttl seconds from now. The behaviour
can be switched while running by writing one word into DIR/mode: "ok",
"error" (the service refuses: STS AccessDenied 403, SSO 403, ECS/IMDS 500),
"malformed" (a truncated body with status 200) or "expired" (keys whose
expiration is already past). Each request is appended to DIR/requests.log
as one JSON object (service, method, path, action, what was checked and
the token handed out), so tests can prove what the client sent. The server
writes DIR/port once it listens. Run it under `timeout` (srv_spawn).
"""
import argparse
import datetime
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"n": 0, "imds_tokens": set()}
ARGS = None


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def mode():
    try:
        with open(os.path.join(ARGS.dir, "mode")) as f:
            return f.read().strip() or "ok"
    except FileNotFoundError:
        return "ok"


def hold():
    """--hold: answers after the first wait until DIR/release exists
    (DIR/held says one is waiting), so a test can prove the client keeps
    working while a refresh is outstanding. Bounded at 120 s."""
    held = os.path.join(ARGS.dir, "held")
    with open(held + ".tmp", "w") as f:
        f.write("1\n")
    os.rename(held + ".tmp", held)
    for _ in range(1200):
        if os.path.exists(os.path.join(ARGS.dir, "release")):
            break
        time.sleep(0.1)


def issue(service):
    """The next set of keys: (access key, secret, token, expiration)."""
    with LOCK:
        STATE["n"] += 1
        n = STATE["n"]
    if ARGS.hold and n > 1:
        hold()
    now = datetime.datetime.now(datetime.timezone.utc).timestamp()
    exp = now - 60 if mode() == "expired" else now + ARGS.ttl
    ak, sk = ARGS.access_key, ARGS.secret_key
    if n > 1 and ARGS.next_access_key:
        ak, sk = ARGS.next_access_key, ARGS.next_secret_key
    return ak, sk, "%s-token-%d" % (service, n), int(exp)


def record(entry):
    with LOCK:
        with open(os.path.join(ARGS.dir, "requests.log"), "a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")


def sigv4_check(handler, body):
    """Verifies a SigV4 signature for service sts; returns (ok, why)."""
    auth = handler.headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return False, "no SigV4 Authorization"
    parts = dict(p.strip().split("=", 1) for p in auth[17:].split(","))
    cred = parts.get("Credential", "").split("/")
    if len(cred) != 5 or cred[3] != "sts" or cred[4] != "aws4_request":
        return False, "bad credential scope %r" % parts.get("Credential")
    key_id, date, region = cred[0], cred[1], cred[2]
    if key_id != ARGS.source_key:
        return False, "signed by %s, not %s" % (key_id, ARGS.source_key)
    amz_date = handler.headers.get("X-Amz-Date", "")
    if not amz_date.startswith(date):
        return False, "x-amz-date does not match the scope"
    signed = parts.get("SignedHeaders", "").split(";")
    if "host" not in signed:
        return False, "host is not signed"
    if ARGS.source_token and handler.headers.get("X-Amz-Security-Token") != ARGS.source_token:
        return False, "missing or wrong x-amz-security-token"
    canon_headers = "".join(
        "%s:%s\n" % (h, " ".join((handler.headers.get(h) or "").split())) for h in signed)
    creq = "\n".join([handler.command, "/", "", canon_headers, ";".join(signed),
                      hashlib.sha256(body).hexdigest()])
    scope = "/".join([date, region, "sts", "aws4_request"])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + ARGS.source_secret).encode()
    for m in (date, region, "sts", "aws4_request"):
        k = hmac.new(k, m.encode(), hashlib.sha256).digest()
    want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, parts.get("Signature", "")):
        return False, "SignatureDoesNotMatch"
    return True, "signature ok (region %s)" % region


STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def sts_error(code, message, status):
    return status, "text/xml", (
        '<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>Sender</Type>\n'
        "    <Code>%s</Code>\n    <Message>%s</Message>\n  </Error>\n"
        "  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>\n"
        "</ErrorResponse>\n" % (STS_NS, code, message)).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: requests.log says it all
        pass

    def reply(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_POST(self):
        self.route()

    def do_GET(self):
        self.route()

    def do_PUT(self):
        self.route()

    def route(self):
        body = self.body()
        entry = {"service": ARGS.service, "method": self.command, "path": self.path,
                 "mode": mode()}
        status, ctype, out = getattr(self, "serve_" + ARGS.service)(body, entry)
        if entry["mode"] == "malformed" and status == 200:
            out = out[: len(out) // 2]
        entry["status"] = status
        record(entry)
        self.reply(status, ctype, out)

    def serve_sts(self, body, entry):
        form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
        get = lambda k: (form.get(k) or [""])[0]
        action = get("Action")
        entry.update(action=action, role_arn=get("RoleArn"),
                     session_name=get("RoleSessionName"), version=get("Version"))
        if self.command != "POST" or get("Version") != "2011-06-15":
            return sts_error("InvalidAction", "Could not find operation", 400)
        if not get("RoleArn") or not get("RoleSessionName"):
            return sts_error("ValidationError", "RoleArn and RoleSessionName are required", 400)
        if action == "AssumeRoleWithWebIdentity":
            entry["web_identity_token"] = get("WebIdentityToken")
            entry["signed"] = "Authorization" in self.headers
            if ARGS.web_token and get("WebIdentityToken") != ARGS.web_token:
                return sts_error("InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider", 400)
        elif action == "AssumeRole":
            ok, why = sigv4_check(self, body)
            entry["signature"] = why
            entry["external_id"] = get("ExternalId")
            if not ok:
                return sts_error("SignatureDoesNotMatch", why, 403)
        else:
            return sts_error("InvalidAction", "Could not find operation %s" % action, 400)
        if entry["mode"] == "error":
            return sts_error("AccessDenied", "Not authorized to perform sts:%s" % action, 403)
        ak, sk, tok, exp = issue("sts")
        entry["issued_token"] = tok
        extra = ("<SubjectFromWebIdentityToken>system:serviceaccount:default:s3ring"
                 "</SubjectFromWebIdentityToken>\n    " if action != "AssumeRole" else "")
        xml = ('<%sResponse xmlns="%s">\n  <%sResult>\n    %s<AssumedRoleUser>\n'
               "      <Arn>%s/%s</Arn>\n      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:%s"
               "</AssumedRoleId>\n    </AssumedRoleUser>\n    <Credentials>\n"
               "      <SessionToken>%s</SessionToken>\n      <SecretAccessKey>%s"
               "</SecretAccessKey>\n      <Expiration>%s</Expiration>\n"
               "      <AccessKeyId>%s</AccessKeyId>\n    </Credentials>\n"
               "  </%sResult>\n  <ResponseMetadata>\n    <RequestId>"
               "ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>\n"
               "  </ResponseMetadata>\n</%sResponse>\n") % (
            action, STS_NS, action, extra, get("RoleArn"), get("RoleSessionName"),
            get("RoleSessionName"), tok, sk, iso(exp), ak, action, action)
        return 200, "text/xml", xml.encode()

    def serve_sso(self, body, entry):
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        entry.update(account_id=(q.get("account_id") or [""])[0],
                     role_name=(q.get("role_name") or [""])[0],
                     bearer_ok=self.headers.get("x-amz-sso_bearer_token") == ARGS.sso_token)
        if url.path != "/federation/credentials" or self.command != "GET":
            return 404, "application/json", b'{"message":"Not Found"}'
        if not entry["bearer_ok"]:
            return 401, "application/json", b'{"message":"Session token not found or invalid"}'
        if entry["mode"] == "error":
            return 403, "application/json", b'{"message":"No access"}'
        ak, sk, tok, exp = issue("sso")
        entry["issued_token"] = tok
        doc = {"roleCredentials": {"accessKeyId": ak, "secretAccessKey": sk,
                                   "sessionToken": tok, "expiration": exp * 1000}}
        return 200, "application/json", json.dumps(doc).encode()

    def serve_ecs(self, body, entry):
        entry["auth_ok"] = ARGS.auth is None or self.headers.get("Authorization") == ARGS.auth
        if not entry["auth_ok"]:
            return 401, "application/json", b'{"message":"invalid authorization token"}'
        if entry["mode"] == "error":
            return 500, "application/json", b'{"message":"agent error"}'
        ak, sk, tok, exp = issue("ecs")
        entry["issued_token"] = tok
        doc = {"RoleArn": "arn:aws:iam::111122223333:role/task", "AccessKeyId": ak,
               "SecretAccessKey": sk, "Token": tok, "Expiration": iso(exp)}
        return 200, "application/json", json.dumps(doc).encode()

    def serve_imds(self, body, entry):
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == "/latest/api/token":
            if self.command != "PUT":
                return 405, "text/plain", b""
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            entry["ttl"] = ttl
            if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return 400, "text/plain", b""
            tok = "imds-session-%d" % len(STATE["imds_tokens"])
            with LOCK:
                STATE["imds_tokens"].add(tok)
            return 200, "text/plain", tok.encode()
        entry["token_ok"] = self.headers.get("X-aws-ec2-metadata-token") in STATE["imds_tokens"]
        if not entry["token_ok"]:
            return 401, "text/plain", b""
        if entry["mode"] == "error":
            return 500, "text/plain", b""
        if self.path == base:
            return 200, "text/plain", ARGS.role.encode()
        if self.path == base + ARGS.role:
            ak, sk, tok, exp = issue("imds")
            entry["issued_token"] = tok
            doc = {"Code": "Success", "LastUpdated": iso(exp - ARGS.ttl),
                   "Type": "AWS-HMAC", "AccessKeyId": ak, "SecretAccessKey": sk,
                   "Token": tok, "Expiration": iso(exp)}
            return 200, "text/plain", json.dumps(doc, indent=2).encode()
        return 404, "text/plain", b""


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("service", choices=["sts", "sso", "ecs", "imds"])
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ttl", type=int, default=3600)
    p.add_argument("--access-key", default="S3RVER")
    p.add_argument("--secret-key", default="S3RVER")
    p.add_argument("--next-access-key", default="",
                   help="keys handed out from the second answer on")
    p.add_argument("--next-secret-key", default="")
    p.add_argument("--source-key", default="", help="sts: AssumeRole signer")
    p.add_argument("--source-secret", default="")
    p.add_argument("--source-token", default="")
    p.add_argument("--web-token", default="", help="sts: expected token, if set")
    p.add_argument("--sso-token", default="")
    p.add_argument("--auth", default=None, help="ecs: expected Authorization")
    p.add_argument("--role", default="s3ring-instance-role")
    p.add_argument("--hold", action="store_true",
                   help="hold every answer after the first until DIR/release")
    ARGS = p.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    with open(os.path.join(ARGS.dir, "port.tmp"), "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(os.path.join(ARGS.dir, "port.tmp"), os.path.join(ARGS.dir, "port"))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
