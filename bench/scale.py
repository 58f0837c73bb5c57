"""Trivial-task throughput against PostgreSQL with 1, 2 and 4 task runners (a benchmark, not a
test; the [scale] issue's target is >= 2,000 tasks/s and p99 poll-to-task <= 10 ms).

For each runner count: a fresh PostgreSQL database, one `sluice serve --store postgres://...`,
P on-demand pipelines of T ShellCommandActivity `true` tasks each (AWS's limit is 100 objects
per pipeline), all activated, then R `sluice runner` processes (each --concurrency C) started
together. Throughput = tasks / (last task ended - first task started), from the runners' logs;
poll-to-task = how long each PollForTask that brought a task took, as the runner measured it.

Usage: python3 bench/scale.py [--pipelines 10] [--tasks 99] [--runners 1,2,4] [--concurrency 8] [--sqlite]
(needs target/release/sluice, PostgreSQL at 127.0.0.1:5432 and .venv with boto3; --sqlite runs the
same load on the embedded store)"""

import argparse
import datetime
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import uuid

import boto3
import botocore.config

ROOT = pathlib.Path(__file__).resolve().parents[1]
SLUICE = os.environ.get("SLUICE_BIN", str(ROOT / "target" / "release" / "sluice"))
POSTGRES = os.environ.get("SLUICE_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
LINE = re.compile(r"^(\S+Z)\s+INFO .*task (started|ended)")
POLL = re.compile(r"poll_ms=\"?([0-9.]+)")


def psql(sql):
    subprocess.run(["psql", f"{POSTGRES}/postgres", "-qc", sql], check=True, capture_output=True, timeout=60)


def timestamp(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def one_run(runners, pipelines, tasks, concurrency, directory, sqlite):
    database = f"sluice_bench_{uuid.uuid4().hex[:10]}"
    store = []
    if not sqlite:
        psql(f'CREATE DATABASE "{database}"')
        # SLUICE_BENCH_STORE_QUERY, e.g. `?host=/var/run/postgresql`, reaches PostgreSQL another way.
        store = ["--store", f"{POSTGRES}/{database}{os.environ.get('SLUICE_BENCH_STORE_QUERY', '')}"]
    data = directory / f"data-{runners}"
    server_log = open(directory / f"server-{runners}.log", "wb")
    server = subprocess.Popen([SLUICE, "serve", "--data-dir", str(data), "--listen", "127.0.0.1:0", *store,
                               "--no-runner", "--poll-wait-seconds", "2"],
                              stdout=subprocess.PIPE, stderr=server_log, env={**os.environ, "SLUICE_LOG": os.environ.get("SLUICE_BENCH_SERVER_LOG", "warn")})
    processes = []
    try:
        line = server.stdout.readline().decode()
        url = line.strip().split("listening on ", 1)[1].replace("127.0.0.1", "localhost")
        credentials = json.loads((data / "bootstrap-credentials.json").read_text())
        cert = str(data / "tls" / "cert.pem")
        client = boto3.client("datapipeline", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id=credentials["AccessKeyId"],
                              aws_secret_access_key=credentials["SecretAccessKey"], verify=cert,
                              config=botocore.config.Config(retries={"max_attempts": 3}))
        objects = [{"id": "Default", "name": "Default",
                    "fields": [{"key": "scheduleType", "stringValue": "ondemand"},
                               {"key": "workerGroup", "stringValue": "bench"}]}]
        objects += [{"id": f"T{i}", "name": f"T{i}",
                     "fields": [{"key": "type", "stringValue": "ShellCommandActivity"},
                                {"key": "command", "stringValue": "true"}]} for i in range(tasks)]
        for number in range(pipelines):
            pipeline_id = client.create_pipeline(name=f"bench-{number}", uniqueId=f"bench-{number}")["pipelineId"]
            client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=objects)
            client.activate_pipeline(pipelineId=pipeline_id)
        total = pipelines * tasks
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
               "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
               "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"], "SLUICE_LOG": "info"}
        logs = []
        for number in range(runners):
            log = directory / f"runner-{runners}-{number}.log"
            logs.append(log)
            processes.append(subprocess.Popen(
                [SLUICE, "runner", "--endpoint", url, "--worker-group", "bench", "--ca-bundle", cert,
                 "--concurrency", str(concurrency), "--work-dir", str(directory / f"work-{runners}-{number}"),
                 "--log-dir", str(directory / f"logs-{runners}-{number}"), "--hostname", f"runner-{number}"],
                stdout=subprocess.DEVNULL, stderr=open(log, "wb"), env=env))
        deadline = time.monotonic() + 1800
        while True:
            ended = sum(log.read_text(errors="replace").count("task ended") for log in logs)
            if ended >= total:
                break
            if time.monotonic() > deadline:
                sys.exit(f"only {ended} of {total} tasks ended in 30 minutes")
            time.sleep(0.5)
        starts, ends, polls = [], [], []
        for log in logs:
            for text in log.read_text(errors="replace").splitlines():
                match = LINE.match(text)
                if not match:
                    continue
                if match.group(2) == "started":
                    starts.append(timestamp(match.group(1)))
                    poll = POLL.search(text)
                    if poll:
                        polls.append(float(poll.group(1)))
                else:
                    ends.append(timestamp(match.group(1)))
        elapsed = max(ends) - min(starts)
        return {"runners": runners, "tasks": total, "seconds": elapsed, "per_second": total / elapsed,
                "poll_p50": percentile(polls, 0.50), "poll_p99": percentile(polls, 0.99)}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        server.terminate()
        server.wait(timeout=30)
        # SLUICE_BENCH_KEEP=DIR keeps the server's and runners' logs (with
        # SLUICE_BENCH_SERVER_LOG=info the server logs each request's elapsed time).
        if os.environ.get("SLUICE_BENCH_KEEP"):
            import shutil
            for log in directory.glob(f"*-{runners}*.log"):
                shutil.copy(log, os.environ["SLUICE_BENCH_KEEP"])
        if not sqlite:
            psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipelines", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=99)
    parser.add_argument("--runners", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sqlite", action="store_true", help="the embedded store instead of PostgreSQL")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        for runners in [int(count) for count in options.runners.split(",")]:
            result = one_run(runners, options.pipelines, options.tasks, options.concurrency, pathlib.Path(directory),
                             options.sqlite)
            print(f"{result['runners']} runner(s) x {options.concurrency}: {result['tasks']} tasks in "
                  f"{result['seconds']:.2f} s = {result['per_second']:.0f} tasks/s; poll-to-task p50 "
                  f"{result['poll_p50']:.1f} ms, p99 {result['poll_p99']:.1f} ms", flush=True)


main()
