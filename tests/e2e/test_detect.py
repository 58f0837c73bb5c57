"""Sensitive-data discovery with `sluice scan`: files, folders and an S3 prefix, Macie-shaped
findings with located occurrences and redacted samples, custom identifiers and allow lists."""

import gzip
import pytest
import json
import os
import subprocess

from conftest import SLUICE

CARD = "4556 7375 8689 9855"
SSN = "536-22-1234"


def scan(*args, env=None):
    result = subprocess.run([SLUICE, "scan", *args], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **(env or {})})
    return result


def findings(result):
    return {f["resourcesAffected"]["object"]["path"].rsplit("/", 1)[-1]: f
            for f in map(json.loads, result.stdout.splitlines())}


def detections(finding):
    return {d["type"]: d for group in finding["classificationDetails"]["result"]["sensitiveData"]
            for d in group["detections"]}


def corpus(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "people.csv").write_text(f"name,ssn,email,note\nAda,{SSN},ada@corp.com,ok\nKen,123,none,fine\n")
    (folder / "events.jsonl").write_text(
        json.dumps({"user": {"dob": "1984-03-12", "card": CARD}}) + "\n" + json.dumps({"user": {"n": 1}}) + "\n")
    (folder / "app.log.gz").write_bytes(gzip.compress(
        b"2026-11-29 INFO start\n2026-11-29 INFO deploy key AKIAQWERTYUIOPASDFGH used\n"))
    (folder / "clean.txt").write_text("nothing to see here\nversion 1.2.3\n")


def test_scan_finds_locates_and_redacts(tmp_path):
    corpus(tmp_path / "data")
    table = scan(str(tmp_path / "data"))
    assert table.returncode == 1, table.stdout + table.stderr
    assert "USA_SOCIAL_SECURITY_NUMBER" in table.stdout and SSN not in table.stdout and CARD not in table.stdout
    assert "4 object(s)" in table.stdout and "3 with sensitive data" in table.stdout

    result = scan(str(tmp_path / "data"), "--json")
    found = findings(result)
    assert set(found) == {"people.csv", "events.jsonl", "app.log.gz"}
    people = found["people.csv"]
    assert people["type"] == "SensitiveData:S3Object/Personal" and people["severity"]["description"] == "High"
    ssn = detections(people)["USA_SOCIAL_SECURITY_NUMBER"]
    assert ssn["occurrences"]["cells"] == [{"row": 2, "column": 2, "columnName": "ssn", "cellReference": None}]
    assert ssn["sluiceSamples"] == ["53*******34"]
    events = found["events.jsonl"]
    assert events["type"] == "SensitiveData:S3Object/Multiple"
    assert detections(events)["CREDIT_CARD_NUMBER"]["occurrences"]["records"] == [
        {"recordIndex": 0, "jsonPath": "$.user.card"}]
    log = detections(found["app.log.gz"])["AWS_ACCESS_KEY_ID"]
    assert log["occurrences"]["lineRanges"] == [{"start": 2, "end": 2, "startColumn": 28}]
    assert found["app.log.gz"]["type"] == "SensitiveData:S3Object/Credentials"
    for text in (table.stdout, result.stdout):
        assert "AKIAQWERTYUIOPASDFGH" not in text

    clean = scan(str(tmp_path / "data" / "clean.txt"))
    assert clean.returncode == 0 and "0 with sensitive data" in clean.stdout


def test_custom_identifiers_and_allow_lists(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "hr.txt").write_text("employee id EMP-004512 joined\nemployee id EMP-000001 is the test account\n"
                                 "contact ada@corp.com or noreply@corp.com\n")
    custom = tmp_path / "custom.json"
    custom.write_text(json.dumps([{"name": "EMPLOYEE_ID", "regex": "EMP-[0-9]{6}", "keywords": ["employee id"],
                                   "ignoreWords": ["EMP-000001"], "maximumMatchDistance": 20}]))
    allow = tmp_path / "allow.txt"
    allow.write_text("noreply@corp.com\n")
    found = findings(scan(str(data), "--json", "--custom-identifiers", str(custom), "--allow-list", str(allow)))
    result = found["hr.txt"]["classificationDetails"]["result"]
    assert result["customDataIdentifiers"]["totalCount"] == 1
    assert result["customDataIdentifiers"]["detections"][0]["name"] == "EMPLOYEE_ID"
    assert detections(found["hr.txt"])["EMAIL_ADDRESS"]["count"] == 1
    assert found["hr.txt"]["type"] == "SensitiveData:S3Object/Multiple"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "X", "regex": "a", "maximumMatchDistance": 999}]))
    refused = scan(str(data), "--custom-identifiers", str(bad))
    assert refused.returncode == 2 and "maximumMatchDistance" in refused.stderr


def test_scan_an_s3_prefix(tmp_path, s3_server):
    from test_copy import s3_client
    client = s3_client(s3_server)
    client.create_bucket(Bucket="lake")
    client.put_object(Bucket="lake", Key="raw/2026/people.csv", Body=f"name,ssn\nAda,{SSN}\n".encode())
    client.put_object(Bucket="lake", Key="raw/2026/clean.txt", Body=b"hello\n")
    result = scan("s3://lake/raw", "--json", "--s3-endpoint", s3_server.endpoint, env=s3_server.env)
    assert result.returncode == 1, result.stderr
    (finding,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert finding["resourcesAffected"]["object"]["path"] == "s3://lake/raw/2026/people.csv"
    assert "USA_SOCIAL_SECURITY_NUMBER" in detections(finding)


def test_outputs_are_reviewed_before_publishing_as_the_policy_says(tmp_path):
    source = tmp_path / "people.csv"
    source.write_text(f"name,ssn,city\nAda,{SSN},Lisbon\nKen,none,Oslo\n")
    out = tmp_path / "out"

    def copy(name, policy=None):
        node = {"id": f"To{name}", "name": f"To{name}", "type": "S3DataNode",
                "directoryPath": f"file://{out}/{name.lower()}"}
        if policy:
            node["sensitiveDataPolicy"] = policy
        activity = {"id": f"Copy{name}", "name": f"Copy{name}", "type": "CopyActivity",
                    "input": {"ref": "Source"}, "output": {"ref": f"To{name}"}}
        return [node, activity]

    definition = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand", "workerGroup": "local",
         "maximumRetries": "0"},
        {"id": "Source", "name": "Source", "type": "S3DataNode", "filePath": f"file://{source}"},
        *copy("Warned"), *copy("Masked", "MASK"), *copy("Quarantined", "QUARANTINE"), *copy("Failed", "FAIL"),
        *copy("Allowed", "ALLOW"),
        {"id": "Shell", "name": "Shell", "type": "ShellCommandActivity", "stage": "true",
         "sensitiveDataPolicy": "FAIL", "output": {"ref": "ShellOut"},
         "command": f"echo 'card {CARD}' > $OUTPUT1_STAGING_DIR/notes.txt"},
        {"id": "ShellOut", "name": "ShellOut", "type": "S3DataNode", "directoryPath": f"file://{out}/shell"},
    ]}
    path = tmp_path / "policies.json"
    path.write_text(json.dumps(definition))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run([SLUICE, "run", str(path), "--log-dir", str(tmp_path / "logs")],
                            capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode != 0, result.stdout + result.stderr  # three activities fail by policy
    original = source.read_text()
    assert (out / "warned" / "people.csv").read_text() == original
    assert (out / "allowed" / "people.csv").read_text() == original
    masked = (out / "masked" / "people.csv").read_text()
    assert SSN not in masked and "Ada,***********,Lisbon" in masked and "Ken,none,Oslo" in masked
    assert not (out / "quarantined").exists() and not (out / "failed").exists() and not (out / "shell").exists()
    quarantined = list((tmp_path / "out").glob("quarantined.quarantine/*/people.csv"))
    assert len(quarantined) == 1 and quarantined[0].read_text() == original
    logs = "\n".join(p.read_text(errors="replace") for p in (tmp_path / "logs").rglob("*") if p.is_file())
    assert "USA_SOCIAL_SECURITY_NUMBER ×1 (High)" in logs and "sensitiveDataPolicy WARN" in logs
    assert "CREDIT_CARD_NUMBER" in logs and "nothing was published (sensitiveDataPolicy FAIL)" in logs
    assert SSN not in logs and CARD not in logs


@pytest.mark.sqlite_only
def test_findings_reported_by_runners_are_listed_sealed_and_authorized(tmp_path):
    from conftest import Server
    from test_iam import user_with
    from test_scheduler import obj, statuses, wait_for
    source = tmp_path / "people.csv"
    source.write_text(f"name,ssn\nAda,{SSN}\n")
    server = Server(tmp_path / "data", extra_args=["--worker-group", "wg", "--runner-dir", str(tmp_path / "runner"),
                                                   "--local-data-root", str(tmp_path), "--scheduler-tick-ms", "50"]).start()
    try:
        client = server.client()
        pipeline_id = client.create_pipeline(name="findings", uniqueId="findings")["pipelineId"]
        client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=[
            obj("Default", scheduleType="ondemand", workerGroup="wg"),
            obj("Source", type="S3DataNode", filePath=f"file://{source}"),
            obj("Out", type="S3DataNode", directoryPath=f"file://{tmp_path}/out"),
            obj("Copy", type="CopyActivity", input={"ref": "Source"}, output={"ref": "Out"}),
        ])
        client.activate_pipeline(pipelineId=pipeline_id)
        wait_for(lambda: set(statuses(client, pipeline_id).values()) == {"FINISHED"}, timeout=60, what="the copy")

        env = server.cli_env()
        listed = subprocess.run([SLUICE, "findings", "--endpoint", server.url, "--pipeline", pipeline_id],
                                capture_output=True, text=True, env=env, timeout=60)
        assert listed.returncode == 0, listed.stderr
        assert "USA_SOCIAL_SECURITY_NUMBER ×1" in listed.stdout and f"file://{tmp_path}/out/people.csv" in listed.stdout
        assert SSN not in listed.stdout
        full = subprocess.run([SLUICE, "findings", "--endpoint", server.url, "--json", "--severity", "High"],
                              capture_output=True, text=True, env=env, timeout=60)
        (finding,) = [json.loads(line) for line in full.stdout.splitlines()]
        assert finding["type"] == "SensitiveData:S3Object/Personal" and finding["accountId"] != "local"
        assert finding["sluicePipeline"]["pipelineId"] == pipeline_id
        assert finding["sluicePipeline"]["attemptId"].startswith("@Copy_")

        # Findings are sealed with the pipeline's data key: the database holds no sample or path.
        import sqlite3
        database = sqlite3.connect(f"file:{server.data_dir / 'sluice.db'}?mode=ro", uri=True)
        (body,) = database.execute("SELECT sealed_body FROM findings").fetchone()
        database.close()
        assert body[:3] == b"SLE" and b"people.csv" not in body

        # Reading findings is a permission of its own; reporting them is the runner's.
        _, key, _ = user_with(server, "operator", "SluicePipelineOperator")
        status, _, answer = server.raw("SluiceFindings.ListFindings", {"pipelineId": pipeline_id}, service="sluice",
                                       access_key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])
        assert status == 200 and len(answer["findings"]) == 1, answer
        _, denied_key, _ = user_with(server, "norights")
        status, _, answer = server.raw("SluiceFindings.ListFindings", {"pipelineId": pipeline_id}, service="sluice",
                                       access_key_id=denied_key["AccessKeyId"], secret=denied_key["SecretAccessKey"])
        assert status == 400 and answer["__type"] == "AccessDeniedException" and "sluice:ListFindings" in answer["message"]
        status, _, answer = server.raw("SluiceFindings.ReportFindings", {"taskId": "nope", "findings": [{}]},
                                       service="sluice", access_key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])
        assert status == 400 and answer["__type"] in ("TaskNotFoundException", "AccessDeniedException")

        # The audit record says what was reported, not the findings themselves.
        lookup = subprocess.run([SLUICE, "audit", "lookup", "--endpoint", server.url, "--event-name", "ReportFindings",
                                 "--json"], capture_output=True, text=True, env=env, timeout=60)
        (record,) = [r for r in map(json.loads, lookup.stdout.splitlines()) if "errorCode" not in r]
        assert record["requestParameters"]["findings"] == 1 and "people.csv" not in lookup.stdout
        assert record["userIdentity"]["userName"] == "sluice-in-process-runner"

        # Deleting the pipeline deletes its findings (and its data key).
        client.delete_pipeline(pipelineId=pipeline_id)
        after = subprocess.run([SLUICE, "findings", "--endpoint", server.url, "--json"],
                               capture_output=True, text=True, env=env, timeout=60)
        assert after.returncode == 0 and after.stdout.strip() == ""
    finally:
        server.stop()


def test_task_logs_are_masked_of_what_the_detector_finds(tmp_path):
    key = "AKIAQWERTYUIOPASDFGH"
    definition = {"objects": [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand", "workerGroup": "local"},
        {"id": "Chatty", "name": "Chatty", "type": "ShellCommandActivity",
         # (Assembled by the shell: a key written into the definition is refused by validation.)
         "command": f"k=AKIA; echo \"using ${{k}}{key[4:]} for upload\"; echo 'card {CARD} declined' >&2; echo done"},
    ]}
    path = tmp_path / "chatty.json"
    path.write_text(json.dumps(definition))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run([SLUICE, "run", str(path), "--log-dir", str(tmp_path / "logs")],
                            capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    (stdout,) = (tmp_path / "logs").rglob("stdout")
    (stderr,) = (tmp_path / "logs").rglob("stderr")
    assert stdout.read_text() == "using ******************** for upload\ndone\n"
    assert CARD not in stderr.read_text() and "declined" in stderr.read_text()

    # A failed command's last lines become the attempt's error message (stored, shown by the API
    # and by `sluice run`): masked the same way; so is every line of the process's own log.
    definition["objects"][1]["command"] = (f"k=AKIA; echo \"deploy key ${{k}}{key[4:]} for ada@corp.com\" >&2; "
                                           "exit 3")
    path.write_text(json.dumps(definition))
    result = subprocess.run([SLUICE, "run", str(path), "--log-dir", str(tmp_path / "logs2")],
                            capture_output=True, text=True, env={**env, "SLUICE_LOG": "debug"}, timeout=180)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "exited with status 3: deploy key ******************** for ************" in result.stdout, result.stdout
    for text in (result.stdout, result.stderr):
        assert key not in text and "ada@corp.com" not in text


def test_an_account_can_make_personal_data_in_names_and_tags_an_error(fresh_server):
    import botocore.exceptions
    import pytest
    from test_scheduler import obj
    server = fresh_server
    client = server.client()
    env = server.cli_env()
    env["SLUICE_ENDPOINT"] = server.url

    def guard(*args):
        result = subprocess.run([SLUICE, "iam", "guard-rails", *args], capture_output=True, text=True, env=env,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "a warning" in guard()
    # By default: a warning through boto3's ValidatePipelineDefinition, and the Put saves.
    pipeline_id = client.create_pipeline(name="owner jane.doe@corp.com", uniqueId="warned")["pipelineId"]
    objects = [obj("Default", scheduleType="ondemand", workerGroup="wg"),
               obj("Job", type="ShellCommandActivity", command="true")]
    objects[1]["name"] = "ssn 536-22-1234 export"
    validated = client.validate_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=objects)
    assert not validated["errored"]
    warnings = [m for w in validated["validationWarnings"] for m in w["warnings"]]
    assert any(m.startswith("PERSONAL_DATA:") and "social security" in m for m in warnings), warnings

    assert "an error (refused)" in guard("errors")
    validated = client.validate_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=objects)
    assert validated["errored"] and any(
        m.startswith("PERSONAL_DATA:") for e in validated["validationErrors"] for m in e["errors"])
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=objects)
    assert "PERSONAL_DATA" in caught.value.response["Error"]["Message"]
    assert "536-22-1234" not in caught.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.InvalidRequestException, match="the pipeline name seems to hold an email"):
        client.create_pipeline(name="owner jane.doe@corp.com", uniqueId="refused")
    with pytest.raises(client.exceptions.InvalidRequestException, match="the value of tag 1"):
        client.add_tags(pipelineId=pipeline_id, tags=[{"key": "owner", "value": "jane.doe@corp.com"}])
    assert "a warning" in guard("warnings")
    client.add_tags(pipelineId=pipeline_id, tags=[{"key": "owner", "value": "jane.doe@corp.com"}])


def test_a_classification_job_scans_a_pipelines_data_nodes(tmp_path, s3_server):
    from conftest import Server
    from test_copy import s3_client
    from test_scheduler import obj
    client_s3 = s3_client(s3_server)
    client_s3.create_bucket(Bucket="lake")
    client_s3.put_object(Bucket="lake", Key="people/2026/a.csv", Body=f"name,ssn\nAda,{SSN}\n".encode())
    client_s3.put_object(Bucket="lake", Key="people/2026/b.txt", Body=b"nothing here\n")
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "keys.log").write_text("deploy key AKIAQWERTYUIOPASDFGH used\n")
    server = Server(tmp_path / "data", extra_args=["--s3-endpoint", s3_server.endpoint,
                                                   "--local-data-root", str(tmp_path / "local")],
                    extra_env=s3_server.env).start()
    try:
        client = server.client()
        pipeline_id = client.create_pipeline(name="lake", uniqueId="lake")["pipelineId"]
        client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=[
            obj("Default", scheduleType="ondemand", workerGroup="wg"),
            obj("People", type="S3DataNode", directoryPath="s3://#{myBucket}/people"),
            obj("Logs", type="S3DataNode", filePath=f"file://{tmp_path}/local/keys.log"),
            obj("Daily", type="S3DataNode", directoryPath="s3://lake/#{format(@scheduledStartTime,'YYYY')}"),
            obj("Elsewhere", type="S3DataNode", filePath="file:///etc/passwd"),
        ], parameterObjects=[{"id": "myBucket", "attributes": [{"key": "type", "stringValue": "String"}]}],
            parameterValues=[{"id": "myBucket", "stringValue": "lake"}])
        env = server.cli_env()
        result = subprocess.run([SLUICE, "classify", pipeline_id, "--endpoint", server.url],
                                capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "COMPLETE, 3 object(s)" in result.stdout and "2 finding(s)" in result.stdout, result.stdout
        assert "Daily.directoryPath depends on a run" in result.stdout
        assert "outside the local data root" in result.stdout
        listed = subprocess.run([SLUICE, "findings", "--endpoint", server.url, "--pipeline", pipeline_id],
                                capture_output=True, text=True, env=env, timeout=60)
        assert "s3://lake/people/2026/a.csv" in listed.stdout and "AWS_ACCESS_KEY_ID" in listed.stdout, listed.stdout
        assert SSN not in listed.stdout
        # Starting a job is a permission of its own.
        from test_iam import user_with
        _, key, _ = user_with(server, "reader", "SluiceReadOnlyAccess")
        status, _, answer = server.raw("SluiceFindings.StartClassificationJob", {"pipelineId": pipeline_id},
                                       service="sluice", access_key_id=key["AccessKeyId"],
                                       secret=key["SecretAccessKey"])
        assert status == 400 and "sluice:StartClassificationJob" in answer["message"]
    finally:
        server.stop()


def test_a_scheduled_classification_job_runs_on_its_days_and_scans_only_new_objects(tmp_path):
    import time
    from conftest import Server
    from test_scheduler import obj
    lake = tmp_path / "local" / "in"
    lake.mkdir(parents=True)
    (lake / "a.csv").write_text(f"name,ssn\nAda,{SSN}\n")
    clock = tmp_path / "clock"
    clock.write_text("2026-11-29T10:00:00Z")
    server = Server(tmp_path / "data", extra_args=["--local-data-root", str(tmp_path / "local"),
                                                   "--clock-file", str(clock)]).start()

    def call(operation, body):
        status, _, answer = server.raw(f"SluiceFindings.{operation}", body, service="sluice")
        return status, answer

    def job_after(job_id, runs):
        deadline = time.time() + 30
        while time.time() < deadline:
            status, job = call("GetClassificationJob", {"jobId": job_id})
            assert status == 200, job
            if job["numberOfRuns"] >= runs and job["jobStatus"] != "RUNNING":
                return job
            time.sleep(0.2)
        raise AssertionError(f"run {runs} did not happen: {job}")

    try:
        client = server.client()
        pipeline_id = client.create_pipeline(name="lake", uniqueId="lake")["pipelineId"]
        client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=[
            obj("Default", scheduleType="ondemand", workerGroup="wg"),
            obj("In", type="S3DataNode", directoryPath=f"file://{lake}"),
        ])
        env = server.cli_env()
        # Daily, with a first run now: it scans what is there and waits for midnight UTC.
        result = subprocess.run([SLUICE, "classify", pipeline_id, "--schedule", "daily", "--initial-run",
                                 "--name", "nightly lake scan", "--endpoint", server.url],
                                capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "IDLE, 1 object(s)" in result.stdout and "1 finding(s)" in result.stdout, result.stdout
        assert "next run at 2026-11-30T00:00:00 UTC" in result.stdout
        status, listed = call("ListClassificationJobs", {"pipelineId": pipeline_id})
        assert status == 200 and len(listed["items"]) == 1, listed
        job_id = listed["items"][0]["jobId"]
        assert listed["items"][0]["scheduleFrequency"] == {"dailySchedule": {}}
        assert listed["items"][0]["name"] == "nightly lake scan"

        # Not before its time.
        (lake / "b.txt").write_text("deploy key AKIAQWERTYUIOPASDFGH used\n")
        clock.write_text("2026-11-29T23:59:58Z")
        time.sleep(2)
        assert call("GetClassificationJob", {"jobId": job_id})[1]["numberOfRuns"] == 1
        # Midnight: the second run scans only the new object.
        clock.write_text("2026-11-30T00:00:05Z")
        job = job_after(job_id, 2)
        assert (job["jobStatus"], job["objectsScanned"], job["findings"]) == ("IDLE", 1, 1), job
        assert job["lastRunStartedAt"].startswith("2026-11-30T00:00")
        assert job["nextRunAt"] == "2026-12-01T00:00:00"
        assert job["locations"] == [f"file://{lake}"]
        # Nothing new: the third run scans nothing; a changed object is scanned again.
        clock.write_text("2026-12-01T00:00:03Z")
        job = job_after(job_id, 3)
        assert (job["objectsScanned"], job["findings"]) == (0, 0), job
        time.sleep(0.05)
        (lake / "a.csv").write_text(f"name,ssn\nAda,{SSN}\nBob,{SSN}\n")
        clock.write_text("2026-12-02T00:00:03Z")
        job = job_after(job_id, 4)
        assert (job["objectsScanned"], job["findings"]) == (1, 1), job
        listed = subprocess.run([SLUICE, "findings", "--endpoint", server.url, "--pipeline", pipeline_id],
                                capture_output=True, text=True, env=env, timeout=60)
        assert listed.stdout.count("a.csv") == 2 and listed.stdout.count("b.txt") == 1, listed.stdout

        # Paused: no runs when due; resumed: back on its schedule; cancelled: for good.
        shown = subprocess.run([SLUICE, "classification", "pause", job_id, "--endpoint", server.url],
                               capture_output=True, text=True, env=env, timeout=60)
        assert "USER_PAUSED" in shown.stdout, shown.stdout + shown.stderr
        clock.write_text("2026-12-03T00:00:03Z")
        time.sleep(2)
        assert call("GetClassificationJob", {"jobId": job_id})[1]["numberOfRuns"] == 4
        status, job = call("UpdateClassificationJob", {"jobId": job_id, "jobStatus": "RUNNING"})
        assert (status, job["jobStatus"], job["nextRunAt"]) == (200, "IDLE", "2026-12-04T00:00:00"), job
        shown = subprocess.run([SLUICE, "classification", "cancel", job_id, "--endpoint", server.url],
                               capture_output=True, text=True, env=env, timeout=60)
        assert "CANCELLED" in shown.stdout, shown.stdout + shown.stderr
        status, answer = call("UpdateClassificationJob", {"jobId": job_id, "jobStatus": "RUNNING"})
        assert status == 400 and "CANCELLED" in answer["message"], answer

        # Jobs are kept in the store: a restarted server still knows them.
        server.stop()
        server.start()
        shown = subprocess.run([SLUICE, "classification", "list", "--endpoint", server.url],
                               capture_output=True, text=True, env=env, timeout=60)
        assert job_id in shown.stdout and "CANCELLED" in shown.stdout and "daily" in shown.stdout, shown.stdout

        # What a client gets wrong is named.
        for body, says in [
            ({"pipelineId": pipeline_id, "jobType": "SCHEDULED"}, "needs scheduleFrequency"),
            ({"pipelineId": pipeline_id, "jobType": "SCHEDULED",
              "scheduleFrequency": {"weeklySchedule": {"dayOfWeek": "FUNDAY"}}}, "FUNDAY"),
            ({"pipelineId": pipeline_id, "scheduleFrequency": {"dailySchedule": {}}}, "jobType SCHEDULED"),
            ({"pipelineId": pipeline_id, "jobType": "HOURLY"}, "HOURLY"),
            ({"pipelineId": "df-missing"}, "df-missing"),
        ]:
            status, answer = call("StartClassificationJob", body)
            assert status == 400 and says in answer["message"], (body, answer)
        status, started = call("StartClassificationJob", {"pipelineId": pipeline_id})
        status, answer = call("UpdateClassificationJob", {"jobId": started["jobId"], "jobStatus": "USER_PAUSED"})
        assert status == 400 and "can be cancelled, not paused" in answer["message"], answer
        status, answer = call("GetClassificationJob", {"jobId": "nope"})
        assert status == 400 and "nope" in answer["message"]
    finally:
        server.stop()


PARQUET = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "sluice-detect", "tests", "fixtures")


def test_parquet_files_are_scanned_by_column_and_masking_them_is_refused(tmp_path):
    # A file pyarrow wrote (snappy pages, a struct, a list): located by row and column path.
    result = scan(os.path.join(PARQUET, "customers.snappy.parquet"), "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    finding = findings(result)["customers.snappy.parquet"]
    assert finding["type"] == "SensitiveData:S3Object/Multiple"
    found = detections(finding)
    assert found["USA_SOCIAL_SECURITY_NUMBER"]["occurrences"]["records"] == [{"recordIndex": 0, "jsonPath": "$.ssn"}]
    assert found["PHONE_NUMBER"]["occurrences"]["records"] == [{"recordIndex": 0, "jsonPath": "$.address.phone"}]
    assert found["CREDIT_CARD_NUMBER"]["occurrences"]["records"] == [{"recordIndex": 1, "jsonPath": "$.card_number"}]
    assert "123-45-6789" not in result.stdout and "4532015112830366" not in result.stdout
    clean = scan(os.path.join(PARQUET, "orders-clean.parquet"))
    assert clean.returncode == 0 and "0 with sensitive data" in clean.stdout, clean.stdout

    # In a pipeline: QUARANTINE moves a Parquet output aside; MASK cannot rewrite Parquet, so the
    # attempt fails, says why, and publishes nothing.
    source = tmp_path / "in"
    source.mkdir()
    (source / "customers.parquet").write_bytes(open(os.path.join(PARQUET, "customers.zstd.parquet"), "rb").read())
    out = tmp_path / "out"
    objects = [{"id": "Default", "name": "Default", "scheduleType": "ondemand", "workerGroup": "local",
                "maximumRetries": "0"},
               {"id": "Source", "name": "Source", "type": "S3DataNode", "directoryPath": f"file://{source}"}]
    for name, policy in [("Masked", "MASK"), ("Quarantined", "QUARANTINE")]:
        objects += [{"id": f"To{name}", "name": f"To{name}", "type": "S3DataNode", "sensitiveDataPolicy": policy,
                     "directoryPath": f"file://{out}/{name.lower()}"},
                    {"id": f"Copy{name}", "name": f"Copy{name}", "type": "CopyActivity",
                     "input": {"ref": "Source"}, "output": {"ref": f"To{name}"}}]
    path = tmp_path / "parquet.json"
    path.write_text(json.dumps({"objects": objects}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run([SLUICE, "run", str(path), "--log-dir", str(tmp_path / "logs")],
                            capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode != 0, result.stdout + result.stderr
    assert not (out / "masked").exists() and not (out / "quarantined").exists()
    quarantined = list(out.glob("quarantined.quarantine/*/customers.parquet"))
    assert len(quarantined) == 1, list(out.rglob("*"))
    logs = "\n".join(p.read_text(errors="replace") for p in (tmp_path / "logs").rglob("*") if p.is_file())
    logs += result.stdout + result.stderr
    assert "MASK cannot rewrite Parquet files" in logs, logs[-3000:]
    assert "123-45-6789" not in logs
