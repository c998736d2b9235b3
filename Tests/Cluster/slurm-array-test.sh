#!/usr/bin/env bash
# The batch commands on a real Slurm cluster (one node, this machine):
# a 4-task array over 41 images, one of them corrupt, run, resubmitted,
# and cancelled mid-run then resubmitted. Checks that every good image has
# its output exactly once, that the corrupt one is in the manifest and in
# its task's exit state, and that a resubmission does no work again.
#
#   Tests/Cluster/slurm-array-test.sh path/to/atrous
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
atrous=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
# shellcheck source=slurm-cluster.sh
source "$here/slurm-cluster.sh"

work=$(mktemp -d /tmp/atrous-slurm-XXXXXX)
trap 'slurm_stop; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
fail() { echo "slurm-array-test: FAILED: $*" >&2; exit 1; }
step() { echo "slurm-array-test: $*"; }

slurm_install
slurm_start "$work/cluster"
step "cluster up: $(sinfo -h -o '%N %c CPUs %T')"

# 40 good images, sorted names, and one corrupt file among them.
images() {  # FOLDER SOURCE...
  local folder=$1; shift
  mkdir -p "$folder"
  local sources=("$@")
  for k in $(seq 0 39); do
    cp "${sources[$((k % ${#sources[@]}))]}" "$(printf '%s/img%02d.png' "$folder" "$k")"
  done
  head -c 100 "${sources[0]}" >"$folder/img17b.png"
}

# Submits the array with the given atrous arguments; prints the job id.
submit() {
  (cd "$work" && ATROUS=$atrous sbatch --parsable --array=0-3 --cpus-per-task=1 \
    --output="$work/log-%A_%a.txt" "$repo/deploy/slurm/atrous-array.sbatch" "$@")
}

# Exit code of each array task ("0:0"...), by task id.
exit_codes() {
  scontrol -o show job "$1" | sed -n 's/.*ArrayTaskId=\([0-9]*\) .*ExitCode=\([0-9:]*\).*/\1 \2/p' | sort -n
}

# Checks OUT holds exactly one .npy and one .json per good image, nothing
# for the corrupt one, and nothing else but the manifests and plans.
check_outputs() {
  local out=$1
  python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
names = sorted(os.listdir(out))
good = ["img%02d" % k for k in range(40)]
expected = sorted([g + ".npy" for g in good] + [g + ".json" for g in good]
                  + ["manifest-%d-of-4.jsonl" % i for i in range(4)] + ["shard-%d-of-4.json" % i for i in range(4)])
if names != expected:
    sys.exit("outputs differ: extra %s, missing %s" % (sorted(set(names) - set(expected)), sorted(set(expected) - set(names))))
for g in good:
    size = os.path.getsize(os.path.join(out, g + ".npy"))
    shape = json.load(open(os.path.join(out, g + ".json")))["shape"]
    n = 1
    for d in shape: n *= d
    if size < 4 * n: sys.exit("%s.npy is %d bytes, short of its shape %s" % (g, size, shape))
PY
}

# Every manifest line of OUT, as "status input" per line.
statuses() {
  cat "$1"/manifest-*-of-4.jsonl | python3 -c '
import json, sys
for line in sys.stdin:
    try: r = json.loads(line)
    except ValueError: continue
    print(r["status"], r["input"].rsplit("/", 1)[-1], r["error"] or "")'
}

# --- 1. A 4-task array over 41 images, one corrupt -----------------------
images "$work/in" "$repo/Tests/Fixtures/hypercolumns/input.png" "$repo/Tests/Fixtures/hypercolumns/gray.png"
out=$work/out
job=$(submit hypercolumns "$work/in" --out-dir "$out")
slurm_wait "$job"
check_outputs "$out" || fail "first run"
# The corrupt file is position 18 of the sorted list: shard 18 % 4 = 2.
codes=$(exit_codes "$job")
[ "$codes" = $'0 0:0\n1 0:0\n2 1:0\n3 0:0' ] || fail "exit states: $codes"
# Whole outputs into variables first: grep -q leaves a pipe early.
lines=$(statuses "$out")
[ "$(grep -c '^done ' <<<"$lines")" = 40 ] || fail "done lines: $lines"
grep -q '^failed img17b.png .*PNG' <<<"$lines" || fail "the corrupt file's line: $(grep img17b <<<"$lines")"
grep -q '\] done ' "$work"/log-"${job}"_0.txt || fail "no per-file lines in the task's log"
step "array of 4 tasks: 40 outputs, the corrupt file failed in task 2 ($codes)"

# --- 2. Resubmitted: no work again --------------------------------------
stamp() { find "$out" -name '*.npy' -printf '%f %T@ %i\n' | sort; }
before=$(stamp)
job=$(submit hypercolumns "$work/in" --out-dir "$out")
slurm_wait "$job"
[ "$(stamp)" = "$before" ] || fail "a resubmission rewrote outputs"
lines=$(statuses "$out")
[ "$(grep -c '^skipped ' <<<"$lines")" = 40 ] || fail "skipped lines: $lines"
check_outputs "$out" || fail "after resubmitting"
"$atrous" manifest "$out" >"$work/summary.txt" && fail "manifest says complete with a failed file"
grep -q 'done     40' "$work/summary.txt" && grep -q 'failed   1' "$work/summary.txt" || fail "summary: $(cat "$work/summary.txt")"
step "resubmitted: every output skipped, none rewritten"

# --- 3. One task cancelled mid-run, then resubmitted ----------------------
# Larger images, so that a task runs long enough to be cancelled.
images "$work/big" "$repo/SampleImages/coffee.png" "$repo/SampleImages/astronaut.png"
out=$work/out-big
job=$(submit hypercolumns "$work/big" --out-dir "$out")
for _ in $(seq 600); do
  [ -s "$out/manifest-1-of-4.jsonl" ] && break
  sleep 0.2
done
scancel "${job}_1"
slurm_wait "$job"
made=$(grep -c '"status":"done"' "$out/manifest-1-of-4.jsonl" || true)
[ "$made" -lt 10 ] || fail "task 1 finished all its files before it was cancelled"
left=$(find "$out" -name '.*' -type f)
[ -z "$left" ] || fail "temporary files left: $left"
step "task 1 cancelled after $made of its 10 files"
job=$(submit hypercolumns "$work/big" --out-dir "$out")
slurm_wait "$job"
check_outputs "$out" || fail "after the cancelled task was resubmitted"
# Status 1: the corrupt file failed.
"$atrous" manifest "$out" --json >"$work/summary.json" && fail "manifest says complete with a failed file"
python3 - "$work/summary.json" <<'PY' || fail "summary after resubmitting: $(cat "$work/summary.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["done"] == 40 and len(s["failed"]) == 1 and s["missing"] == 0, s
PY
step "resubmitted: complete, 40 outputs exactly once"
step "passed"
