"""Pipelines doing real work: `sluice run` on the bundled example and on failing definitions, and
`sluice runner` as a separate process against a server (logs, a clean task environment,
cancellation, and a runner killed mid-task whose lease expires so another runner finishes)."""

import csv
import datetime
import json
import os
import pathlib
import signal
import subprocess
import time

import pytest

from conftest import ROOT, SLUICE, Server, unique
from test_scheduler import Clock, fields, instances, obj, start_of_minute, statuses, wait_for


def sluice_run(definition_path, *args, timeout=120):
    return subprocess.run([SLUICE, "run", str(definition_path), *args], capture_output=True, text=True,
                          timeout=timeout, env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")})


def test_sluice_run_copies_and_transforms_the_bundled_example(tmp_path):
    out = tmp_path / "out"
    result = sluice_run(ROOT / "examples" / "orders.json", "--param", f"myOutputDir=file://{out}",
                        "--param", "myOrderCount=5000", "--log-dir", str(tmp_path / "logs"))
    assert result.returncode == 0, result.stderr + result.stdout
    with open(out / "raw" / "orders.csv") as handle:
        orders = list(csv.DictReader(handle))
    assert len(orders) == 5000
    with open(out / "totals" / "region_totals.csv") as handle:
        totals = {row["region"]: row for row in csv.DictReader(handle)}
    assert set(totals) == {"north", "south", "east", "west", "central"}
    assert sum(int(row["orders"]) for row in totals.values()) == 5000
    expected = sum(int(order["quantity"]) * float(order["unit_price"]) for order in orders
                   if order["region"] == "east")
    assert abs(float(totals["east"]["revenue"]) - expected) < 0.5
    assert "TotalByRegion" in result.stdout and "data: RegionTotals → file://" in result.stdout
    stdout_logs = list((tmp_path / "logs").glob("df-*/TotalByRegion/*/*/stdout"))
    assert len(stdout_logs) == 1 and "region,orders,revenue" in stdout_logs[0].read_text()
    pipeline_id = stdout_logs[0].parts[-5]
    # `sluice logs` reads them back, from the runner's folder and from pipelineLogUri.
    for source in (["--log-dir", str(tmp_path / "logs")], ["--log-uri", f"file://{out}/logs"]):
        shown = subprocess.run([SLUICE, "logs", pipeline_id, *source], capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert "region,orders,revenue" in shown.stdout and "_Attempt=1 stdout <==" in shown.stdout
    one = subprocess.run([SLUICE, "logs", pipeline_id, stdout_logs[0].parts[-3].replace("_", ":", 0),
                          "--log-dir", str(tmp_path / "logs")], capture_output=True, text=True, timeout=60)
    assert one.returncode == 0 and "region,orders,revenue" in one.stdout and "orders.csv" not in one.stdout


def test_sluice_run_reports_failures_and_exits_non_zero(tmp_path):
    definition = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand", "workerGroup": "local",
         "failureAndRerunMode": "cascade"},
        {"id": "Broken", "name": "Broken", "type": "ShellCommandActivity",
         "command": "echo 'no such table: orders' >&2; exit 3"},
        {"id": "After", "name": "After", "type": "ShellCommandActivity", "command": "true",
         "dependsOn": {"ref": "Broken"}},
    ]}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(definition))
    result = sluice_run(path, "--log-dir", str(tmp_path / "logs"))
    assert result.returncode == 1, result.stderr + result.stdout
    assert "exited with status 3: no such table: orders" in result.stdout
    assert "CASCADE_FAILED" in result.stdout

    # Types Sluice cannot run are refused at activation, with the list, not at 3 a.m.
    definition["objects"] += [
        {"id": "Pig", "name": "Pig", "type": "PigActivity", "script": "A = LOAD 'x';", "runsOn": {"ref": "Cluster"}},
        {"id": "Cluster", "name": "Cluster", "type": "EmrCluster"},
        {"id": "Table", "name": "Table", "type": "DynamoDBDataNode", "tableName": "orders"},
    ]
    path.write_text(json.dumps(definition))
    result = sluice_run(path)
    assert result.returncode == 2
    assert "Pig: Sluice does not run Pig Latin" in result.stderr, result.stderr
    assert "Table: Sluice does not support DynamoDBDataNode yet" in result.stderr, result.stderr

    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"objects": [{"id": "X", "type": "ShellCommandActivity"}]}))
    result = sluice_run(invalid)
    assert result.returncode == 2 and "does not validate" in result.stderr


def runner_process(server, tmp_path, group, *extra, profile=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(SLUICE_LOG="info")
    if profile:
        # Credentials the way AWS tools also take them: a profile of a shared credentials file.
        credentials = tmp_path / "aws-credentials"
        credentials.write_text(f"[default]\naws_access_key_id = AKIAWRONGWRONGWRONG\n"
                               f"aws_secret_access_key = wrong\n\n[sluice-runner]\n"
                               f"aws_access_key_id = {server.access_key_id}\n"
                               f"aws_secret_access_key = {server.secret_access_key}\n")
        env.update(AWS_SHARED_CREDENTIALS_FILE=str(credentials), AWS_PROFILE="sluice-runner")
    else:
        env.update(AWS_ACCESS_KEY_ID=server.access_key_id, AWS_SECRET_ACCESS_KEY=server.secret_access_key)
    log = open(tmp_path / f"runner-{group}-{time.time_ns()}.log", "wb")
    return subprocess.Popen(
        [SLUICE, "runner", "--endpoint", server.url, "--worker-group", group, "--ca-bundle", server.cert,
         "--work-dir", str(tmp_path / "work"), "--log-dir", str(tmp_path / "logs"), *extra],
        stdout=log, stderr=log, env=env)


def define_on_demand(client, group, *objects):
    pipeline_id = client.create_pipeline(name="runner", uniqueId=unique())["pipelineId"]
    result = client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=[
        obj("Default", workerGroup=group, scheduleType="ondemand"), *objects])
    assert not result["errored"], result
    client.activate_pipeline(pipelineId=pipeline_id)
    return pipeline_id


def test_a_remote_runner_runs_tasks_without_its_own_credentials(tmp_path):
    server = Server(tmp_path / "data", extra_args=["--scheduler-tick-ms", "50"]).start()
    runner = runner_process(server, tmp_path, "remote", "--progress-seconds", "1")
    try:
        client = server.client()
        pipeline_id = define_on_demand(client, "remote", obj("Env", type="ShellCommandActivity",
                                                            command="env; echo args: $1 $2",
                                                            scriptArgument=["first", "second"]))
        wait_for(lambda: set(statuses(client, pipeline_id).values()) == {"FINISHED"}, timeout=30,
                 what="the remote runner to finish the task")
        (stdout,) = (tmp_path / "logs").glob(f"{pipeline_id}/Env/*/*/stdout")
        text = stdout.read_text()
        assert "args: first second" in text
        assert server.secret_access_key not in text and "AWS_" not in text, "the task saw the runner's credentials"
        attempt_id = client.query_objects(pipelineId=pipeline_id, sphere="ATTEMPT")["ids"][0]
        attempt = fields(client.describe_objects(pipelineId=pipeline_id, objectIds=[attempt_id])["pipelineObjects"][0])
        assert attempt["@status"] == "FINISHED" and attempt["hostname"]

        # A task's secrets are masked in its logs and in the error it reports.
        leaky = define_on_demand(client, "remote", obj(
            "Leaky", type="ShellCommandActivity", **{"*myToken": "tok-secret-98765"},
            command="echo token=#{*myToken}; echo 'failed with #{*myToken}' >&2; exit 4"))
        wait_for(lambda: set(statuses(client, leaky).values()) == {"FAILED"}, timeout=30, what="the leaky task")
        (leaky_stdout,) = (tmp_path / "logs").glob(f"{leaky}/Leaky/*/*/stdout")
        assert leaky_stdout.read_text() == "token=HIDDEN_DUE_TO_SECURITY_REASONS\n"
        (leaky_stderr,) = (tmp_path / "logs").glob(f"{leaky}/Leaky/*/*/stderr")
        assert "tok-secret-98765" not in leaky_stderr.read_text()
        leaky_attempt = client.query_objects(pipelineId=leaky, sphere="ATTEMPT")["ids"][0]
        message = fields(client.describe_objects(pipelineId=leaky, objectIds=[leaky_attempt])["pipelineObjects"][0])[
            "errorMessage"]
        assert "failed with HIDDEN_DUE_TO_SECURITY_REASONS" in message and "tok-secret" not in message

        # Cancellation reaches the running process through ReportTaskProgress.
        slow = define_on_demand(client, "remote", obj("Slow", type="ShellCommandActivity", command="sleep 60"))
        wait_for(lambda: set(statuses(client, slow).values()) == {"RUNNING"}, timeout=30, what="the slow task running")
        instance_id = list(statuses(client, slow))[0]
        # (The attempt is RUNNING from its hand-out; the runner makes its folder just after.)
        wait_for(lambda: list((tmp_path / "work").rglob("*Slow*")), timeout=10,
                 what="the attempt's folder to exist while it runs")
        started = time.time()
        client.set_status(pipelineId=slow, objectIds=[instance_id], status="TRY_CANCEL")
        wait_for(lambda: list((tmp_path / "work").rglob("*Slow*")) == [], timeout=20,
                 what="the cancelled process to be stopped and cleaned up")
        assert time.time() - started < 20
        assert statuses(client, slow)[instance_id] == "CANCELED"
    finally:
        runner.send_signal(signal.SIGINT)
        runner.wait(timeout=30)
        server.stop()


def test_a_killed_runner_loses_its_lease_and_another_runner_finishes(tmp_path):
    clock = Clock(tmp_path / "clock", start_of_minute())
    server = Server(tmp_path / "data", extra_args=[
        "--clock-file", str(tmp_path / "clock"), "--scheduler-tick-ms", "50"]).start()
    first = runner_process(server, tmp_path, "fragile", "--progress-seconds", "1")
    second = None
    try:
        client = server.client()
        marker = tmp_path / "attempts"
        pipeline_id = define_on_demand(client, "fragile", obj(
            "Work", type="ShellCommandActivity", maximumRetries="1", retryDelay="1 minute",
            command=f"echo x >> {marker}; if [ $(wc -l < {marker}) -lt 2 ]; then sleep 120; fi"))
        wait_for(lambda: marker.exists(), timeout=30, what="the first runner to start the task")
        attempt_id = client.query_objects(pipelineId=pipeline_id, sphere="ATTEMPT")["ids"][0]
        assert "reportProgressTime" in fields(client.describe_objects(
            pipelineId=pipeline_id, objectIds=[attempt_id])["pipelineObjects"][0]), "acknowledged before it ran"
        first.kill()
        first.wait(timeout=10)
        clock.advance(minutes=16)
        wait_for(lambda: len(client.query_objects(pipelineId=pipeline_id, sphere="ATTEMPT")["ids"]) == 2,
                 what="the lease to expire and a retry to be queued")
        clock.advance(minutes=1)
        second = runner_process(server, tmp_path, "fragile", "--progress-seconds", "1", profile=True)
        wait_for(lambda: set(statuses(client, pipeline_id).values()) == {"FINISHED"}, timeout=30,
                 what="the second runner to finish the retry")
        assert marker.read_text().count("x") == 2
    finally:
        for process in (first, second):
            if process and process.poll() is None:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=30)
        server.stop()


def test_poll_for_task_is_a_long_poll(tmp_path):
    import threading
    server = Server(tmp_path / "data", extra_args=["--poll-wait-seconds", "3"]).start()
    try:
        client = server.client()
        started = time.time()
        assert client.poll_for_task(workerGroup="nobody-serves-this").get("taskObject") is None
        assert 2.8 < time.time() - started < 6, "an empty poll waits for the poll wait"
        result = {}

        def poll():
            result["task"] = server.client().poll_for_task(workerGroup="long").get("taskObject")
            result["at"] = time.time()

        waiter = threading.Thread(target=poll)
        waiter.start()
        time.sleep(1.0)
        queued_at = time.time()
        define_on_demand(client, "long", obj("Quick", type="ShellCommandActivity", command="true"))
        waiter.join(timeout=10)
        assert result.get("task") is not None, "the waiting poll got the task"
        assert result["at"] - queued_at < 2.0, "promptly, not at the end of the wait"
    finally:
        server.stop()


def test_copy_activity_between_folders_and_a_bucket_with_gzip(tmp_path, s3_server):
    import gzip

    import boto3
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("1,alpha\n2,beta\n")
    (tmp_path / "in" / "b.csv").write_text("3,gamma\n")
    s3 = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1",
                      aws_access_key_id=s3_server.ACCESS_KEY, aws_secret_access_key=s3_server.SECRET_KEY)
    s3.create_bucket(Bucket="copies")
    definition = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand", "workerGroup": "local"},
        {"id": "Local", "name": "Local", "type": "S3DataNode", "directoryPath": f"file://{tmp_path}/in"},
        {"id": "Bucket", "name": "Bucket", "type": "S3DataNode", "directoryPath": "s3://copies/gz",
         "compression": "gzip"},
        {"id": "Back", "name": "Back", "type": "S3DataNode", "filePath": f"file://{tmp_path}/back/all.csv"},
        {"id": "ToBucket", "name": "ToBucket", "type": "CopyActivity", "input": {"ref": "Local"},
         "output": {"ref": "Bucket"}},
        {"id": "FromBucket", "name": "FromBucket", "type": "CopyActivity", "input": {"ref": "Bucket"},
         "output": {"ref": "Back"}},
    ]}
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(definition))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(s3_server.env)
    result = subprocess.run([SLUICE, "run", str(path), "--s3-endpoint", s3_server.endpoint,
                             "--log-dir", str(tmp_path / "logs")], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    stored = s3.get_object(Bucket="copies", Key="gz/a.csv")["Body"].read()
    assert gzip.decompress(stored) == b"1,alpha\n2,beta\n", "compressed on the way in"
    assert (tmp_path / "back" / "all.csv").read_text() == "1,alpha\n2,beta\n3,gamma\n"
    (summary,) = (tmp_path / "logs").glob("df-*/FromBucket/*/*/stdout")
    assert "copied 2 object(s)" in summary.read_text()


def test_sql_activity_on_postgresql_and_mariadb(tmp_path):
    table = f"sluice_e2e_{time.time_ns()}"
    definition = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand", "workerGroup": "local",
         "failureAndRerunMode": "cascade"},
        {"id": "Pg", "name": "Pg", "type": "JdbcDatabase", "jdbcDriverClass": "org.postgresql.Driver",
         "connectionString": "jdbc:postgresql://127.0.0.1:5432/test", "username": "postgres", "*password": "unused"},
        {"id": "Maria", "name": "Maria", "type": "JdbcDatabase", "jdbcDriverClass": "com.mysql.jdbc.Driver",
         "connectionString": "jdbc:mysql://127.0.0.1:3306/test", "username": "sluice_e2e",
         "*password": "e2e-Secret/pw@1"},
        {"id": "PgLoad", "name": "PgLoad", "type": "SqlActivity", "database": {"ref": "Pg"},
         "script": f"CREATE TABLE {table} (id int, region text); "
                   f"INSERT INTO {table} VALUES (1, 'north'), (2, 'south'), (3, 'north');"},
        {"id": "MariaLoad", "name": "MariaLoad", "type": "SqlActivity", "database": {"ref": "Maria"},
         "script": f"CREATE TABLE {table} (id int, region varchar(20)); INSERT INTO {table} VALUES (7, 'east');"},
        {"id": "MariaArgs", "name": "MariaArgs", "type": "SqlActivity", "database": {"ref": "Maria"},
         "script": f"INSERT INTO {table} VALUES (?, ?)", "scriptArgument": ["8", "west"],
         "dependsOn": {"ref": "MariaLoad"}},
        {"id": "Broken", "name": "Broken", "type": "SqlActivity", "database": {"ref": "Pg"},
         "script": "SELECT * FROM no_such_table_sluice", "dependsOn": {"ref": "PgLoad"}},
    ]}
    subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "-e",
                    "CREATE USER IF NOT EXISTS 'sluice_e2e'@'%' IDENTIFIED BY 'e2e-Secret/pw@1'; "
                    "CREATE USER IF NOT EXISTS 'sluice_e2e'@'localhost' IDENTIFIED BY 'e2e-Secret/pw@1'; "
                    "GRANT ALL ON test.* TO 'sluice_e2e'@'%'; GRANT ALL ON test.* TO 'sluice_e2e'@'localhost';"],
                   check=True, capture_output=True)
    path = tmp_path / "sql.json"
    path.write_text(json.dumps(definition))
    try:
        result = sluice_run(path, "--log-dir", str(tmp_path / "logs"))
        assert result.returncode == 1, result.stderr + result.stdout
        assert 'relation "no_such_table_sluice" does not exist' in result.stdout
        output = result.stdout + result.stderr
        assert "unused" not in output and "e2e-Secret" not in output, "passwords never show"
        for log in (tmp_path / "logs").rglob("*"):
            if log.is_file():
                assert "e2e-Secret" not in log.read_text()
        rows = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-tA", "-c",
                               f"SELECT count(*) FROM {table} WHERE region = 'north'"],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert rows == "2"
        rows = subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "test", "-N", "-e",
                               f"SELECT id, region FROM {table} ORDER BY id"],
                              capture_output=True, text=True, check=True).stdout.split("\n")
        assert rows[:2] == ["7\teast", "8\twest"]
    finally:
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-c",
                        f"DROP TABLE IF EXISTS {table}"], capture_output=True)
        subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "test", "-e",
                        f"DROP TABLE IF EXISTS {table}"], capture_output=True)


@pytest.mark.sqlite_only
def test_sluice_serve_runs_local_tasks_in_process(tmp_path):
    import sqlite3
    server = Server(tmp_path / "data", extra_args=["--worker-group", "local",
                                                   "--runner-dir", str(tmp_path / "runner")]).start()
    try:
        client = server.client()
        pipeline_id = define_on_demand(client, "local", obj("Hello", type="ShellCommandActivity",
                                                           command="echo in-process"))
        wait_for(lambda: set(statuses(client, pipeline_id).values()) == {"FINISHED"}, timeout=30,
                 what="the in-process runner to run the task")
        (stdout,) = (tmp_path / "runner" / "logs").glob(f"{pipeline_id}/Hello/*/*/stdout")
        assert stdout.read_text() == "in-process\n"
        database = sqlite3.connect(tmp_path / "data" / "sluice.db")
        keys = [row[0] for row in database.execute("SELECT access_key_id FROM access_keys")]
        database.close()
        assert sum(key.startswith("AKIAINPROCESS") for key in keys) == 1, "one key minted for the runner"
        # ... for a service user that may only run tasks, not for the root identity.
        database = sqlite3.connect(tmp_path / "data" / "sluice.db")
        (owner,) = database.execute("SELECT i.name FROM access_keys k JOIN identities i ON i.identity_id = "
                                    "k.identity_id WHERE k.access_key_id LIKE 'AKIAINPROCESS%'").fetchone()
        (policy,) = database.execute("SELECT p.policy_arn FROM policy_attachments p JOIN identities i ON "
                                     "i.identity_id = p.identity_id WHERE i.name = ?", (owner,)).fetchone()
        database.close()
        assert (owner, policy) == ("sluice-in-process-runner", "arn:aws:iam::aws:policy/SluiceInProcessRunner")
    finally:
        server.stop()
    database = sqlite3.connect(tmp_path / "data" / "sluice.db")
    keys = [row[0] for row in database.execute("SELECT access_key_id FROM access_keys")]
    database.close()
    assert not any(key.startswith("AKIAINPROCESS") for key in keys), "the runner's key dies with the server"


def by_component(client, pipeline_id):
    return {fields(item)["@componentParent"]: fields(item)["@status"] for item in instances(client, pipeline_id)}


def test_sluice_serve_run_resources_stands_in_for_every_pipelines_ec2_resource(tmp_path):
    server = Server(tmp_path / "data", extra_args=["--run-resources", "--runner-dir", str(tmp_path / "runner")]).start()
    try:
        client = server.client()
        pipelines = []
        for name in ("first", "second"):
            pipeline_id = client.create_pipeline(name=name, uniqueId=unique())["pipelineId"]
            result = client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=[
                obj("Default", scheduleType="ondemand"),
                obj("Machine", type="Ec2Resource", terminateAfter="1 Hour", role="DataPipelineDefaultRole",
                    resourceRole="DataPipelineDefaultResourceRole"),
                obj("Work", type="ShellCommandActivity", command=f"echo on {name}", runsOn={"ref": "Machine"}),
                obj("Elsewhere", type="ShellCommandActivity", command="echo never", workerGroup="remote-only")])
            assert not result["errored"], result
            client.activate_pipeline(pipelineId=pipeline_id)
            pipelines.append(pipeline_id)
        for pipeline_id in pipelines:
            wait_for(lambda: by_component(client, pipeline_id).get("Work") == "FINISHED", timeout=30,
                     what="the in-process runner to run the resource's work")
        (first,) = (tmp_path / "runner" / "logs").glob(f"{pipelines[0]}/Work/*/*/stdout")
        assert first.read_text() == "on first\n"
        time.sleep(1)
        # A worker group it was not given stays for a runner that polls it.
        assert all(by_component(client, pipeline_id).get("Elsewhere") == "WAITING_FOR_RUNNER" for pipeline_id in pipelines)
        wait_for(lambda: by_component(client, pipelines[0]).get("Machine") == "FINISHED", timeout=30,
                 what="the resource to end once its work has")
    finally:
        server.stop()


def test_sluice_run_interrupted_cancels_and_says_what_was_left(tmp_path):
    definition = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand", "workerGroup": "local"},
        {"id": "Long", "name": "Long", "type": "ShellCommandActivity", "command": f"touch {tmp_path}/started; sleep 60"},
        {"id": "After", "name": "After", "type": "ShellCommandActivity", "command": "true",
         "dependsOn": {"ref": "Long"}},
    ]}
    path = tmp_path / "long.json"
    path.write_text(json.dumps(definition))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = subprocess.Popen([SLUICE, "run", str(path), "--log-dir", str(tmp_path / "logs")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for(lambda: (tmp_path / "started").exists(), timeout=30, what="the long task to start")
        started = time.time()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert time.time() - started < 20, "the running task was stopped, not waited for"
    assert "interrupted" in stderr
    assert "not run: @After_" in stdout
    assert "@Long_" in stdout and "CANCELED" in stdout
