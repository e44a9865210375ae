#!/usr/bin/env python3
"""A job's estimated peak memory against the peak resident memory of the run.

    bench/job_memory.py [--isif build/isif] [--big] [CONFIG ...]

Runs `isif train` on Fashion-MNIST (Debian's dataset-fashion-mnist) for each
configuration (one epoch, or two where the second differs), and prints the estimate `isif train` reports (the
figure isifd checks against --max-job-memory at submit) beside the process's
peak RSS (ru_maxrss of the child). The process's own baseline (code,
libraries: a few MiB) is in the measured figure and not in the estimate.
--big runs the operator's spec (alone unless configurations are named) (resnet18, batch 1024, embedding 4096,
train_subset 2048): about 9 GiB and minutes of CPU time, evaluation off.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

CONFIGS = {
    # 2 epochs: below 256 rows the evaluation re-plans the model for its
    # batches of 256, and the epoch after it trains in that plan
    "convnet-b64": {"model": "convnet", "batch_size": 64, "train_subset": 1024, "epochs": 2},
    "convnet-b512": {"model": "convnet", "batch_size": 512, "train_subset": 1024},
    "resnet20-b128": {"model": "resnet20", "batch_size": 128, "train_subset": 512},
    "resnet20-b512": {"model": "resnet20", "batch_size": 512, "train_subset": 512,
                      "eval": {"every": 0}},
    # one class tested: 1000 test images keep the resnet18 evaluation short
    "resnet18-b128": {"model": "resnet18", "batch_size": 128, "train_subset": 256,
                      "classes": {"train": [0, 1, 2], "test": [0]}},
}
BIG = {"model": "resnet18", "batch_size": 1024, "embedding_dim": 4096, "train_subset": 2048,
       "eval": {"every": 0}}


def run(isif, name, spec):
    spec = dict({"epochs": 1}, **spec, dataset="fashion-mnist")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "spec.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        t0 = time.time()
        child = subprocess.Popen([isif, "train", "--spec", path, "--out", os.path.join(d, "run"),
                                  "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        stdout, stderr = child.stdout.read(), child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)   # this child's own rusage
        child.returncode = os.waitstatus_to_exitcode(status)
        out = subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)
        if out.returncode != 0:
            print("%-16s failed: %s" % (name, out.stderr.strip()[-200:]))
            return
        m = re.search(r"memory: estimated peak ([0-9.]+) MiB", out.stdout)
        est = float(m.group(1)) if m else float("nan")
        measured = usage.ru_maxrss / 1024.0   # KiB on Linux
        print("%-16s estimate %8.1f MiB  measured %8.1f MiB  %+6.1f%%  (%.0f s)" % (
            name, est, measured, 100.0 * (est - measured) / measured, time.time() - t0),
            flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--isif", default="build/isif")
    ap.add_argument("--big", action="store_true")
    ap.add_argument("configs", nargs="*")
    a = ap.parse_args()
    names = a.configs or ([] if a.big else list(CONFIGS))
    for name in names:
        run(a.isif, name, CONFIGS[name])
    if a.big:
        run(a.isif, "resnet18-b1024-d4096", BIG)


if __name__ == "__main__":
    sys.exit(main())
