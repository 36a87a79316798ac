#!/usr/bin/env python3
# promcheck.py -- validates Prometheus text exposition format (0.0.4) on stdin.
#
# Written against the format's grammar, since promtool is not available:
#   line      = comment | sample | empty
#   comment   = "# HELP " name " " docstring | "# TYPE " name " " type | "#" text
#   sample    = name [ "{" label ("," label)* [","] "}" ] " " value [ " " timestamp ]
#   label     = lname "=" '"' escaped '"'      escapes: \\ \" \n only
#   value     = Go float: digits, exponent, NaN, +Inf, -Inf
# plus the rules promtool's linter and node_exporter's textfile collector
# apply: at most one HELP and one TYPE per family, TYPE before the family's
# first sample, a family's samples contiguous, no duplicate series, and the
# input ends with a newline. Project rules on top (option --s3ring): every
# metric starts with s3ring_, carries a "ring" label, and every counter ends
# in _total, and no label is a pid (series would churn with every restart).
# Histograms: each series' _bucket values are cumulative (never decrease
# as le grows), the last bucket is le="+Inf", and it equals _count.
#
# Exit 0 if valid, 1 with one message per problem on stderr.
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LNAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|NaN|Inf)\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
SUFFIXES = ("_bucket", "_count", "_sum")


def parse_labels(s, pos, lineno, errors):
    """Parses {...} starting at s[pos] == '{'. Returns (labels, new_pos)."""
    labels = {}
    pos += 1
    while True:
        if pos < len(s) and s[pos] == "}":
            return labels, pos + 1
        m = LNAME.match(s, pos)
        if not m:
            errors.append(f"line {lineno}: bad label name at column {pos + 1}")
            return None, pos
        lname = m.group(0)
        pos = m.end()
        if not s.startswith('="', pos):
            errors.append(f"line {lineno}: expected =\" after label {lname}")
            return None, pos
        pos += 2
        val = []
        while True:
            if pos >= len(s):
                errors.append(f"line {lineno}: unterminated label value")
                return None, pos
            c = s[pos]
            if c == "\\":
                if pos + 1 >= len(s) or s[pos + 1] not in '\\"n':
                    errors.append(f"line {lineno}: bad escape in label value")
                    return None, pos
                val.append({"\\": "\\", '"': '"', "n": "\n"}[s[pos + 1]])
                pos += 2
            elif c == '"':
                pos += 1
                break
            elif c == "\n":
                errors.append(f"line {lineno}: raw newline in label value")
                return None, pos
            else:
                val.append(c)
                pos += 1
        if lname in labels:
            errors.append(f"line {lineno}: duplicate label {lname}")
        labels[lname] = "".join(val)
        if pos < len(s) and s[pos] == ",":
            pos += 1
        elif pos < len(s) and s[pos] == "}":
            continue
        else:
            errors.append(f"line {lineno}: expected , or }} after label {lname}")
            return None, pos


def family_of(name, types):
    if name in types:
        return name
    for suf in SUFFIXES:
        if name.endswith(suf) and name[: -len(suf)] in types:
            return name[: -len(suf)]
    return name


def check(text, s3ring):
    errors = []
    if text and not text.endswith("\n"):
        errors.append("input does not end with a newline")
    helps, types, seen_series = {}, {}, set()
    done_families, current = set(), None
    samples = 0
    hist = {}  # (family, labels without le) -> {"buckets": [(le, v)], "count": v}
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        errors.append("input is not valid UTF-8")
    for lineno, line in enumerate(text.split("\n")[:-1] if text.endswith("\n")
                                  else text.split("\n"), 1):
        if line.strip() == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not NAME.fullmatch(name):
                    errors.append(f"line {lineno}: bad metric name {name!r}")
                if parts[1] == "HELP":
                    if name in helps:
                        errors.append(f"line {lineno}: second HELP for {name}")
                    helps[name] = parts[3] if len(parts) > 3 else ""
                    if re.search(r"\\[^\\n]", helps[name]):
                        errors.append(f"line {lineno}: bad escape in HELP")
                else:
                    t = parts[3] if len(parts) > 3 else ""
                    if t not in TYPES:
                        errors.append(f"line {lineno}: bad type {t!r}")
                    if name in types:
                        errors.append(f"line {lineno}: second TYPE for {name}")
                    if name in done_families or name == current:
                        errors.append(f"line {lineno}: TYPE for {name} after its samples")
                    types[name] = t
                    if s3ring and t == "counter" and not name.endswith("_total"):
                        errors.append(f"line {lineno}: counter {name} does not end in _total")
            continue
        m = NAME.match(line)
        if not m:
            errors.append(f"line {lineno}: bad metric name")
            continue
        name = m.group(0)
        pos = m.end()
        labels = {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = parse_labels(line, pos, lineno, errors)
            if labels is None:
                continue
        rest = line[pos:]
        if not rest.startswith(" "):
            errors.append(f"line {lineno}: expected a space before the value")
            continue
        fields = rest[1:].split(" ")
        if len(fields) not in (1, 2) or not FLOAT.match(fields[0]):
            errors.append(f"line {lineno}: bad value {rest[1:]!r}")
            continue
        if len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1]):
            errors.append(f"line {lineno}: bad timestamp {fields[1]!r}")
        fam = family_of(name, types)
        if fam != current:
            if fam in done_families:
                errors.append(f"line {lineno}: samples of {fam} are not contiguous")
            if current is not None:
                done_families.add(current)
            current = fam
        key = (name, tuple(sorted(labels.items())))
        if key in seen_series:
            errors.append(f"line {lineno}: duplicate series {name}{labels}")
        seen_series.add(key)
        samples += 1
        if types.get(fam) == "histogram":
            rest_labels = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            h = hist.setdefault((fam, rest_labels), {"buckets": [], "count": None})
            if name == fam + "_bucket":
                if "le" not in labels:
                    errors.append(f"line {lineno}: {name} without an le label")
                else:
                    h["buckets"].append((labels["le"], float(fields[0]), lineno))
            elif name == fam + "_count":
                h["count"] = float(fields[0])
        if s3ring:
            if "pid" in labels:
                errors.append(f"line {lineno}: {name} has a pid label")
            if not name.startswith("s3ring_"):
                errors.append(f"line {lineno}: {name} does not start with s3ring_")
            if "ring" not in labels:
                errors.append(f"line {lineno}: {name} has no ring label")
            if types.get(fam) is None:
                errors.append(f"line {lineno}: {name} has no TYPE")
            if types.get(fam) == "counter" and float(fields[0]) < 0:
                errors.append(f"line {lineno}: counter {name} is negative")
    for (fam, _), h in hist.items():
        b = h["buckets"]
        if not b or b[-1][0] != "+Inf":
            errors.append(f"histogram {fam}: the last bucket is not le=\"+Inf\"")
            continue
        prev_le, prev_v = float("-inf"), 0.0
        for le, v, ln in b:
            lev = float(le.replace("+Inf", "inf"))
            if lev <= prev_le:
                errors.append(f"line {ln}: {fam} buckets not in increasing le order")
            if v < prev_v:
                errors.append(f"line {ln}: {fam} bucket le={le} is below the previous one")
            prev_le, prev_v = lev, v
        if h["count"] is None or h["count"] != b[-1][1]:
            errors.append(f"histogram {fam}: _count differs from the +Inf bucket")
    if samples == 0:
        errors.append("no samples")
    return errors


def main():
    s3ring = "--s3ring" in sys.argv[1:]
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        print(f"promcheck: not UTF-8: {e}", file=sys.stderr)
        return 1
    errors = check(text, s3ring)
    for e in errors:
        print(f"promcheck: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
