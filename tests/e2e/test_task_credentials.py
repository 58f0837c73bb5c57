"""Tasks get their own short-lived, least-privilege credentials: a pipeline's resourceRole,
served to the task's processes in the container-credentials and IMDSv2 protocols, allowed exactly
what the role allows, audited as the role session, and dead once the attempt ends."""

import json
import subprocess

import boto3
import botocore.exceptions
import pytest

from conftest import SLUICE, VENV_BIN, Server, unique
from test_scheduler import fields, instances, obj, statuses, wait_for

AWS = str(VENV_BIN / "aws")
PYTHON = str(VENV_BIN / "python")

# Inside the task: which IMDSv2 rules hold (status codes), then the credentials the container
# endpoint serves, written where the test can try them after the attempt.
IMDS_PROBE = r"""
import json, os, sys, urllib.request, urllib.error
base = os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"].rstrip("/")
def status(method, path, headers):
    request = urllib.request.Request(base + path, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
role_path = "/latest/meta-data/iam/security-credentials/"
code, token = status("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
results = {
    "token": code,
    "no_token": status("GET", role_path, {})[0],
    "wrong_token": status("GET", role_path, {"X-aws-ec2-metadata-token": "guessed"})[0],
    "forwarded": status("GET", role_path, {"X-aws-ec2-metadata-token": token, "X-Forwarded-For": "10.1.2.3"})[0],
    "forwarded_token": status("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60",
                                                          "X-Forwarded-For": "10.1.2.3"})[0],
}
code, role = status("GET", role_path, {"X-aws-ec2-metadata-token": token})
results["role"] = role
code, body = status("GET", role_path + role, {"X-aws-ec2-metadata-token": token})
request = urllib.request.Request(os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
                                 headers={"Authorization": open(os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]).read()})
credentials = json.loads(urllib.request.urlopen(request, timeout=5).read())
# (Keys printed to a log would be masked there: compare here.)
results["same_key"] = code == 200 and json.loads(body)["AccessKeyId"] == credentials["AccessKeyId"]
json.dump(credentials, open(os.path.join(os.environ["OUTPUT1_STAGING_DIR"], "credentials.json"), "w"))
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def runner_server(tmp_path_factory):
    base = tmp_path_factory.mktemp("task-credentials")
    instance = Server(base / "data", extra_args=["--worker-group", "tasks", "--runner-dir", str(base / "runner"),
                                                 "--local-data-root", str(base),
                                                 "--scheduler-tick-ms", "50"]).start()
    instance.base = base
    yield instance
    instance.stop()


def sluice_iam(server, *args, check=True):
    env = server.cli_env()
    env["SLUICE_ENDPOINT"] = server.url
    result = subprocess.run([SLUICE, "iam", *args], capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def on_demand(client, role, *objects, tags=()):
    pipeline_id = client.create_pipeline(name="creds", uniqueId=unique(), tags=list(tags))["pipelineId"]
    result = client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=[
        obj("Default", scheduleType="ondemand", workerGroup="tasks", role="DataPipelineDefaultRole",
            resourceRole=role),
        *objects,
    ])
    assert not result["errored"], result
    return pipeline_id


def logs(server, pipeline_id, stream):
    return "".join(path.read_text() for path in (server.base / "runner" / "logs").glob(f"{pipeline_id}/*/*/*/{stream}"))


def test_a_task_acts_as_its_resource_role_and_nothing_more(runner_server):
    server = runner_server
    client = server.client()
    role = unique("Reader")
    # The role may list and describe pipelines; nothing else.
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": ["datapipeline:ListPipelines", "datapipeline:DescribePipelines"],
        "Resource": "*"}]})
    (server.base / f"{role}.json").write_text(policy)
    sluice_iam(server, "put-policy", f"{role}-policy", str(server.base / f"{role}.json"))
    sluice_iam(server, "create-role", role, "--policy", f"{role}-policy")
    output = server.base / unique("out")
    command = (f"{AWS} datapipeline list-pipelines --output json > /dev/null && echo LIST-ALLOWED; "
               f"{AWS} datapipeline delete-pipeline --pipeline-id #{{@pipelineId}} 2>&1 | grep -q AccessDenied "
               "&& echo DELETE-DENIED; "
               f"env -u AWS_CONTAINER_CREDENTIALS_FULL_URI {AWS} sts get-caller-identity --output json; "
               f"{PYTHON} -c '{IMDS_PROBE}' ")
    pipeline_id = on_demand(client, role,
                            obj("Probe", type="ShellCommandActivity", stage="true", command=command,
                                output={"ref": "Out"}),
                            obj("Out", type="S3DataNode", directoryPath=f"file://{output}"))
    client.activate_pipeline(pipelineId=pipeline_id)
    wait_for(lambda: set(statuses(client, pipeline_id).values()) == {"FINISHED"}, timeout=60,
             what="the probe task to finish")
    stdout = logs(server, pipeline_id, "stdout")
    assert "LIST-ALLOWED" in stdout and "DELETE-DENIED" in stdout, stdout + logs(server, pipeline_id, "stderr")
    # Through IMDSv2 alone (no container variable) the CLI finds the same role session.
    identity = json.loads(stdout[stdout.index("{"):stdout.index("}") + 1])
    assert f":assumed-role/{role}/{pipeline_id}." in identity["Arn"], identity
    probe = json.loads(stdout.strip().splitlines()[-1])
    assert probe["token"] == 200 and probe["role"] == role
    assert (probe["no_token"], probe["wrong_token"]) == (401, 401), probe
    assert (probe["forwarded"], probe["forwarded_token"]) == (403, 403), probe
    credentials = json.loads((output / "credentials.json").read_text())
    assert probe["same_key"] is True
    assert credentials["RoleArn"].endswith(f":role/{role}")
    # The pipeline still exists: the role could not delete it.
    assert client.describe_pipelines(pipelineIds=[pipeline_id])["pipelineDescriptionList"]

    # Once the attempt is over, its credentials are refused.
    after = boto3.client("datapipeline", endpoint_url=server.url, region_name="us-east-1", verify=server.cert,
                         aws_access_key_id=credentials["AccessKeyId"],
                         aws_secret_access_key=credentials["SecretAccessKey"],
                         aws_session_token=credentials["Token"])
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        after.list_pipelines()
    # (The service deletes them when the runner reports; until then, or when an attempt ends
    # otherwise, they are refused because the attempt is not running.)
    assert caught.value.response["Error"]["Code"] in ("UnrecognizedClientException", "ExpiredTokenException")

    # The task's calls are in the audit trail as the role session.
    events = subprocess.run([SLUICE, "audit", "lookup", "--endpoint", server.url, "--event-name", "DeletePipeline",
                             "--json"], capture_output=True, text=True, env=server.cli_env(), timeout=60)
    records = [json.loads(line) for line in events.stdout.splitlines() if line.strip()]
    mine = [r for r in records if r["userIdentity"].get("type") == "AssumedRole"
            and r["userIdentity"]["arn"] == identity["Arn"]]
    assert mine and mine[0]["errorCode"] == "AccessDeniedException", records
    issuer = mine[0]["userIdentity"]["sessionContext"]["sessionIssuer"]
    assert issuer["type"] == "Role" and issuer["userName"] == role


def test_a_pipeline_cannot_use_a_role_that_does_not_trust_it(runner_server):
    server = runner_server
    client = server.client()
    role = unique("TeamB")
    sluice_iam(server, "create-role", role, "--trust-tag", "team=b")
    job = obj("Job", type="ShellCommandActivity", command="true")
    # Pipeline A (not tagged team=b) names team B's role: refused at activation.
    other = on_demand(client, role, job, tags=[{"key": "team", "value": "a"}])
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.activate_pipeline(pipelineId=other)
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
    message = caught.value.response["Error"]["Message"]
    assert f"role '{role}' does not trust pipeline {other}" in message and "resourceRole" in message
    # A role must be named, not referred to (a reference would escape these checks).
    referred = on_demand(client, "DataPipelineDefaultResourceRole",
                         obj("Job", type="ShellCommandActivity", command="true", resourceRole={"ref": "Job"}))
    with pytest.raises(client.exceptions.InvalidRequestException, match="must name a role"):
        client.activate_pipeline(pipelineId=referred)
    # A role that does not exist is named as such.
    missing = on_demand(client, "NoSuchRole", job)
    with pytest.raises(client.exceptions.InvalidRequestException, match="role 'NoSuchRole' does not exist"):
        client.activate_pipeline(pipelineId=missing)
    # Team B's own pipeline may use it.
    mine = on_demand(client, role, job, tags=[{"key": "team", "value": "b"}])
    client.activate_pipeline(pipelineId=mine)
    wait_for(lambda: set(statuses(client, mine).values()) == {"FINISHED"}, timeout=60, what="team B's task")


def test_naming_a_role_takes_iam_pass_role(runner_server):
    server = runner_server
    root = server.client()
    role = unique("Powerful")
    sluice_iam(server, "create-role", role, "--policy", "AdministratorAccess")
    from test_iam import user_with
    operator, _, _ = user_with(server, unique("operator"), "SluicePipelineOperator")
    job = obj("Job", type="ShellCommandActivity", command="true")
    # The shipped operator policy may pass the default roles, not others.
    pipeline_id = on_demand(operator, role, job)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        operator.activate_pipeline(pipelineId=pipeline_id)
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "iam:PassRole" in caught.value.response["Error"]["Message"] and f":role/{role}" in \
        caught.value.response["Error"]["Message"]
    default = on_demand(operator, "DataPipelineDefaultResourceRole", job)
    operator.activate_pipeline(pipelineId=default)
    wait_for(lambda: set(statuses(root, default).values()) == {"FINISHED"}, timeout=60, what="the operator's task")


def test_roles_through_the_aws_cli(runner_server):
    server = runner_server
    role = unique("CliRole")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "datapipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}]})

    def aws_iam(*args, check=True):
        result = subprocess.run([AWS, "--endpoint-url", server.url, "--output", "json", "iam", *args],
                                capture_output=True, text=True, env=server.cli_env(), timeout=60)
        if check:
            assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else result

    created = aws_iam("create-role", "--role-name", role, "--assume-role-policy-document", trust,
                      "--max-session-duration", "7200", "--description", "made by the CLI")
    assert created["Role"]["Arn"].endswith(f":role/{role}") and created["Role"]["MaxSessionDuration"] == 7200
    assert aws_iam("get-role", "--role-name", role)["Role"]["AssumeRolePolicyDocument"]["Statement"][0][
        "Action"] == "sts:AssumeRole"
    aws_iam("attach-role-policy", "--role-name", role, "--policy-arn", "arn:aws:iam::aws:policy/SluiceReadOnlyAccess")
    attached = aws_iam("list-attached-role-policies", "--role-name", role)["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["SluiceReadOnlyAccess"]
    names = [r["RoleName"] for r in aws_iam("list-roles")["Roles"]]
    assert role in names and "DataPipelineDefaultResourceRole" in names
    conflict = aws_iam("delete-role", "--role-name", role, check=False)
    assert conflict.returncode != 0 and "DeleteConflict" in conflict.stderr
    bad_trust = aws_iam("update-assume-role-policy", "--role-name", role, "--policy-document",
                        json.dumps({"Version": "2012-10-17", "Statement": [{
                            "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}),
                        check=False)
    assert bad_trust.returncode != 0 and "MalformedPolicyDocument" in bad_trust.stderr
    aws_iam("detach-role-policy", "--role-name", role, "--policy-arn", "arn:aws:iam::aws:policy/SluiceReadOnlyAccess")
    aws_iam("delete-role", "--role-name", role)
    missing = aws_iam("get-role", "--role-name", role, check=False)
    assert missing.returncode != 0 and "NoSuchEntity" in missing.stderr


SECRET_FETCH = r"""
import os, urllib.request
request = urllib.request.Request(os.environ["SLUICE_SECRETS_URI"] + "api.token",
                                 headers={"Authorization": open(os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]).read()})
token = urllib.request.urlopen(request, timeout=5).read().decode()
print("token has", len(token), "characters:", token)
open(os.path.join(os.environ["OUTPUT1_STAGING_DIR"], "proof.txt"), "w").write("fetched\n")
"""


def test_a_role_carries_credentials_for_external_systems(tmp_path):
    from conftest import S3Server
    from test_copy import databases, mariadb, s3_client
    databases()  # the MariaDB user sluice_e2e with its password
    s3 = S3Server(tmp_path / "s3")
    s3_client(s3).create_bucket(Bucket="role-secrets")
    # The server and its runner hold no S3 credentials and no database password: the role does.
    server = Server(tmp_path / "data", extra_args=["--worker-group", "tasks", "--runner-dir", str(tmp_path / "runner"),
                                                   "--s3-endpoint", s3.endpoint, "--scheduler-tick-ms", "50"]).start()
    server.base = tmp_path
    api_token = "tok-role-secret-7a1c"
    try:
        client = server.client()
        role = unique("EtlWriter")
        sluice_iam(server, "create-role", role)
        env = server.cli_env()
        env["SLUICE_ENDPOINT"] = server.url
        for name, value in [("api.token", api_token), ("maria-password", "e2e-Secret/pw@1"),
                            ("s3.accessKeyId", s3.ACCESS_KEY), ("s3.secretAccessKey", s3.SECRET_KEY)]:
            stored = subprocess.run([SLUICE, "iam", "put-role-secret", role, name], input=value + "\n",
                                    capture_output=True, text=True, env=env, timeout=60)
            assert stored.returncode == 0, stored.stderr
        listed = sluice_iam(server, "list-role-secrets", role).stdout
        assert "api.token" in listed and api_token not in listed
        table = f"role_secret_{unique('t').replace('-', '_')}"
        pipeline_id = on_demand(
            client, role,
            obj("Maria", type="JdbcDatabase", connectionString="jdbc:mysql://127.0.0.1:3306/test",
                jdbcDriverClass="com.mysql.jdbc.Driver", username="sluice_e2e",
                **{"*password": "role-secret:maria-password"}),
            obj("Write", type="SqlActivity", database={"ref": "Maria"},
                script=f"CREATE TABLE {table} (n int); INSERT INTO {table} VALUES (42)"),
            obj("Fetch", type="ShellCommandActivity", stage="true", output={"ref": "Out"},
                command=f"{PYTHON} -c '{SECRET_FETCH}'"),
            obj("Out", type="S3DataNode", directoryPath="s3://role-secrets/out"))
        client.activate_pipeline(pipelineId=pipeline_id)
        wait_for(lambda: set(statuses(client, pipeline_id).values()) == {"FINISHED"}, timeout=60,
                 what="the tasks using the role's secrets")
        assert mariadb(f"SELECT n FROM {table}") == "42"
        stdout = logs(server, pipeline_id, "stdout")
        assert f"token has {len(api_token)} characters" in stdout and api_token not in stdout, stdout
        body = s3_client(s3).get_object(Bucket="role-secrets", Key="out/proof.txt")["Body"].read()
        assert body == b"fetched\n"
        # A role without that secret: the task fails, naming the field and the secret.
        other = on_demand(client, "DataPipelineDefaultResourceRole",
                          obj("Maria", type="JdbcDatabase", connectionString="jdbc:mysql://127.0.0.1:3306/test",
                              jdbcDriverClass="com.mysql.jdbc.Driver", username="sluice_e2e",
                              **{"*password": "role-secret:maria-password"}),
                          obj("Write", type="SqlActivity", database={"ref": "Maria"}, script="SELECT 1",
                              maximumRetries="0"))
        client.activate_pipeline(pipelineId=other)
        wait_for(lambda: "FAILED" in statuses(client, other).values(), timeout=60, what="the refused task")
        attempts = [fields(item) for item in instances(client, other)]
        messages = " ".join(fields_.get("errorMessage", "") for fields_ in attempts)
        if "maria-password" not in messages:
            ids = client.query_objects(pipelineId=other, sphere="ATTEMPT")["ids"]
            described = client.describe_objects(pipelineId=other, objectIds=ids)["pipelineObjects"]
            messages = " ".join(fields(item).get("errorMessage", "") for item in described)
        assert "role secret 'maria-password'" in messages and "does not carry" in messages, messages
        mariadb(f"DROP TABLE {table}")
    finally:
        server.stop()
        s3.stop()
    # The secrets are nowhere on disk in plaintext: not in the store, the audit trail or the logs.
    for path in [p for p in tmp_path.rglob("*") if p.is_file() and "s3" not in p.parts]:
        content = path.read_bytes()
        if path.suffix == ".gz":
            import gzip
            content = gzip.decompress(content)
        assert api_token.encode() not in content and b"e2e-Secret/pw@1" not in content, path
