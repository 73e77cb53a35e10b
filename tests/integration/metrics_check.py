#!/usr/bin/python3
"""Parse a Prometheus text exposition strictly (Debian's python3-prometheus-client) and print
one "name{labels} value" line per sample, sorted, for 41_metrics.c to check against the traffic
it sent. Exits non-zero (with the reason) when the text does not parse or breaks a convention:
every family has HELP and a known TYPE, counters end in _total, and no sample repeats."""
import sys

from prometheus_client.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    seen = set()
    out = []
    for fam in text_string_to_metric_families(text):
        if not fam.documentation:
            sys.exit("family %s has no HELP" % fam.name)
        if fam.type not in ("counter", "gauge", "histogram"):
            sys.exit("family %s has type %s" % (fam.name, fam.type))
        if not fam.name.startswith("cairn_"):
            sys.exit("family %s lacks the cairn_ prefix" % fam.name)
        for s in fam.samples:
            if fam.type == "counter" and not s.name.endswith("_total"):
                sys.exit("counter sample %s does not end in _total" % s.name)
            key = s.name + "{" + ",".join("%s=%s" % kv for kv in sorted(s.labels.items())) + "}"
            if key in seen:
                sys.exit("sample %s repeats" % key)
            seen.add(key)
            out.append("%s %r" % (key, s.value))
    for line in sorted(out):
        print(line)


if __name__ == "__main__":
    main()
