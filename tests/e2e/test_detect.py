"""Sensitive-data discovery with `sluice scan`: files, folders and an S3 prefix, Macie-shaped
findings with located occurrences and redacted samples, custom identifiers and allow lists."""

import gzip
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
