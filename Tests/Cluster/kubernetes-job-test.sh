#!/usr/bin/env bash
# The Kubernetes Indexed Job manifest, without a cluster: it parses as
# YAML, is an Indexed Job whose --shard-count equals its completions, and
# its container's command, run here once per index with the environment
# Kubernetes would give (JOB_COMPLETION_INDEX and the manifest's env) and
# /data on a local folder, is one atrous accepts: together the runs cover
# every input exactly once.
#
#   Tests/Cluster/kubernetes-job-test.sh path/to/atrous
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
atrous=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=$(mktemp -d /tmp/atrous-kubernetes-XXXXXX)
trap 'rm -rf "$work"' EXIT

python3 -c 'import yaml' 2>/dev/null || pip install -q pyyaml
mkdir -p "$work/data/images/a" "$work/data/images/b"
for k in 0 1 2 3 4; do cp "$repo/Tests/Fixtures/hypercolumns/input.png" "$work/data/images/a/$k.png"; done
for k in 5 6 7; do cp "$repo/Tests/Fixtures/hypercolumns/gray.png" "$work/data/images/b/$k.png"; done

python3 - "$repo/deploy/kubernetes/atrous-indexed-job.yaml" "$atrous" "$work/data" <<'PY'
import json, os, subprocess, sys, yaml
manifest, atrous, data = sys.argv[1:]
job = yaml.safe_load(open(manifest))
assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job", job
spec = job["spec"]
assert spec["completionMode"] == "Indexed"
n = spec["completions"]
pod = spec["template"]["spec"]
assert pod["restartPolicy"] == "Never"
(container,) = pod["containers"]
mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["data"]
assert {v["name"] for v in pod["volumes"]} == {"data"}
command = container["command"] + container["args"]
assert command[0] == "atrous", command
i = command.index("--shard-count")
assert int(command[i + 1]) == n, "--shard-count %s, completions %d" % (command[i + 1], n)
out = command[command.index("--out-dir") + 1]
local = lambda word: word.replace(mount, data, 1) if word.startswith(mount) else word
env = dict(os.environ, **{e["name"]: e["value"] for e in container.get("env", [])})
for index in range(n):
    run = subprocess.run([atrous] + [local(w) for w in command[1:]], env=dict(env, JOB_COMPLETION_INDEX=str(index)),
                         capture_output=True, text=True)
    assert run.returncode == 0, "index %d: %s" % (index, run.stderr)
summary = subprocess.run([atrous, "manifest", local(out), "--json"], capture_output=True, text=True)
s = json.loads(summary.stdout)
assert summary.returncode == 0 and s["done"] == 8 and s["shards"] == n and s["missing"] == 0, s
made = sorted(f for _, _, files in os.walk(local(out)) for f in files if f.endswith(".npy"))
assert made == ["%d.npy" % k for k in range(8)], made
print("kubernetes-job-test: %d indices of %s cover the 8 images once: passed" % (n, os.path.basename(manifest)))
PY
