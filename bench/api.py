"""API latency and throughput of one `sluice serve` (a benchmark, not a test).

Sequential signed requests over one keep-alive HTTPS connection, so the figure is the server's
per-request cost plus one loopback round trip and the client's signing; run with a release build:

    cargo build --release && SLUICE_BIN=target/release/sluice .venv/bin/python bench/api.py
"""

import datetime
import http.client
import json
import os
import pathlib
import ssl
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from conftest import Server, sigv4_authorization  # noqa: E402

N = int(os.environ.get("BENCH_REQUESTS", "2000"))
DEFINITION = json.loads((pathlib.Path(__file__).resolve().parents[1] / "bench" / "definition.json").read_text())


def run(server, connection, target, make_body, n, key=None):
    key_id, secret = key or (server.access_key_id, server.secret_access_key)
    latencies = []
    for index in range(n):
        body = json.dumps(make_body(index)).encode()
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        headers = {"host": f"localhost:{server.port}", "content-type": "application/x-amz-json-1.1",
                   "x-amz-target": target, "x-amz-date": now}
        headers["authorization"] = sigv4_authorization("POST", "/", sorted(headers), headers, body,
                                                       key_id, secret, now)
        started = time.perf_counter()
        connection.request("POST", "/", body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise SystemExit(f"{target} failed: {payload!r}")
    latencies.sort()
    total = sum(latencies)
    print(f"{target:<40} n={n:<6} {n / total:8.0f} req/s   p50 {statistics.median(latencies) * 1e3:6.2f} ms"
          f"   p99 {latencies[int(n * 0.99) - 1] * 1e3:6.2f} ms")


def main():
    with tempfile.TemporaryDirectory() as directory:
        server = Server(pathlib.Path(directory) / "data").start()
        try:
            context = ssl.create_default_context(cafile=server.cert)
            connection = http.client.HTTPSConnection("localhost", server.port, context=context)
            pipeline_id = server.client().create_pipeline(name="bench", uniqueId="bench")["pipelineId"]
            run(server, connection, "DataPipeline.ListPipelines", lambda i: {}, N)
            run(server, connection, "DataPipeline.CreatePipeline", lambda i: {"name": f"p{i}", "uniqueId": f"u{i}"}, min(N, 900))
            run(server, connection, "DataPipeline.PutPipelineDefinition",
                lambda i: {"pipelineId": pipeline_id, **DEFINITION}, N)
            run(server, connection, "DataPipeline.GetPipelineDefinition", lambda i: {"pipelineId": pipeline_id}, N)
            # DescribePipelines as an IAM user with a policy attached, the path every non-root
            # call takes; the server's own time per call comes from its request log (elapsed_us).
            server.iam("CreateUser", {"UserName": "bench"})
            server.iam("AttachUserPolicy", {"UserName": "bench",
                                            "PolicyArn": "arn:aws:iam::aws:policy/SluiceReadOnlyAccess"})
            key = server.iam("CreateAccessKey", {"UserName": "bench"})[1]["AccessKey"]
            run(server, connection, "DataPipeline.DescribePipelines", lambda i: {"pipelineIds": [pipeline_id]}, N,
                key=(key["AccessKeyId"], key["SecretAccessKey"]))
            server.log.flush()
            times = sorted(int(line.split("elapsed_us=")[1].split()[0]) for line in open(server.log_path)
                           if "DataPipeline.DescribePipelines" in line and "elapsed_us=" in line)
            print(f"server time per DescribePipelines (request log, n={len(times)}): "
                  f"p50 {statistics.median(times)} µs, p99 {times[int(len(times) * 0.99) - 1]} µs")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
