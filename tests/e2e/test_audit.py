"""The audit trail: one CloudTrail record per request, secrets hidden, LookupEvents through real
clients, and `sluice audit verify` naming every kind of tampering."""

import datetime
import gzip
import json
import pathlib
import shutil
import sqlite3
import subprocess
import uuid

import botocore.exceptions
import pytest

from conftest import SLUICE, VENV_BIN, Server, unique

HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"


def audit_server(tmp_path, name="data"):
    return Server(tmp_path / name, ["--audit-delivery-seconds", "1", "--audit-digest-seconds", "1"]).start()


def records(data_dir):
    """Every record in the store, oldest first (read-only, beside the running server)."""
    connection = sqlite3.connect(f"file:{data_dir / 'sluice.db'}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT record FROM audit_records ORDER BY seq").fetchall()
    finally:
        connection.close()
    return [json.loads(row[0]) for row in rows]


def request_id_of(call):
    try:
        return call()["ResponseMetadata"]["RequestId"], None
    except botocore.exceptions.ClientError as error:
        return error.response["ResponseMetadata"]["RequestId"], error.response["Error"]["Code"]


@pytest.mark.sqlite_only
def test_every_operation_yields_exactly_one_record(tmp_path):
    server = audit_server(tmp_path)
    try:
        client = server.client()
        trail = server_cloudtrail(server)
        pipeline_id = client.create_pipeline(name="audited", uniqueId="u", tags=[{"key": "team", "value": "data"}])["pipelineId"]
        objects = [{"id": "Default", "name": "Default", "fields": [{"key": "workerGroup", "stringValue": "wg"}]}]
        calls = {
            "ActivatePipeline": lambda: client.activate_pipeline(pipelineId=pipeline_id),
            "AddTags": lambda: client.add_tags(pipelineId=pipeline_id, tags=[{"key": "env", "value": "prod"}]),
            "CreatePipeline": lambda: client.create_pipeline(name="second", uniqueId=unique()),
            "DeactivatePipeline": lambda: client.deactivate_pipeline(pipelineId=pipeline_id),
            "DescribeObjects": lambda: client.describe_objects(pipelineId=pipeline_id, objectIds=["Default"]),
            "DescribePipelines": lambda: client.describe_pipelines(pipelineIds=[pipeline_id]),
            "EvaluateExpression": lambda: client.evaluate_expression(pipelineId=pipeline_id, objectId="Default", expression="x"),
            "GetPipelineDefinition": lambda: client.get_pipeline_definition(pipelineId=pipeline_id),
            "ListPipelines": lambda: client.list_pipelines(),
            "PollForTask": lambda: client.poll_for_task(workerGroup="wg"),
            "PutPipelineDefinition": lambda: client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=objects),
            "QueryObjects": lambda: client.query_objects(pipelineId=pipeline_id, sphere="INSTANCE"),
            "RemoveTags": lambda: client.remove_tags(pipelineId=pipeline_id, tagKeys=["env"]),
            "ReportTaskProgress": lambda: client.report_task_progress(taskId="t"),
            "ReportTaskRunnerHeartbeat": lambda: client.report_task_runner_heartbeat(taskrunnerId="r"),
            "SetStatus": lambda: client.set_status(pipelineId=pipeline_id, objectIds=["Default"], status="PAUSE"),
            "SetTaskStatus": lambda: client.set_task_status(taskId="t", taskStatus="FINISHED"),
            "ValidatePipelineDefinition": lambda: client.validate_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=objects),
            "DeletePipeline": lambda: client.delete_pipeline(pipelineId=pipeline_id),
            "LookupEvents": lambda: trail.lookup_events(MaxResults=1),
        }
        outcomes = {name: request_id_of(call) for name, call in calls.items()}
        # A failed call of an operation that otherwise works: describe a pipeline that is gone.
        failed_id, failed_code = request_id_of(lambda: client.describe_pipelines(pipelineIds=[pipeline_id]))
        assert failed_code == "PipelineDeletedException"
    finally:
        server.stop()
    by_request = {}
    for record in records(server.data_dir):
        by_request.setdefault(record["requestID"], []).append(record)
    for name, (request_id, error_code) in outcomes.items():
        assert len(by_request.get(request_id, [])) == 1, f"{name}: {by_request.get(request_id)}"
        record = by_request[request_id][0]
        assert record["eventName"] == name
        assert record["eventVersion"] == "1.08" and record["eventType"] == "AwsApiCall"
        assert record["managementEvent"] is True and record["eventCategory"] == "Management"
        assert record["eventSource"] == ("cloudtrail.amazonaws.com" if name == "LookupEvents" else "datapipeline.amazonaws.com")
        assert record["userIdentity"]["type"] == "Root"
        assert record["userIdentity"]["accessKeyId"] == server.access_key_id
        assert record["recipientAccountId"] == record["userIdentity"]["accountId"]
        assert record["awsRegion"] == "us-east-1" and record["sourceIPAddress"] == "127.0.0.1"
        assert "Boto3" in record["userAgent"] or "Botocore" in record["userAgent"]
        assert str(uuid.UUID(record["eventID"])) == record["eventID"]
        assert record["tlsDetails"]["tlsVersion"] in ("TLSv1.2", "TLSv1.3")
        read_only = name.startswith(("Describe", "Get", "List", "Query", "Validate", "Lookup")) or name == "EvaluateExpression"
        assert record["readOnly"] is read_only, name
        assert record.get("errorCode") == error_code, name
        if error_code is None and not read_only:
            assert record["responseElements"] is not None, name
        else:
            assert record["responseElements"] is None, name
    create = by_request[outcomes["CreatePipeline"][0]][0]
    assert create["requestParameters"]["name"] == "second"
    assert create["responseElements"]["pipelineId"].startswith("df-")
    assert create["resources"][0]["type"] == "AWS::DataPipeline::Pipeline"
    failed = by_request[failed_id][0]
    assert failed["errorCode"] == "PipelineDeletedException" and "was deleted" in failed["errorMessage"]
    # Nothing but these calls was recorded: 1 create + 20 operations + 1 failed describe.
    assert sum(len(found) for found in by_request.values()) == 22


def server_cloudtrail(server, **overrides):
    import boto3
    import botocore.config
    return boto3.client(
        "cloudtrail", endpoint_url=server.url, region_name="us-east-1", verify=server.cert,
        aws_access_key_id=overrides.get("access_key_id", server.access_key_id),
        aws_secret_access_key=overrides.get("secret_access_key", server.secret_access_key),
        config=botocore.config.Config(retries={"max_attempts": 1}))


@pytest.mark.sqlite_only
def test_authentication_failures_are_recorded_without_identity(tmp_path):
    server = audit_server(tmp_path)
    try:
        server.raw("DataPipeline.ListPipelines", {}, sign=False)
        server.raw("DataPipeline.ListPipelines", {}, secret="not-the-secret")
        server.raw("DataPipeline.ListPipelines", {}, access_key_id="AKIAUNKNOWN000000000")
        old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=30)).strftime("%Y%m%dT%H%M%SZ")
        server.raw("DataPipeline.ListPipelines", {}, amz_date=old)
        server.raw("DataPipeline.Nonsense", {})
    finally:
        server.stop()
    found = records(server.data_dir)
    codes = [record.get("errorCode") for record in found]
    assert codes == ["MissingAuthenticationToken", "InvalidSignatureException", "UnrecognizedClientException",
                     "RequestExpired", "UnknownOperationException"]
    assert all(record["userIdentity"]["type"] == "Unknown" for record in found)
    assert found[0]["userIdentity"] == {"type": "Unknown"}
    assert found[1]["userIdentity"]["accessKeyId"] == server.access_key_id
    assert found[2]["userIdentity"]["accessKeyId"] == "AKIAUNKNOWN000000000"
    assert found[4]["eventName"] == "Nonsense"
    assert "not-the-secret" not in json.dumps(found)


@pytest.mark.sqlite_only
def test_secrets_never_reach_any_file_sluice_writes_for_audit(tmp_path):
    server = audit_server(tmp_path)
    secrets = ["hunter2-field-secret", "param-value-secret", "param-default-secret"]
    try:
        client = server.client()
        pipeline_id = client.create_pipeline(name="s", uniqueId="s")["pipelineId"]
        client.put_pipeline_definition(
            pipelineId=pipeline_id,
            pipelineObjects=[{"id": "Db", "name": "Db", "fields": [{"key": "type", "stringValue": "JdbcDatabase"},
                                                                   {"key": "*password", "stringValue": secrets[0]}]}],
            parameterObjects=[{"id": "*myPass", "attributes": [{"key": "default", "stringValue": secrets[2]}]}],
            parameterValues=[{"id": "*myPass", "stringValue": secrets[1]}])
    finally:
        server.stop()
    put = [record for record in records(server.data_dir) if record["eventName"] == "PutPipelineDefinition"][0]
    assert put["requestParameters"]["pipelineObjects"][0]["fields"][1]["stringValue"] == HIDDEN
    assert put["requestParameters"]["parameterValues"][0]["stringValue"] == HIDDEN
    written = [server.secret_access_key]
    texts = [json.dumps(records(server.data_dir)), (tmp_path / "data.log").read_text()]
    for path in (server.data_dir / "audit").rglob("*"):
        if path.is_file():
            texts.append((gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()).decode())
    assert len(texts) > 4  # log files, digests, signatures, public key
    for secret in secrets + written:
        for text in texts:
            assert secret not in text


def test_lookup_events_through_boto3_the_aws_cli_and_sluice(tmp_path):
    server = audit_server(tmp_path)
    try:
        client = server.client()
        first = client.create_pipeline(name="one", uniqueId="1")["pipelineId"]
        client.create_pipeline(name="two", uniqueId="2")
        client.list_pipelines()
        try:
            client.describe_pipelines(pipelineIds=["df-MISSING000000000000"])
        except botocore.exceptions.ClientError:
            pass
        trail = server_cloudtrail(server)
        by_name = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreatePipeline"}])["Events"]
        assert [event["EventName"] for event in by_name] == ["CreatePipeline", "CreatePipeline"]
        assert json.loads(by_name[1]["CloudTrailEvent"])["responseElements"]["pipelineId"] == first  # newest first
        by_resource = trail.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": first}])["Events"]
        assert [event["EventName"] for event in by_resource] == ["CreatePipeline"]
        assert by_resource[0]["Resources"] == [{"ResourceType": "AWS::DataPipeline::Pipeline", "ResourceName": first}]
        for key, value, expected in [("Username", "root", 5), ("ReadOnly", "true", 2), ("AccessKeyId", server.access_key_id, 5),
                                     ("EventSource", "datapipeline.amazonaws.com", 4), ("EventId", by_name[0]["EventId"], 1)]:
            events = trail.lookup_events(LookupAttributes=[{"AttributeKey": key, "AttributeValue": value}])["Events"]
            assert len(events) >= expected if key in ("Username", "AccessKeyId", "ReadOnly") else len(events) == expected, (key, events)
        pages = list(trail.get_paginator("lookup_events").paginate(PaginationConfig={"PageSize": 2}))
        assert len(pages) >= 3 and all(len(page["Events"]) <= 2 for page in pages)
        future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        assert trail.lookup_events(StartTime=future)["Events"] == []
        with pytest.raises(trail.exceptions.InvalidLookupAttributesException):
            trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "a"},
                                                  {"AttributeKey": "Username", "AttributeValue": "b"}])
        with pytest.raises(trail.exceptions.InvalidMaxResultsException):
            trail.lookup_events(MaxResults=51)
        with pytest.raises(trail.exceptions.InvalidTimeRangeException):
            trail.lookup_events(StartTime=future, EndTime=future - datetime.timedelta(hours=2))
        with pytest.raises(trail.exceptions.InvalidNextTokenException):
            trail.lookup_events(NextToken="bogus")
        # The AWS CLI, unchanged.
        cli = subprocess.run([str(VENV_BIN / "aws"), "--endpoint-url", server.url, "cloudtrail", "lookup-events",
                              "--lookup-attributes", "AttributeKey=EventName,AttributeValue=ListPipelines"],
                             capture_output=True, text=True, env=server.cli_env(), timeout=60)
        assert cli.returncode == 0, cli.stderr
        assert [event["EventName"] for event in json.loads(cli.stdout)["Events"]] == ["ListPipelines"]
        # Sluice's own command.
        env = server.cli_env()
        ours = subprocess.run([SLUICE, "audit", "lookup", "--endpoint", server.url, "--event-name", "DescribePipelines"],
                              capture_output=True, text=True, env=env, timeout=60)
        assert ours.returncode == 0, ours.stderr
        assert "DescribePipelines" in ours.stdout and "PipelineNotFoundException" in ours.stdout
        as_json = subprocess.run([SLUICE, "audit", "lookup", "--endpoint", server.url, "--json", "--max", "3"],
                                 capture_output=True, text=True, env=env, timeout=60)
        assert len([json.loads(line) for line in as_json.stdout.splitlines()]) == 3
    finally:
        server.stop()


def verify(data_dir):
    result = subprocess.run([SLUICE, "audit", "verify", "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def trail_dir(tmp_path_factory):
    """A data directory with a delivered, digested trail, the server stopped."""
    base = tmp_path_factory.mktemp("trail")
    server = audit_server(base)
    try:
        client = server.client()
        for index in range(6):
            client.create_pipeline(name=f"p{index}", uniqueId=str(index))
            client.list_pipelines()
            import time
            time.sleep(0.4)  # several log files and digests
    finally:
        server.stop()
    code, output = verify(server.data_dir)
    assert code == 0 and "intact" in output, output
    return server.data_dir


def tampered_copy(trail_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trail_dir, copy)
    return copy


def logs(data_dir):
    return sorted(p for p in (data_dir / "audit").rglob("*.json.gz") if "/CloudTrail/" in str(p))


def digests(data_dir):
    return sorted(p for p in (data_dir / "audit").rglob("*.json.gz") if "/CloudTrail-Digest/" in str(p))


def sql(data_dir, statement, *args):
    connection = sqlite3.connect(data_dir / "sluice.db")
    try:
        connection.execute(statement, args)
        connection.commit()
    finally:
        connection.close()


def first_problem(data_dir):
    code, output = verify(data_dir)
    assert code == 1, output
    return next(line for line in output.splitlines() if line.startswith("TAMPERED:"))


@pytest.mark.sqlite_only
def test_an_edited_record_is_named(trail_dir, tmp_path):
    copy = tampered_copy(trail_dir, tmp_path)
    sql(copy, "UPDATE audit_records SET record = replace(record, '\"p3\"', '\"pX\"') WHERE record LIKE '%\"p3\"%'")
    assert "was altered: its hash does not match" in first_problem(copy)


@pytest.mark.sqlite_only
def test_a_rewritten_chain_is_caught_by_the_delivered_copy(trail_dir, tmp_path):
    copy = tampered_copy(trail_dir, tmp_path)
    # Someone with the database (not the signing key) edits a record and recomputes every hash.
    import hashlib
    connection = sqlite3.connect(copy / "sluice.db")
    rows = connection.execute("SELECT seq, record, previous_hash FROM audit_records ORDER BY seq").fetchall()
    previous = rows[0][2]
    for seq, record, _ in rows:
        record = record.replace('"p2"', '"pZ"')
        digest = hashlib.sha256(previous.encode() + b"\n" + record.encode()).hexdigest()
        connection.execute("UPDATE audit_records SET record = ?, previous_hash = ?, hash = ? WHERE seq = ?", (record, previous, digest, seq))
        previous = digest
    connection.commit()
    connection.close()
    problem = first_problem(copy)
    assert "differs from its delivered copy" in problem and "record" in problem


@pytest.mark.sqlite_only
def test_a_deleted_record_is_named(trail_dir, tmp_path):
    copy = tampered_copy(trail_dir, tmp_path)
    sql(copy, "DELETE FROM audit_records WHERE seq = 4")
    assert "records 4..4 are missing before record 5" in first_problem(copy)


@pytest.mark.sqlite_only
def test_swapped_records_are_named(trail_dir, tmp_path):
    copy = tampered_copy(trail_dir, tmp_path)
    connection = sqlite3.connect(copy / "sluice.db")
    three, five = (connection.execute("SELECT record, previous_hash, hash, event_id FROM audit_records WHERE seq = ?", (n,)).fetchone()
                   for n in (3, 5))
    connection.execute("UPDATE audit_records SET event_id = 'swap' WHERE seq = 3")
    for seq, (record, previous, digest, event_id) in ((5, three), (3, five)):
        connection.execute("UPDATE audit_records SET record = ?, previous_hash = ?, hash = ?, event_id = ? WHERE seq = ?",
                           (record, previous, digest, event_id, seq))
    connection.commit()
    connection.close()
    assert "record 3" in first_problem(copy)


@pytest.mark.sqlite_only
def test_a_truncated_log_file_is_named(trail_dir, tmp_path):
    copy = tampered_copy(trail_dir, tmp_path)
    target = logs(copy)[1]
    target.write_bytes(target.read_bytes()[:-20])
    problem = first_problem(copy)
    assert target.name in problem and "truncated or corrupt" in problem


@pytest.mark.sqlite_only
def test_an_edited_log_file_is_named(trail_dir, tmp_path):
    copy = tampered_copy(trail_dir, tmp_path)
    target = logs(copy)[0]
    content = gzip.decompress(target.read_bytes()).replace(b'"readOnly"', b'"readOnlx"', 1)
    target.write_bytes(gzip.compress(content))
    problem = first_problem(copy)
    assert target.name in problem and "altered" in problem


@pytest.mark.sqlite_only
def test_an_inserted_or_deleted_log_file_is_named(trail_dir, tmp_path):
    copy = tampered_copy(trail_dir, tmp_path)
    extra = logs(copy)[0].with_name("000000000000_CloudTrail_us-east-1_20260101T0000Z_INSERTED0000000.json.gz")
    extra.write_bytes(gzip.compress(b'{"Records":[]}'))
    problem = first_problem(copy)
    assert "INSERTED" in problem and "inserted" in problem
    copy2 = tmp_path / "copy2"
    shutil.copytree(trail_dir, copy2)
    gone = logs(copy2)[0]
    gone.unlink()
    problem = first_problem(copy2)
    assert gone.name in problem and "missing" in problem


@pytest.mark.sqlite_only
def test_a_replaced_or_deleted_digest_is_named(trail_dir, tmp_path):
    copy = tampered_copy(trail_dir, tmp_path)
    target = digests(copy)[1]
    document = json.loads(gzip.decompress(target.read_bytes()))
    document["logFiles"] = []
    target.write_bytes(gzip.compress(json.dumps(document).encode()))
    problem = first_problem(copy)
    assert target.name in problem and "signature does not verify" in problem
    copy2 = tmp_path / "copy2"
    shutil.copytree(trail_dir, copy2)
    gone = digests(copy2)[0]
    gone.unlink()
    problem = first_problem(copy2)
    assert gone.name in problem and "missing" in problem


@pytest.mark.sqlite_only
def test_verify_reports_on_a_time_range(trail_dir):
    result = subprocess.run([SLUICE, "audit", "verify", "--data-dir", str(trail_dir), "--from", "2999-01-01T00:00:00Z"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "0 log files" in result.stdout, result.stdout


@pytest.mark.sqlite_only
def test_retention_prunes_old_files_and_what_remains_still_verifies(tmp_path):
    import time
    server = Server(tmp_path / "data", ["--audit-delivery-seconds", "1", "--audit-digest-seconds", "1",
                                        "--audit-retention-days", "0"]).start()
    try:
        client = server.client()
        for index in range(3):
            client.create_pipeline(name=f"old{index}", uniqueId=str(index))
        time.sleep(3.5)  # delivered, digested, then pruned
        client.create_pipeline(name="new", uniqueId="new")
    finally:
        server.stop()
    kept = records(server.data_dir)
    assert len(kept) < 4 and kept, kept
    assert all(record["requestParameters"].get("name", "").startswith("new") or record["eventName"] != "CreatePipeline"
               for record in kept)
    code, output = verify(server.data_dir)
    assert code == 0 and "intact" in output, output


@pytest.mark.sqlite_only
def test_delivery_to_a_bucket_verifies_and_names_tampering(tmp_path, s3_server):
    # Short bucket and prefix names: s3s-fs keeps object metadata in files named after the
    # base64 of the key, which must fit in 255 bytes.
    (s3_server.root / "audit").mkdir()
    server = Server(tmp_path / "data", ["--audit-delivery-seconds", "1", "--audit-digest-seconds", "1",
                                        "--audit-bucket", "s3://audit/t", "--audit-s3-endpoint", s3_server.endpoint],
                    extra_env=s3_server.env).start()
    try:
        client = server.client()
        for index in range(3):
            client.create_pipeline(name=f"b{index}", uniqueId=str(index))
    finally:
        server.stop()
    stored = sorted(p for p in (s3_server.root / "audit" / "t").rglob("*") if p.is_file())
    assert any("/CloudTrail/" in str(p) for p in stored) and any("/CloudTrail-Digest/" in str(p) for p in stored), stored
    assert not (server.data_dir / "audit").exists()
    command = [SLUICE, "audit", "verify", "--data-dir", str(server.data_dir), "--audit-bucket", "s3://audit/t",
               "--audit-s3-endpoint", s3_server.endpoint]
    import os
    env = {**os.environ, **s3_server.env}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0 and "intact" in result.stdout, result.stdout + result.stderr
    digest = json.loads(gzip.decompress(next(p for p in stored if "/CloudTrail-Digest/" in str(p) and p.suffix == ".gz").read_bytes()))
    assert digest["digestS3Bucket"] == "audit"
    log_file = next(p for p in stored if "/CloudTrail/" in str(p))
    log_file.write_bytes(gzip.compress(gzip.decompress(log_file.read_bytes()).replace(b'"readOnly"', b'"readOnlx"', 1)))
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1 and log_file.name in result.stdout, result.stdout + result.stderr
