#!/usr/bin/env python3
"""batch_fetch.py BUCKET PREFIX OUTDIR: downloads every object under PREFIX
(botocore, which signs on its own), decompresses it by its extension (.zst
with the zstd tool, .gz with Python's gzip) into OUTDIR/<n>, and prints one
"FILE KEY STORED_BYTES" line per object. Exit 1 if any object does not
decompress (a truncated or corrupt stream)."""
import gzip
import os
import subprocess
import sys

import botocore.session
from botocore.config import Config

bucket, prefix, out = sys.argv[1], sys.argv[2], sys.argv[3]
s3 = botocore.session.get_session().create_client(
    "s3", endpoint_url=os.environ["S3_ENDPOINT"], region_name=os.environ["AWS_REGION"],
    config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
os.makedirs(out, exist_ok=True)
bad = 0
n = 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for o in page.get("Contents", []):
        key = o["Key"]
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            if key.endswith(".zst"):
                p = subprocess.run(["zstd", "-dcq"], input=data, capture_output=True, check=True)
                raw = p.stdout
            elif key.endswith(".gz"):
                raw = gzip.decompress(data)
            else:
                raw = data
        except Exception as e:  # a stream that does not decompress
            print(f"batch_fetch: {key}: does not decompress: {e}", file=sys.stderr)
            bad += 1
            continue
        path = os.path.join(out, str(n))
        with open(path, "wb") as f:
            f.write(raw)
        print(path, key, len(data))
        n += 1
sys.exit(1 if bad else 0)
