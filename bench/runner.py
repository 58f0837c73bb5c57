"""Orchestration overhead per task of `sluice run` (a benchmark, not a test): a chain and a
fan-out of ShellCommandActivity `true`, embedded store, in-process runner. Per-task figure =
(time for N tasks - time for 1 task) / (N - 1), so server start-up is not counted.
Usage: python3 bench/runner.py [N ...]  (needs target/release/sluice)"""

import json
import os
import subprocess
import sys
import tempfile
import time

SLUICE = os.environ.get("SLUICE_BIN", "target/release/sluice")


def definition(n, chain):
    objects = [{"id": "Default", "name": "Default", "scheduleType": "ondemand", "workerGroup": "local"}]
    for i in range(n):
        task = {"id": f"T{i}", "name": f"T{i}", "type": "ShellCommandActivity", "command": "true"}
        if chain and i:
            task["dependsOn"] = {"ref": f"T{i - 1}"}
        objects.append(task)
    return {"objects": objects}


def timed(n, chain, directory):
    path = os.path.join(directory, f"{'chain' if chain else 'fanout'}-{n}.json")
    with open(path, "w") as handle:
        json.dump(definition(n, chain), handle)
    started = time.perf_counter()
    result = subprocess.run([SLUICE, "run", path, "--max-objects", str(n + 1), "--concurrency", "8",
                             "--log-dir", os.path.join(directory, "logs")], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"sluice run failed: {result.stderr[-2000:]}")
    return elapsed


def main():
    sizes = [int(size) for size in sys.argv[1:]] or [100, 1000]
    with tempfile.TemporaryDirectory() as directory:
        base = min(timed(1, False, directory) for _ in range(3))
        print(f"1 task: {base:.2f} s (start-up, create, put, activate, run, stop)")
        for n in sizes:
            for chain in (False, True):
                elapsed = timed(n, chain, directory)
                per_task = (elapsed - base) / (n - 1) * 1000
                kind = "chain" if chain else "fan-out"
                print(f"{kind} of {n}: {elapsed:.2f} s; {per_task:.1f} ms/task; {n / (elapsed - base):.0f} tasks/s")


main()
