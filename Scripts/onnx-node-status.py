#!/usr/bin/env python3
"""Runs every test of Tests/Fixtures/onnx-ops through `atrous-bench onnx-tests`
and prints, per test, passed / failed / refused / crashed / hung, then counts
per outcome and per op. A crash or hang ends the child process; the driver
starts a new one after the test it was on.

Usage: swift build -c release --product atrous-bench
       python3 Scripts/onnx-node-status.py [--out status.tsv] [PREFIX...]
"""
import argparse
import collections
import json
import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", default=os.path.join(ROOT, ".build", "release", "atrous-bench"))
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--out", help="write name<TAB>outcome<TAB>detail rows here")
    parser.add_argument("prefixes", nargs="*")
    args = parser.parse_args()
    folder = os.path.join(ROOT, "Tests", "Fixtures", "onnx-ops")
    index = json.load(open(os.path.join(folder, "index.json")))["tests"]
    ops = {t["name"]: t["op"] for t in index}
    names = [t["name"] for t in index if not args.prefixes or any(t["name"].startswith(p) for p in args.prefixes)]
    results = {}
    pending = list(names)
    while pending:
        proc = subprocess.Popen([args.bench, "onnx-tests", folder] + pending, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        current = None
        try:
            out, _ = proc.communicate(timeout=args.timeout * max(1, len(pending)) / 10 + args.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        for line in out.splitlines():
            kind, _, rest = line.partition(" ")
            name, _, detail = rest.partition(": ")
            if kind == "start":
                current = name
            elif name in ops:
                results[name] = (kind, detail)
                current = None
        if current is not None:
            results[current] = ("crashed" if proc.returncode not in (0, None, -9) else "hung", f"exit {proc.returncode}")
        pending = [n for n in pending if n not in results]
        if current is None and pending:
            for n in pending:
                results[n] = ("hung", "not reached")
            pending = []
    counts = collections.Counter(k for k, _ in results.values())
    per_op = collections.defaultdict(collections.Counter)
    for name, (kind, _) in results.items():
        per_op[ops[name]][kind] += 1
    rows = [f"{n}\t{results[n][0]}\t{results[n][1]}" for n in names]
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(rows) + "\n")
    for op in sorted(per_op):
        c = per_op[op]
        if c["passed"] != sum(c.values()):
            print(op, dict(c))
    print(dict(counts), "of", len(names))


if __name__ == "__main__":
    sys.exit(main())
