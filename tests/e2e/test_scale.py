"""Several `sluice serve` processes on one PostgreSQL database: all answer the API, exactly one
runs the scheduler (a lease with an epoch that fences a former holder), and when it dies another
takes over within seconds and runs what is due."""

import json
import os
import pathlib
import shutil
import ssl
import subprocess
import time
import urllib.request

import pytest

from conftest import Server, postgres_database_for, wait_for

# These always run against PostgreSQL: the suite's PostgreSQL pass need not run them again.
if os.environ.get("SLUICE_TEST_STORE") == "postgres":
    pytest.skip("run against PostgreSQL in the first pass already", allow_module_level=True)


def status(server):
    context = ssl.create_default_context(cafile=server.cert)
    with urllib.request.urlopen(server.url + "/sluice/status", context=context, timeout=10) as answer:
        return json.loads(answer.read())


def instance_status(client, pipeline_id):
    ids = client.query_objects(pipelineId=pipeline_id, sphere="INSTANCE")["ids"]
    if not ids:
        return None
    objects = client.describe_objects(pipelineId=pipeline_id, objectIds=ids)["pipelineObjects"]
    return {f["key"]: f.get("stringValue") for f in objects[0]["fields"]}.get("@status")


def test_two_servers_share_a_database_and_one_takes_over_the_scheduler(tmp_path):
    store = postgres_database_for(tmp_path / "shared-store")
    keys = tmp_path / "keys"
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first = Server(first_dir, extra_args=["--store", store, "--key-dir", str(keys)]).start()
    second = None
    try:
        wait_for("the first server to take the scheduler", lambda: status(first)["scheduler"]["leader"], 15)
        # The second server finds the account the first created: it signs in with the same key.
        second_dir.mkdir(mode=0o700)
        shutil.copy(first_dir / "bootstrap-credentials.json", second_dir / "bootstrap-credentials.json")
        second = Server(second_dir, extra_args=["--store", store, "--key-dir", str(keys), "--worker-group", "wg",
                                                "--runner-dir", str(tmp_path / "runner")]).start()
        assert second.access_key_id == first.access_key_id
        time.sleep(1.5)
        assert status(second)["scheduler"]["leader"] is False and status(first)["scheduler"]["leader"] is True

        # Both answer the API over the same state.
        pipeline_id = first.client().create_pipeline(name="shared", uniqueId="shared")["pipelineId"]
        assert [p["id"] for p in second.client().list_pipelines()["pipelineIdList"]] == [pipeline_id]
        second.client().put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=[
            {"id": "Default", "name": "Default", "fields": [
                {"key": "scheduleType", "stringValue": "ondemand"}, {"key": "workerGroup", "stringValue": "wg"}]},
            {"id": "Hello", "name": "Hello", "fields": [
                {"key": "type", "stringValue": "ShellCommandActivity"}, {"key": "command", "stringValue": "echo hi"}]},
        ])

        # The leader dies without a word; the other takes the lease within seconds and runs the
        # pipeline activated through it.
        first.process.kill()
        first.process.wait(timeout=10)
        took_over = time.time()
        wait_for("the second server to take the scheduler", lambda: status(second)["scheduler"]["leader"], 30)
        assert time.time() - took_over < 15
        client = second.client()
        client.activate_pipeline(pipelineId=pipeline_id)
        wait_for("the instance to finish", lambda: instance_status(client, pipeline_id) == "FINISHED", 60)
        log = pathlib.Path(str(second_dir) + ".log").read_text(errors="replace")
        assert "this server runs the scheduler" in log
    finally:
        first.stop()
        if second:
            second.stop()


def test_killing_the_leader_during_a_500_task_run_loses_no_instance_and_finishes_none_twice(tmp_path):
    """A fault test: two servers on one database, two runners (on the server that stays), 500
    tasks; the scheduler's server is killed with SIGKILL part-way. The other takes over; every
    instance finishes exactly once and every attempt is accounted for."""
    from test_runner import runner_process
    store = postgres_database_for(tmp_path / "shared-store")
    keys = tmp_path / "keys"
    common = ["--store", store, "--key-dir", str(keys), "--max-objects", "600", "--task-ack-seconds", "5"]
    first = Server(tmp_path / "first", extra_args=common).start()
    second, runners = None, []
    try:
        wait_for("the first server to take the scheduler", lambda: status(first)["scheduler"]["leader"], 15)
        (tmp_path / "second").mkdir(mode=0o700)
        shutil.copy(tmp_path / "first" / "bootstrap-credentials.json", tmp_path / "second" / "bootstrap-credentials.json")
        second = Server(tmp_path / "second", extra_args=common).start()
        runners = [runner_process(second, tmp_path, "wg", "--concurrency", "8") for _ in range(2)]

        client = second.client()
        pipeline_id = client.create_pipeline(name="fan-out", uniqueId="fan-out")["pipelineId"]
        objects = [{"id": "Default", "name": "Default", "fields": [
            {"key": "scheduleType", "stringValue": "ondemand"}, {"key": "workerGroup", "stringValue": "wg"},
            {"key": "maximumRetries", "stringValue": "2"}]}]
        objects += [{"id": f"T{i}", "name": f"T{i}", "fields": [
            {"key": "type", "stringValue": "ShellCommandActivity"}, {"key": "command", "stringValue": "true"}]}
            for i in range(500)]
        assert not client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=objects)["errored"]
        client.activate_pipeline(pipelineId=pipeline_id)

        def finished():
            ids = client.query_objects(pipelineId=pipeline_id, sphere="INSTANCE", limit=1000)["ids"]
            done = 0
            for chunk in range(0, len(ids), 100):
                for obj in client.describe_objects(pipelineId=pipeline_id,
                                                   objectIds=ids[chunk:chunk + 100])["pipelineObjects"]:
                    fields = {f["key"]: f.get("stringValue") for f in obj["fields"]}
                    done += fields.get("@status") == "FINISHED"
            return done

        wait_for("a share of the tasks to finish", lambda: finished() >= 50, 120)
        first.process.kill()
        first.process.wait(timeout=10)
        wait_for("the second server to take the scheduler", lambda: status(second)["scheduler"]["leader"], 30)
        wait_for("all 500 instances to finish", lambda: finished() == 500, 300)

        # Every attempt accounted for: each instance has exactly one FINISHED attempt; any other
        # attempt ended (none still running or waiting).
        attempt_ids = []
        marker = None
        while True:
            page = client.query_objects(pipelineId=pipeline_id, sphere="ATTEMPT", limit=1000,
                                        **({"marker": marker} if marker else {}))
            attempt_ids += page["ids"]
            if not page.get("hasMoreResults"):
                break
            marker = page["marker"]
        finished_by_instance = {}
        for chunk in range(0, len(attempt_ids), 100):
            for obj in client.describe_objects(pipelineId=pipeline_id,
                                               objectIds=attempt_ids[chunk:chunk + 100])["pipelineObjects"]:
                fields = {f["key"]: f.get("stringValue", f.get("refValue")) for f in obj["fields"]}
                assert fields["@status"] in ("FINISHED", "FAILED", "TIMEDOUT", "CANCELED"), fields
                if fields["@status"] == "FINISHED":
                    instance = fields["@instanceParent"]
                    finished_by_instance[instance] = finished_by_instance.get(instance, 0) + 1
        assert len(finished_by_instance) == 500 and set(finished_by_instance.values()) == {1}
    finally:
        for runner in runners:
            runner.kill()
        first.stop()
        if second:
            second.stop()


def test_a_runner_killed_mid_task_loses_its_lease_and_the_task_runs_elsewhere(tmp_path):
    """A fault test: the runner holding a task is killed with SIGKILL; once its lease runs out
    the attempt fails and the retry runs on the other runner."""
    from test_runner import runner_process
    store = postgres_database_for(tmp_path / "shared-store")
    server = Server(tmp_path / "data", extra_args=["--store", store, "--task-lease-seconds", "3",
                                                   "--task-ack-seconds", "3"]).start()
    runners = []
    try:
        client = server.client()
        marker = tmp_path / "first-started"
        pipeline_id = client.create_pipeline(name="slow", uniqueId="slow")["pipelineId"]
        assert not client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=[
            {"id": "Default", "name": "Default", "fields": [
                {"key": "scheduleType", "stringValue": "ondemand"}, {"key": "workerGroup", "stringValue": "wg"},
                {"key": "maximumRetries", "stringValue": "2"}, {"key": "retryDelay", "stringValue": "1 minutes"}]},
            # The first attempt takes its time; a retry ends at once.
            {"id": "Slow", "name": "Slow", "fields": [
                {"key": "type", "stringValue": "ShellCommandActivity"},
                {"key": "command", "stringValue": f"if [ -e {marker} ]; then exit 0; fi; touch {marker}; sleep 120"}]},
        ])["errored"]
        doomed = runner_process(server, tmp_path, "wg", "--progress-seconds", "1")
        runners.append(doomed)
        client.activate_pipeline(pipelineId=pipeline_id)
        wait_for("the first attempt to start", marker.exists, 60)
        doomed.kill()
        doomed.wait(timeout=10)
        runners.append(runner_process(server, tmp_path, "wg", "--progress-seconds", "1"))
        wait_for("the retry (a minute later) to finish elsewhere",
                 lambda: instance_status(client, pipeline_id) == "FINISHED", 150)
        attempts = client.query_objects(pipelineId=pipeline_id, sphere="ATTEMPT")["ids"]
        statuses = sorted({f["key"]: f.get("stringValue") for f in obj["fields"]}["@status"]
                          for obj in client.describe_objects(pipelineId=pipeline_id, objectIds=attempts)["pipelineObjects"])
        assert statuses[-1] == "FINISHED" and len(statuses) >= 2 and "FINISHED" not in statuses[:-1], statuses
    finally:
        for runner in runners:
            runner.kill()
        # The killed runner's task process outlives it (it was its own process group).
        subprocess.run(["pkill", "-f", str(marker)], check=False)
        server.stop()


def test_servers_and_runners_recover_by_themselves_when_postgresql_restarts(tmp_path):
    """A fault test: PostgreSQL restarts under a server and a runner; without being restarted
    themselves they answer again and run what is activated afterwards."""
    from test_runner import runner_process
    clusters = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True)
    if clusters.returncode != 0 or not clusters.stdout.strip():
        pytest.skip("no local PostgreSQL cluster this test may restart")
    version, cluster = clusters.stdout.split()[:2]
    store = postgres_database_for(tmp_path / "shared-store")
    server = Server(tmp_path / "data", extra_args=["--store", store]).start()
    runner = runner_process(server, tmp_path, "wg", "--progress-seconds", "1")
    try:
        client = server.client()
        pipeline_id = client.create_pipeline(name="after-restart", uniqueId="after-restart")["pipelineId"]
        subprocess.run(["pg_ctlcluster", version, cluster, "restart"], check=True, timeout=120)

        def answers():
            try:
                client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=[
                    {"id": "Default", "name": "Default", "fields": [
                        {"key": "scheduleType", "stringValue": "ondemand"},
                        {"key": "workerGroup", "stringValue": "wg"}]},
                    {"id": "Hello", "name": "Hello", "fields": [
                        {"key": "type", "stringValue": "ShellCommandActivity"},
                        {"key": "command", "stringValue": "echo hi"}]}])
                return True
            except Exception:  # the first calls after the restart may fail: that is the point
                return False
        wait_for("the server to answer again", answers, 60)
        client.activate_pipeline(pipelineId=pipeline_id)
        wait_for("the runner to run the task", lambda: instance_status(client, pipeline_id) == "FINISHED", 60)
        wait_for("the scheduler's lease to be held again", lambda: status(server)["scheduler"]["leader"], 30)
    finally:
        runner.kill()
        server.stop()
