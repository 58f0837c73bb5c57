"""The scheduler end to end: activation, instances and attempts, list-runs, SetStatus, deactivation,
the task protocol driven by a boto3 runner, and service-evaluated preconditions against a real S3
server. Time comes from a clock file the tests move (`sluice serve --clock-file`)."""

import datetime
import json
import sqlite3
import time

import boto3
import pytest

from conftest import Server, unique

FMT = "%Y-%m-%dT%H:%M:%S"


class Clock:
    def __init__(self, path, start):
        self.path = path
        self.now = start
        self.write()

    def write(self):
        self.path.write_text(self.now.strftime(FMT) + "Z")

    def advance(self, **delta):
        self.now += datetime.timedelta(**delta)
        self.write()

    def text(self, **delta):
        return (self.now + datetime.timedelta(**delta)).strftime(FMT)


def start_of_minute():
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return now.replace(second=0, microsecond=0)


@pytest.fixture
def clocked(tmp_path):
    clock = Clock(tmp_path / "clock", start_of_minute())
    server = Server(tmp_path / "data", extra_args=[
        "--clock-file", str(tmp_path / "clock"), "--scheduler-tick-ms", "50",
        "--local-data-root", str(tmp_path)]).start()
    yield server, clock
    server.stop()


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def obj(object_id, **fields):
    out = []
    for key, value in fields.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, dict):
                out.append({"key": key, "refValue": item["ref"]})
            else:
                out.append({"key": key, "stringValue": item})
    return {"id": object_id, "name": object_id, "fields": out}


def define(client, objects, parameters=None, values=None):
    pipeline_id = client.create_pipeline(name="sched", uniqueId=unique())["pipelineId"]
    result = client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=objects,
                                            parameterObjects=parameters or [], parameterValues=values or [])
    assert not result["errored"], result
    return pipeline_id


def scheduled(start, period="15 minutes", **extra):
    return obj("Every", type="Schedule", period=period, startDateTime=start, **extra)


def instances(client, pipeline_id, **query):
    ids = client.query_objects(pipelineId=pipeline_id, sphere="INSTANCE", **query)["ids"]
    if not ids:
        return []
    return client.describe_objects(pipelineId=pipeline_id, objectIds=ids)["pipelineObjects"]


def fields(described):
    return {field["key"]: field.get("stringValue", field.get("refValue")) for field in described["fields"]}


def statuses(client, pipeline_id):
    return {item["id"]: fields(item)["@status"] for item in instances(client, pipeline_id)}


def pipeline_state(client, pipeline_id):
    description = client.describe_pipelines(pipelineIds=[pipeline_id])["pipelineDescriptionList"][0]
    return {field["key"]: field.get("stringValue") for field in description["fields"]}


def test_activation_backfills_the_last_hour_and_list_runs_shows_it(clocked):
    server, clock = clocked
    client = server.client()
    start = clock.text(hours=-1)
    pipeline_id = define(client, [
        obj("Default", workerGroup="wg", schedule={"ref": "Every"}),
        scheduled(start),
        obj("Hello", type="ShellCommandActivity", command="echo hello #{@scheduledStartTime}"),
    ])
    assert pipeline_state(client, pipeline_id)["@pipelineState"] == "PENDING"
    client.activate_pipeline(pipelineId=pipeline_id)
    assert pipeline_state(client, pipeline_id)["@pipelineState"] == "SCHEDULED"
    found = instances(client, pipeline_id)
    starts = sorted(fields(item)["@scheduledStartTime"] for item in found)
    assert starts == [clock.text(minutes=m) for m in (-60, -45, -30, -15, 0)]
    first = fields(sorted(found, key=lambda item: item["id"])[0])
    assert first["@componentParent"] == "Hello"
    assert first["@status"] == "WAITING_FOR_RUNNER"
    assert first["@scheduledEndTime"] == clock.text(minutes=-45)
    assert first["type"] == "ShellCommandActivity"
    assert first["workerGroup"] == "wg", "inherited from Default"
    hello = [item for item in found if item["id"] == f"@Hello_{start}"][0]
    assert hello["name"] == f"@Hello_{start}"
    evaluated = client.describe_objects(pipelineId=pipeline_id, objectIds=[hello["id"]], evaluateExpressions=True)
    assert fields(evaluated["pipelineObjects"][0])["command"] == f"echo hello {start}"
    assert client.evaluate_expression(pipelineId=pipeline_id, objectId=hello["id"],
                                      expression="#{format(@scheduledStartTime,'YYYY-MM-dd HH:mm')}")[
        "evaluatedExpression"] == start.replace("T", " ")[:16]
    assert client.get_pipeline_definition(pipelineId=pipeline_id, version="active")["pipelineObjects"]

    # The CLI's list-runs: query, describe, print one row per instance.
    window = f"{clock.text(hours=-2)},{clock.text(hours=1)}"
    listing = server.aws("list-runs", "--pipeline-id", pipeline_id, "--schedule-interval", window)
    assert [run["@id"] for run in listing] == [f"@Hello_{clock.text(minutes=m)}" for m in (-60, -45, -30, -15, 0)]
    assert {run["@componentParent"] for run in listing} == {"Hello"}
    assert {run["@status"] for run in listing} == {"WAITING_FOR_RUNNER"}

    # Time passes: the scheduler creates the next period's instance on its own.
    clock.advance(minutes=15)
    wait_for(lambda: len(instances(client, pipeline_id)) == 6, what="the 6th instance")
    waiting = server.aws("list-runs", "--pipeline-id", pipeline_id, "--schedule-interval", window,
                         "--status", "waiting,running")
    assert len(waiting) == 6
    assert server.aws("list-runs", "--pipeline-id", pipeline_id, "--schedule-interval", window,
                      "--status", "finished") == []
    components = client.describe_objects(pipelineId=pipeline_id, objectIds=["Hello"])["pipelineObjects"]
    hello_component = fields(components[0])
    assert hello_component["@status"] == "SCHEDULED"
    assert hello_component["@sphere"] == "COMPONENT"


def run_task(client, worker_group, status="FINISHED", **report):
    task = client.poll_for_task(workerGroup=worker_group, hostname="runner-1").get("taskObject")
    if task is None:
        return None
    assert client.report_task_progress(taskId=task["taskId"])["canceled"] is False
    client.set_task_status(taskId=task["taskId"], taskStatus=status, **report)
    return task


def test_a_boto3_runner_retries_and_failure_reports_stay_encrypted(clocked):
    server, clock = clocked
    client = server.client()
    pipeline_id = define(client, [
        obj("Default", workerGroup="wg-retry", scheduleType="ondemand"),
        obj("Flaky", type="ShellCommandActivity", command="false", maximumRetries="1", retryDelay="5 minutes",
            onFail={"ref": "Alarm"}),
        obj("Alarm", type="SnsAlarm", topicArn="arn:aws:sns:us-east-1:123456789012:ops", subject="failed",
            message="#{node.name} failed", role="DataPipelineDefaultRole"),
    ])
    client.activate_pipeline(pipelineId=pipeline_id)
    task = run_task(client, "wg-retry", "FAILED", errorId="Exit1", errorMessage="secret-failure-text-4711",
                    errorStackTrace="at line 1")
    assert task["pipelineId"] == pipeline_id
    attempt_id = task["attemptId"]
    assert attempt_id.endswith("_Attempt=1")
    attempt = fields(task["objects"][attempt_id])
    assert attempt["command"] == "false" and attempt["@sphere"] == "ATTEMPT"
    # The retry waits for retryDelay.
    assert client.poll_for_task(workerGroup="wg-retry").get("taskObject") is None
    clock.advance(minutes=5)
    second = run_task(client, "wg-retry", "FAILED", errorMessage="still failing")
    assert second["attemptId"].endswith("_Attempt=2")
    (instance,) = instances(client, pipeline_id)
    described = fields(instance)
    assert described["@status"] == "FAILED"
    assert described["@attemptCount"] == "2" and described["@triesLeft"] == "0"
    attempt_ids = client.query_objects(pipelineId=pipeline_id, sphere="ATTEMPT")["ids"]
    assert len(attempt_ids) == 2
    first_attempt = fields(client.describe_objects(pipelineId=pipeline_id, objectIds=[attempt_id])["pipelineObjects"][0])
    assert first_attempt["errorId"] == "Exit1"
    assert first_attempt["errorMessage"] == "secret-failure-text-4711"
    assert first_attempt["hostname"] == "runner-1"
    assert first_attempt["@instanceParent"] == instance["id"]
    # Health follows the last ended instance.
    assert fields(client.describe_objects(pipelineId=pipeline_id, objectIds=["Flaky"])["pipelineObjects"][0])[
        "@healthStatus"] == "ERROR"
    assert pipeline_state(client, pipeline_id)["@healthStatus"] == "ERROR"
    # A task that ended is gone for its runner.
    with pytest.raises(client.exceptions.TaskNotFoundException):
        client.set_task_status(taskId=task["taskId"], taskStatus="FINISHED")
    with pytest.raises(client.exceptions.InvalidRequestException, match="reserved"):
        client.set_task_status(taskId=second["taskId"], taskStatus="FAILED", errorId="Service_x")
    with pytest.raises(client.exceptions.InvalidRequestException, match="taskStatus"):
        client.set_task_status(taskId=second["taskId"], taskStatus="DONE")
    with pytest.raises(client.exceptions.InvalidRequestException, match="FALSE is for preconditions"):
        client.set_task_status(taskId=second["taskId"], taskStatus="FALSE")
    # What a runner reports is sealed at rest, like the definition.
    for path in server.data_dir.glob("sluice.db*"):
        assert b"secret-failure-text-4711" not in path.read_bytes(), path
    # onFail fired: the audit trail has the service event.
    trail = boto3.client("cloudtrail", endpoint_url=server.url, region_name="us-east-1",
                         aws_access_key_id=server.access_key_id, aws_secret_access_key=server.secret_access_key,
                         verify=server.cert)
    events = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "ActionFired"}])
    assert any(pipeline_id in event["CloudTrailEvent"] and "Alarm" in event["CloudTrailEvent"]
               for event in events["Events"])


def test_set_status_pause_resume_cancel_rerun_and_mark_finished(clocked):
    server, clock = clocked
    client = server.client()
    pipeline_id = define(client, [
        obj("Default", workerGroup="wg-set", scheduleType="ondemand"),
        obj("A", type="ShellCommandActivity", command="a"),
        obj("B", type="ShellCommandActivity", command="b", dependsOn={"ref": "A"}),
    ])
    with pytest.raises(client.exceptions.InvalidRequestException, match="never activated"):
        client.set_status(pipelineId=pipeline_id, objectIds=["A"], status="PAUSE")
    client.activate_pipeline(pipelineId=pipeline_id)
    a_id = f"@A_{clock.text()}"
    b_id = f"@B_{clock.text()}"
    client.set_status(pipelineId=pipeline_id, objectIds=["A"], status="pause")
    assert statuses(client, pipeline_id)[a_id] == "PAUSED"
    assert client.poll_for_task(workerGroup="wg-set").get("taskObject") is None
    client.set_status(pipelineId=pipeline_id, objectIds=["A"], status="RESUME")
    assert statuses(client, pipeline_id)[a_id] == "WAITING_FOR_RUNNER"
    for objects, status, message in [
        (["A", a_id], "PAUSE", "mixes components"),
        ([a_id], "PAUSE", "PAUSE and RESUME apply to components"),
        (["Nope"], "PAUSE", "not an object of this pipeline"),
        ([a_id], "RERUN", "only an ended instance"),
        ([a_id], "FINISH", "not one of"),
    ]:
        with pytest.raises(client.exceptions.InvalidRequestException, match=message):
            client.set_status(pipelineId=pipeline_id, objectIds=objects, status=status)
    client.set_status(pipelineId=pipeline_id, objectIds=[a_id], status="TRY_CANCEL")
    assert statuses(client, pipeline_id) == {a_id: "CANCELED", b_id: "WAITING_ON_DEPENDENCIES"}
    cancelled = client.query_objects(pipelineId=pipeline_id, sphere="INSTANCE", query={"selectors": [
        {"fieldName": "@status", "operator": {"type": "EQ", "values": ["CANCELLED"]}}]})["ids"]
    assert cancelled == [a_id], "the CLI's spelling matches"
    client.set_status(pipelineId=pipeline_id, objectIds=[a_id], status="RERUN")
    assert run_task(client, "wg-set")["attemptId"] == f"{a_id}_Attempt=2"
    assert run_task(client, "wg-set", "FAILED")["attemptId"] == f"{b_id}_Attempt=1"
    client.set_status(pipelineId=pipeline_id, objectIds=[b_id], status="MARK_FINISHED")
    assert statuses(client, pipeline_id) == {a_id: "FINISHED", b_id: "MARK_FINISHED"}


def test_deactivate_cancels_and_reactivation_resumes(clocked):
    server, clock = clocked
    client = server.client()
    pipeline_id = define(client, [
        obj("Default", workerGroup="wg-deact", schedule={"ref": "Every"}, maxActiveInstances="1"),
        scheduled(clock.text(minutes=-30)),
        obj("Work", type="ShellCommandActivity", command="w"),
    ])
    client.activate_pipeline(pipelineId=pipeline_id)
    assert sorted(statuses(client, pipeline_id).values()) == [
        "WAITING_FOR_RUNNER", "WAITING_ON_DEPENDENCIES", "WAITING_ON_DEPENDENCIES"]
    task = client.poll_for_task(workerGroup="wg-deact")["taskObject"]
    client.deactivate_pipeline(pipelineId=pipeline_id)
    assert pipeline_state(client, pipeline_id)["@pipelineState"] == "INACTIVE"
    # cancelActive cancels what runs; what waits on its dependencies resumes later.
    assert sorted(statuses(client, pipeline_id).values()) == [
        "CANCELED", "WAITING_ON_DEPENDENCIES", "WAITING_ON_DEPENDENCIES"]
    assert client.report_task_progress(taskId=task["taskId"])["canceled"] is True
    assert client.poll_for_task(workerGroup="wg-deact").get("taskObject") is None
    clock.advance(minutes=30)
    client.activate_pipeline(pipelineId=pipeline_id)
    assert pipeline_state(client, pipeline_id)["@pipelineState"] == "SCHEDULED"
    now_statuses = statuses(client, pipeline_id)
    assert len(now_statuses) == 5, "the half hour while inactive is caught up"
    assert list(now_statuses.values()).count("WAITING_FOR_RUNNER") == 1
    # cancelActive=false waits for the running attempt.
    task = client.poll_for_task(workerGroup="wg-deact")["taskObject"]
    client.deactivate_pipeline(pipelineId=pipeline_id, cancelActive=False)
    assert pipeline_state(client, pipeline_id)["@pipelineState"] == "DEACTIVATING"
    client.report_task_progress(taskId=task["taskId"])
    client.set_task_status(taskId=task["taskId"], taskStatus="FINISHED")
    assert pipeline_state(client, pipeline_id)["@pipelineState"] == "INACTIVE"


def test_an_unacknowledged_task_is_handed_out_again_and_a_silent_one_fails(clocked):
    server, clock = clocked
    client = server.client()
    pipeline_id = define(client, [
        obj("Default", workerGroup="wg-lease", scheduleType="ondemand"),
        obj("Long", type="ShellCommandActivity", command="sleep 99", maximumRetries="1", retryDelay="1 minute"),
    ])
    client.activate_pipeline(pipelineId=pipeline_id)
    first = client.poll_for_task(workerGroup="wg-lease")["taskObject"]
    clock.advance(minutes=2)
    # The worker notices on its own.
    wait_for(lambda: statuses(client, pipeline_id)[f"@Long_{clock.text(minutes=-2)}"] == "WAITING_FOR_RUNNER",
             what="the task back in the queue")
    with pytest.raises(client.exceptions.TaskNotFoundException):
        client.report_task_progress(taskId=first["taskId"])
    second = client.poll_for_task(workerGroup="wg-lease")["taskObject"]
    assert second["attemptId"] == first["attemptId"], "the same attempt, handed out again"
    client.report_task_progress(taskId=second["taskId"])
    clock.advance(minutes=15)
    wait_for(lambda: len(client.query_objects(pipelineId=pipeline_id, sphere="ATTEMPT")["ids"]) == 2,
             what="a retry after the lease expired")
    failed = client.describe_objects(pipelineId=pipeline_id, objectIds=[first["attemptId"]])["pipelineObjects"][0]
    assert "presumed lost" in fields(failed)["errorMessage"]


def test_backfill_guard_start_timestamp_and_parameter_values(clocked):
    server, clock = clocked
    client = server.client()
    objects = [
        obj("Default", workerGroup="wg-bf", schedule={"ref": "Every"}),
        scheduled(clock.text(days=-3), period="1 day"),
        obj("Daily", type="ShellCommandActivity", command="echo #{myGreeting}"),
    ]
    parameters = [{"id": "myGreeting", "attributes": [{"key": "type", "stringValue": "String"},
                                                      {"key": "default", "stringValue": "hi"}]}]
    pipeline_id = define(client, objects, parameters)
    with pytest.raises(client.exceptions.InvalidRequestException, match="more than 24 hours before activation"):
        client.activate_pipeline(pipelineId=pipeline_id)
    assert pipeline_state(client, pipeline_id)["@pipelineState"] == "PENDING"
    start = datetime.datetime.strptime(clock.text(days=-1), FMT).replace(tzinfo=datetime.timezone.utc)
    client.activate_pipeline(pipelineId=pipeline_id, startTimestamp=start,
                             parameterValues=[{"id": "myGreeting", "stringValue": "bonjour"}])
    found = statuses(client, pipeline_id)
    assert sorted(found.values()) == ["SKIPPED", "SKIPPED", "WAITING_FOR_RUNNER", "WAITING_FOR_RUNNER"]
    active = client.get_pipeline_definition(pipelineId=pipeline_id, version="active")
    assert active["parameterValues"] == [{"id": "myGreeting", "stringValue": "bonjour"}]
    task = client.poll_for_task(workerGroup="wg-bf")["taskObject"]
    assert fields(task["objects"][task["attemptId"]])["command"] == "echo bonjour"


def test_on_demand_runs_and_bad_activations(clocked):
    server, clock = clocked
    client = server.client()
    pipeline_id = define(client, [
        obj("Default", workerGroup="wg-od", scheduleType="ondemand"),
        obj("Once", type="ShellCommandActivity", command="x"),
    ])
    client.activate_pipeline(pipelineId=pipeline_id)
    with pytest.raises(client.exceptions.InvalidRequestException, match="maxActiveInstances is 1"):
        client.activate_pipeline(pipelineId=pipeline_id)
    run_task(client, "wg-od")
    clock.advance(minutes=1)
    client.activate_pipeline(pipelineId=pipeline_id)
    assert sorted(statuses(client, pipeline_id).values()) == ["FINISHED", "WAITING_FOR_RUNNER"]

    empty = client.create_pipeline(name="empty", uniqueId=unique())["pipelineId"]
    with pytest.raises(client.exceptions.InvalidRequestException, match="no definition"):
        client.activate_pipeline(pipelineId=empty)
    broken = client.create_pipeline(name="broken", uniqueId=unique())["pipelineId"]
    result = client.put_pipeline_definition(pipelineId=broken, pipelineObjects=[
        obj("Default", scheduleType="ondemand"), obj("X", type="ShellCommandActivity")])
    assert result["errored"]
    with pytest.raises(client.exceptions.InvalidRequestException, match="validation errors"):
        client.activate_pipeline(pipelineId=broken)
    with pytest.raises(client.exceptions.PipelineNotFoundException):
        client.activate_pipeline(pipelineId="df-NOSUCHPIPELINE00000")
    with pytest.raises(client.exceptions.InvalidRequestException, match="never activated"):
        client.deactivate_pipeline(pipelineId=empty)
    for query, message in [
        ({"selectors": [{"fieldName": "command", "operator": {"type": "EQ", "values": ["x"]}}]}, "cannot be queried"),
        ({"selectors": [{"fieldName": "@status", "operator": {"type": "LE", "values": ["x"]}}]}, "LE takes one"),
        ({"selectors": [{"fieldName": "@actualStartTime", "operator": {"type": "BETWEEN", "values": ["x", "y"]}}]},
         "not a DateTime"),
    ]:
        with pytest.raises(client.exceptions.InvalidRequestException, match=message):
            client.query_objects(pipelineId=pipeline_id, sphere="INSTANCE", query=query)
    between = client.query_objects(pipelineId=pipeline_id, sphere="INSTANCE", query={"selectors": [
        {"fieldName": "@scheduledStartTime", "operator": {"type": "BETWEEN",
                                                          "values": [clock.text(minutes=-1) + "Z", clock.text()]}}]})
    assert len(between["ids"]) == 2
    paged = client.query_objects(pipelineId=pipeline_id, sphere="INSTANCE", limit=1)
    assert len(paged["ids"]) == 1 and paged["hasMoreResults"]
    rest = client.query_objects(pipelineId=pipeline_id, sphere="INSTANCE", limit=1, marker=paged["marker"])
    assert len(rest["ids"]) == 1 and rest["ids"] != paged["ids"]


def test_s3_key_exists_is_checked_by_the_scheduler(tmp_path, s3_server):
    clock = Clock(tmp_path / "clock", start_of_minute())
    server = Server(tmp_path / "data", extra_args=[
        "--clock-file", str(tmp_path / "clock"), "--scheduler-tick-ms", "50", "--s3-endpoint", s3_server.endpoint],
        extra_env=s3_server.env).start()
    try:
        client = server.client()
        s3 = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1",
                          aws_access_key_id=s3_server.ACCESS_KEY, aws_secret_access_key=s3_server.SECRET_KEY)
        s3.create_bucket(Bucket="landing")
        pipeline_id = define(client, [
            obj("Default", workerGroup="wg-s3", scheduleType="ondemand"),
            obj("Ready", type="S3KeyExists", s3Key="s3://landing/#{format(@scheduledStartTime,'YYYY-MM-dd')}/_SUCCESS",
                retryDelay="10 minutes", preconditionTimeout="1 hour", role="DataPipelineDefaultRole"),
            obj("Input", type="S3DataNode", directoryPath="s3://landing/in", precondition={"ref": "Ready"}),
            obj("Use", type="ShellCommandActivity", command="x", input={"ref": "Input"}),
        ])
        client.activate_pipeline(pipelineId=pipeline_id)
        ready_id = f"@Ready_{clock.text()}"
        wait_for(lambda: fields(client.describe_objects(pipelineId=pipeline_id, objectIds=[ready_id])[
            "pipelineObjects"][0]).get("@status") == "RUNNING", what="the precondition checked once")
        time.sleep(0.5)
        assert statuses(client, pipeline_id)[f"@Use_{clock.text()}"] == "WAITING_ON_DEPENDENCIES"
        s3.put_object(Bucket="landing", Key=f"{clock.text()[:10]}/_SUCCESS", Body=b"")
        clock.advance(minutes=10)
        wait_for(lambda: statuses(client, pipeline_id)[f"@Use_{clock.text(minutes=-10)}"] == "WAITING_FOR_RUNNER",
                 what="the activity released once the key exists")
        assert statuses(client, pipeline_id)[ready_id] == "FINISHED"
    finally:
        server.stop()


def test_file_locations_stay_inside_the_local_data_root(clocked, tmp_path):
    server, clock = clocked
    client = server.client()
    (tmp_path / "drop").mkdir()
    pipeline_id = define(client, [
        obj("Default", workerGroup="wg-file", scheduleType="ondemand", failureAndRerunMode="cascade"),
        obj("Inside", type="S3PrefixNotEmpty", s3Prefix=f"file://{tmp_path}/drop", retryDelay="1 minute",
            preconditionTimeout="2 minutes", role="DataPipelineDefaultRole"),
        obj("Outside", type="S3KeyExists", s3Key="file:///etc/passwd", retryDelay="1 minute",
            preconditionTimeout="2 minutes", role="DataPipelineDefaultRole"),
        obj("A", type="ShellCommandActivity", command="a", precondition={"ref": "Inside"}),
        obj("B", type="ShellCommandActivity", command="b", precondition={"ref": "Outside"}),
    ])
    (tmp_path / "drop" / "file.csv").write_text("x\n")
    client.activate_pipeline(pipelineId=pipeline_id)
    wait_for(lambda: statuses(client, pipeline_id)[f"@A_{clock.text()}"] == "WAITING_FOR_RUNNER", what="A released")
    for _ in range(3):
        clock.advance(minutes=1)
        time.sleep(0.3)
    outside = wait_for(lambda: [item for item in instances(client, pipeline_id)
                                if item["id"].startswith("@Outside") and fields(item)["@status"] == "FAILED"],
                       what="the outside check failing")
    assert "outside the local data root" in fields(outside[0])["errorMessage"]
    assert statuses(client, pipeline_id)[f"@B_{clock.text(minutes=-3)}"] == "FAILED", "its precondition failed"


@pytest.mark.sqlite_only
def test_runtime_rows_live_in_the_store(clocked):
    server, clock = clocked
    client = server.client()
    pipeline_id = define(client, [
        obj("Default", workerGroup="wg-db", scheduleType="ondemand"),
        obj("Once", type="ShellCommandActivity", command="x"),
    ])
    client.activate_pipeline(pipelineId=pipeline_id)
    server.stop()
    database = sqlite3.connect(server.data_dir / "sluice.db")
    rows = database.execute("SELECT status FROM instances WHERE pipeline_id = ?", (pipeline_id,)).fetchall()
    assert rows == [("WAITING_FOR_RUNNER",)]
    database.close()
    server.start()
    assert statuses(server.client(), pipeline_id) == {f"@Once_{clock.text()}": "WAITING_FOR_RUNNER"}
    client = server.client()
    client.delete_pipeline(pipelineId=pipeline_id)
    assert client.poll_for_task(workerGroup="wg-db").get("taskObject") is None


def test_sns_alarm_notifications_reach_their_webhook(tmp_path):
    import http.server
    import threading
    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["content-length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    topic = "arn:aws:sns:us-east-1:123456789012:pipeline-alerts"
    clock = Clock(tmp_path / "clock", start_of_minute())
    server = Server(tmp_path / "data", extra_args=[
        "--clock-file", str(tmp_path / "clock"), "--scheduler-tick-ms", "50",
        "--sns-webhook", f"{topic}=http://127.0.0.1:{hook.server_port}/alerts"]).start()
    try:
        client = server.client()
        pipeline_id = define(client, [
            obj("Default", workerGroup="wg-sns", scheduleType="ondemand"),
            obj("Nightly", type="ShellCommandActivity", command="false", onFail={"ref": "Alarm"}),
            obj("Alarm", type="SnsAlarm", topicArn=topic, role="DataPipelineDefaultRole",
                subject="#{node.name} failed",
                message="#{node.@pipelineId} run of #{node.@scheduledStartTime} ended #{node.@status}"),
        ])
        client.activate_pipeline(pipelineId=pipeline_id)
        run_task(client, "wg-sns", "FAILED", errorMessage="exit 1")
        wait_for(lambda: received, timeout=15, what="the webhook to be called")
        (notification,) = received
        assert notification["TopicArn"] == topic and notification["Type"] == "Notification"
        assert notification["Subject"] == "Nightly failed"
        assert notification["Message"] == f"{pipeline_id} run of {clock.text()} ended FAILED"
    finally:
        server.stop()
        hook.shutdown()
