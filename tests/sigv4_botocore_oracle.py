#!/usr/bin/python3
"""sigv4_botocore_oracle.py -- random S3 requests signed by botocore.

Writes one request per line in the format that test_sigv4's
sign_matches_botocore_for_generated_requests reads (tab-separated; strings
that may hold any byte are hex; the headers include the object options
that s3ring-uploader sends, OBJECT_HEADERS below):

  ak sk token_hex region epoch method path_hex payload_sha256
  nquery {name_hex value_hex}... nheaders {name value_hex}... authorization

The expected Authorization comes from botocore's S3SigV4Auth, with the
object path encoded the way botocore's S3 serializer encodes a {Key+} label
(percent_encode(key, safe='/~')) and the query passed as params, so that
botocore does all of the canonicalization itself. Keys are drawn from the
whole of Unicode (valid UTF-8, astral plane included, no NUL) and from
every reserved ASCII character.

--mutate signs with a deliberately wrong path encoding (RFC 3986 pchar
left unescaped), which the C test must reject.
"""
import argparse
import datetime
import hashlib
import random
import string
import sys
from urllib.parse import quote

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode


class _FixedDatetime(datetime.datetime):
    fixed = datetime.datetime(2015, 8, 30, 12, 36, 0)

    @classmethod
    def utcnow(cls):
        return cls.fixed


class _DatetimeShim:
    datetime = _FixedDatetime


# botocore reads the clock in add_auth(); pin it per request.
botocore.auth.datetime = _DatetimeShim

RESERVED = " !\"#$%&'()*+,/:;<=>?@[\\]^`{|}~"
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "auto", "us-gov-west-1"]
METHODS = ["PUT", "PUT", "GET", "HEAD", "DELETE", "POST"]
CONTENT_TYPES = ["application/octet-stream", "text/plain; charset=utf-8",
                 "application/x-www-form-urlencoded", "image/png"]


# The object options s3ring-uploader sends (uploader/objopts.c), with
# values of the shapes it produces: each is signed like any other header.
OBJECT_HEADERS = [
    ("Cache-Control", ["max-age=60", "no-cache, max-age=0", "public,  max-age=3600"]),
    ("Content-Encoding", ["gzip", "zstd", "identity"]),
    ("x-amz-storage-class", ["STANDARD_IA", "INTELLIGENT_TIERING", "GLACIER_IR"]),
    ("x-amz-server-side-encryption", ["AES256", "aws:kms"]),
    ("x-amz-server-side-encryption-aws-kms-key-id",
     ["alias/logs", "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"]),
    ("x-amz-server-side-encryption-bucket-key-enabled", ["true"]),
    ("x-amz-acl", ["bucket-owner-full-control"]),
    ("x-amz-tagging", ["env=prod", "env=prod%20%26%20more&team=a%2Fb", "k%3D1=v%3D2"]),
]


def random_codepoint(rng):
    r = rng.random()
    if r < 0.30:
        return rng.choice(RESERVED + string.ascii_letters + string.digits + "-._")
    if r < 0.35:
        return chr(rng.choice(list(range(1, 32)) + [127]))
    if r < 0.55:
        return chr(rng.randint(0x80, 0x7FF))
    if r < 0.80:
        while True:
            c = rng.randint(0x800, 0xFFFF)
            if not 0xD800 <= c <= 0xDFFF:
                return chr(c)
    return chr(rng.randint(0x10000, 0x10FFFF))


def random_text(rng, lo, hi):
    return "".join(random_codepoint(rng) for _ in range(rng.randint(lo, hi)))


def random_key(rng, i):
    segs = [random_text(rng, 0 if rng.random() < 0.1 else 1, 24)
            for _ in range(rng.randint(1, 8))]
    if rng.random() < 0.1:
        segs.insert(rng.randrange(len(segs) + 1), rng.choice([".", "..", ""]))
    key = "/".join(segs)
    # Every reserved ASCII character appears in some key, in order, and
    # each key has at least one.
    key += RESERVED[i % len(RESERVED)]
    return key.replace("\0", "x") or "k"


def random_header_value(rng):
    chars = string.printable.replace("\n", "").replace("\r", "") \
        .replace("\x0b", "").replace("\x0c", "")
    v = "".join(rng.choice(chars) for _ in range(rng.randint(0, 40)))
    if rng.random() < 0.3:
        v = "  " + v + " \t "
    if rng.random() < 0.3:
        v = v.replace(" ", "   ")
    return v


def random_query(rng):
    r = rng.random()
    if r < 0.4:
        return []
    if r < 0.5:
        return [("uploads", "")]
    if r < 0.7:
        return [("partNumber", str(rng.randint(1, 10000))),
                ("uploadId", random_text(rng, 1, 40))]
    if r < 0.8:
        return [("uploadId", random_text(rng, 1, 40))]
    return [(random_text(rng, 1, 10), random_text(rng, 0, 10))
            for _ in range(rng.randint(1, 4))]


def hexs(s):
    return s.encode("utf-8").hex()


def one(rng, i, mutate):
    ak = "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits)
                          for _ in range(16))
    sk = "".join(rng.choice(string.ascii_letters + string.digits + "+/")
                 for _ in range(40))
    token = ""
    if rng.random() < 0.3:
        token = "".join(rng.choice(string.ascii_letters + string.digits + "+/=")
                        for _ in range(rng.randint(16, 300)))
    region = rng.choice(REGIONS)
    when = datetime.datetime(2000, 1, 1) + datetime.timedelta(
        seconds=rng.randint(0, 37 * 365 * 86400))
    epoch = int((when - datetime.datetime(1970, 1, 1)).total_seconds())
    method = rng.choice(METHODS)
    key = random_key(rng, i)
    bucket = "bucket-%d" % rng.randint(0, 999)
    if rng.random() < 0.5:
        host = rng.choice(["127.0.0.1:9000", "s3.%s.amazonaws.com" % region])
        path = "/%s/%s" % (bucket, key)
    else:
        host = "%s.s3.%s.amazonaws.com" % (bucket, region)
        path = "/" + key
    query = random_query(rng)
    headers = [("Host", host)]
    if rng.random() < 0.5:
        headers.append(("Content-Type", rng.choice(CONTENT_TYPES)))
    if rng.random() < 0.5:
        headers.append(("x-amz-checksum-crc32c", "yZRlqg=="))
    for name, values in OBJECT_HEADERS:
        if rng.random() < 0.3:
            headers.append((name, rng.choice(values)))
    for _ in range(rng.choice([0, 0, 1, 2, 4])):
        name = "x-amz-meta-" + "".join(
            rng.choice(string.ascii_letters + string.digits + "-_")
            for _ in range(rng.randint(1, 12)))
        headers.append((name, random_header_value(rng)))
        if rng.random() < 0.1:
            headers.append((name.upper(), random_header_value(rng)))
    body = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))

    if mutate:
        enc = quote(path.encode("utf-8"), safe="/~!$&'()*+,;=:@")
    else:
        enc = percent_encode(path, safe="/~")
    req = AWSRequest(method=method, url="http://%s%s" % (host, enc),
                     data=body, params=list(query))
    for name, value in headers:
        req.headers[name] = value
    _FixedDatetime.fixed = when
    creds = Credentials(ak, sk, token or None)
    botocore.auth.S3SigV4Auth(creds, "s3", region).add_auth(req)

    fields = [ak, sk, hexs(token), region, str(epoch), method, hexs(path),
              hashlib.sha256(body).hexdigest(), str(len(query))]
    for name, value in query:
        fields += [hexs(name), hexs(value)]
    fields.append(str(len(headers)))
    for name, value in headers:
        fields += [name, hexs(value)]
    fields.append(req.headers["Authorization"])
    return "\t".join(fields)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mutate", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = sys.stdout
    for i in range(args.count):
        out.write(one(rng, i, args.mutate) + "\n")


if __name__ == "__main__":
    main()
