"""What the comparison scripts share: building atrous-bench, timing a
Python callable, running atrous-bench, and alternating rounds."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def arguments(doc, repeat):
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of both tools")
    parser.add_argument("--repeat", type=int, default=repeat, help="timed runs per round (after one warm-up)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only the cases whose label starts with NAME (repeatable)")
    return parser.parse_args()


def corpus(doc, repeat):
    """The arguments of a script over the full-size model corpus
    (Scripts/export-model-corpus.py --full, exported into --models the
    first time), and the corpus's models it is to run, by --only."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--models", default=os.path.join(tempfile.gettempdir(), "atrous-full-models"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--only", action="append", default=[])
    args = parser.parse_args()
    index = os.path.join(args.models, "index.json")
    if not os.path.exists(index):
        subprocess.run([sys.executable, os.path.join(ROOT, "Scripts", "export-model-corpus.py"), "--full", args.models],
                       check=True)
    models = [m for m in json.load(open(index))["models"]
              if not args.only or any(m["name"].startswith(n) for n in args.only)]
    return args, models


def build_bench():
    """Builds atrous-bench in release mode and returns its path."""
    subprocess.run(["swift", "build", "-c", "release", "--product", "atrous-bench"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    folder = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    return os.path.join(folder, "atrous-bench")


def machine(binary):
    """A line naming the CPU and the instruction set Atrous's kernels use
    (ATROUS_ISA caps it), printed with every benchmark's figures."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    fields = subprocess.run([binary, "machine"], check=True, capture_output=True, text=True).stdout.split()
    return f"CPU: {model}, {os.cpu_count()} cores; Atrous kernels: {fields[1]} (the CPU's widest: {fields[3]})"


def ort_session(path, threads):
    """An ONNX Runtime CPU session with all graph optimizations on `threads` threads."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def time_python(fn, repeat):
    """Median milliseconds of `repeat` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def time_bench(binary, arguments):
    """atrous-bench's median milliseconds for one invocation."""
    fields = subprocess.run([binary] + [str(a) for a in arguments], check=True, capture_output=True,
                            text=True).stdout.split()
    return float(fields[fields.index("median") + 1])


def compare(rounds, ours, theirs, settle=0.5):
    """Alternates the two timers; returns (our median, their median).

    Waits `settle` seconds after each: ONNX Runtime's and OpenCV's worker
    threads keep spinning for a while after a call returns, and would
    otherwise take a core from whatever runs next.
    """
    a, b = [], []
    for _ in range(rounds):
        b.append(theirs())
        time.sleep(settle)
        a.append(ours())
        time.sleep(settle)
    return statistics.median(a), statistics.median(b)
