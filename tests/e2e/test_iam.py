"""Identities and least privilege end to end: users, access keys and policies through `sluice iam`
and Sluice's identity API, enforced on every Data Pipeline operation as boto3 calls them."""

import json
import sqlite3
import subprocess

import botocore.exceptions
import pytest

from conftest import SLUICE, Server, unique
from test_scheduler import obj


@pytest.fixture(scope="module")
def iam_server(tmp_path_factory):
    instance = Server(tmp_path_factory.mktemp("iam") / "data").start()
    yield instance
    instance.stop()


def sluice_iam(server, *args, check=True):
    env = server.cli_env()
    env["SLUICE_ENDPOINT"] = server.url
    result = subprocess.run([SLUICE, "iam", *args], capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def user_with(server, name, *policies, tags=None, documents=()):
    """A user with the given shipped or account policies (or inline documents made into policies)
    and an access key; returns a boto3 Data Pipeline client as that user, and the key."""
    status, created = server.iam("CreateUser", {"UserName": name, "Tags": [
        {"Key": key, "Value": value} for key, value in (tags or {}).items()]})
    assert status == 200, created
    account = created["User"]["Arn"].split(":")[4]
    for index, document in enumerate(documents):
        status, policy = server.iam("CreatePolicy", {"PolicyName": f"{name}-{index}",
                                                     "PolicyDocument": json.dumps(document)})
        assert status == 200, policy
        policies += (policy["Policy"]["Arn"],)
    for policy in policies:
        arn = policy if policy.startswith("arn:") else f"arn:aws:iam::aws:policy/{policy}"
        status, body = server.iam("AttachUserPolicy", {"UserName": name, "PolicyArn": arn})
        assert status == 200, body
    status, key = server.iam("CreateAccessKey", {"UserName": name})
    assert status == 200, key
    key = key["AccessKey"]
    client = server.client(access_key_id=key["AccessKeyId"], secret_access_key=key["SecretAccessKey"])
    return client, key, account


def denied(call):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException", caught.value.response
    return caught.value.response["Error"]["Message"]


def allow(*actions, condition=None, effect="Allow"):
    statement = {"Effect": effect, "Action": list(actions), "Resource": "*"}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def test_a_new_user_can_do_nothing_until_a_policy_allows_it(iam_server, tmp_path):
    server = iam_server
    name = unique("alice")
    sluice_iam(server, "create-user", name, "--tag", "team=blue")
    credentials = tmp_path / "credentials"
    shown = sluice_iam(server, "create-access-key", "--user", name, "--credentials-file", str(credentials),
                       "--profile", "alice")
    assert "written to" in shown.stdout and "aws_secret_access_key" not in shown.stdout
    assert oct(credentials.stat().st_mode & 0o777) == "0o600"
    lines = dict(line.split(" = ") for line in credentials.read_text().splitlines() if " = " in line)
    alice = server.client(access_key_id=lines["aws_access_key_id"], secret_access_key=lines["aws_secret_access_key"])
    message = denied(lambda: alice.list_pipelines())
    assert message.startswith(f"User: arn:aws:iam::") and f":user/{name} is not authorized to perform: " \
        "datapipeline:ListPipelines on resource: * because no identity-based policy allows" in message

    sluice_iam(server, "attach", name, "SluiceReadOnlyAccess")
    assert "SluiceReadOnlyAccess" in sluice_iam(server, "list-attached", name).stdout
    alice.list_pipelines()
    denied(lambda: alice.create_pipeline(name="x", uniqueId=unique()))

    # An account policy that allows creating but explicitly denies deleting.
    document = tmp_path / "policy.json"
    document.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["datapipeline:CreatePipeline", "datapipeline:DeletePipeline"], "Resource": "*"},
        {"Sid": "NoDeleting", "Effect": "Deny", "Action": "datapipeline:DeletePipeline", "Resource": "*"}]}))
    policy_name = unique("creators")
    arn = sluice_iam(server, "put-policy", policy_name, str(document)).stdout.strip()
    assert arn.endswith(f":policy/{policy_name}")
    sluice_iam(server, "attach", name, policy_name)
    pipeline_id = alice.create_pipeline(name="mine", uniqueId=unique())["pipelineId"]
    message = denied(lambda: alice.delete_pipeline(pipelineId=pipeline_id))
    assert message.endswith("with an explicit deny in an identity-based policy")

    # A malformed policy is refused before it is stored, naming the problem.
    document.write_text('{"Version": "2012-10-17", "Statement": [{"Effect": "Perhaps", "Action": "*"}]}')
    refused = sluice_iam(server, "put-policy", unique("bad"), str(document), check=False)
    assert refused.returncode != 0 and "MalformedPolicyDocument" in refused.stderr
    # A policy in use cannot be deleted; a user with keys and policies is cleaned up by the CLI.
    assert "DeleteConflict" in sluice_iam(server, "delete-policy", policy_name, check=False).stderr
    keys = sluice_iam(server, "list-access-keys", "--user", name).stdout
    assert lines["aws_access_key_id"] in keys and lines["aws_secret_access_key"] not in keys
    sluice_iam(server, "update-access-key", lines["aws_access_key_id"], "--user", name, "--status", "Inactive")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        alice.list_pipelines()
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    sluice_iam(server, "delete-user", name)
    assert name not in sluice_iam(server, "list-users").stdout
    sluice_iam(server, "delete-policy", policy_name)

    # The secret was shown once: the database holds it sealed, the audit trail never.
    database = sqlite3.connect(server.data_dir / "sluice.db")
    dump = "\n".join(database.iterdump())
    database.close()
    assert lines["aws_secret_access_key"] not in dump
    trail = server.raw("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents",
                       {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "CreateAccessKey"}]},
                       service="cloudtrail")[2]
    assert trail["Events"] and lines["aws_secret_access_key"] not in json.dumps(trail)
    assert trail["Events"][0]["EventSource"] == "iam.amazonaws.com"


def test_identity_api_errors_are_typed(iam_server):
    server = iam_server
    name = unique("bob")
    assert server.iam("CreateUser", {"UserName": name})[0] == 200
    status, body = server.iam("CreateUser", {"UserName": name.upper()})
    assert (status, body["__type"]) == (409, "EntityAlreadyExists")
    status, body = server.iam("CreateUser", {"UserName": "no spaces allowed"})
    assert status == 400 and "UserName" in body["message"]
    status, body = server.iam("GetUser", {"UserName": "nobody-here"})
    assert (status, body["__type"]) == (404, "NoSuchEntity")
    for _ in range(2):
        assert server.iam("CreateAccessKey", {"UserName": name})[0] == 200
    status, body = server.iam("CreateAccessKey", {"UserName": name})
    assert (status, body["__type"]) == (409, "LimitExceeded")
    status, body = server.iam("DeleteUser", {"UserName": name})
    assert (status, body["__type"]) == (409, "DeleteConflict")
    status, body = server.iam("AttachUserPolicy", {"UserName": name, "PolicyArn": "arn:aws:iam::aws:policy/NoSuch"})
    assert (status, body["__type"]) == (404, "NoSuchEntity")
    status, body = server.iam("UpdateAccessKey", {"UserName": name, "AccessKeyId": "AKIAEXAMPLEEXAMPLE12",
                                                  "Status": "Sometimes"})
    assert status == 400 and "Status" in body["message"]
    status, body = server.iam("DropUser", {})
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    # Signed for the wrong service.
    status, _, body = server.raw("SluiceIAM.ListUsers", {}, service="datapipeline")
    assert status == 400 and "iam" in body["message"]


# Each of the 19 operations with a request that passes validation, so that only the
# authorization decides between AccessDenied and the rest.
def operations(pipeline_id, doomed):
    return {
        "ActivatePipeline": lambda c: c.activate_pipeline(pipelineId=pipeline_id),
        "AddTags": lambda c: c.add_tags(pipelineId=pipeline_id, tags=[{"key": "k", "value": "v"}]),
        "CreatePipeline": lambda c: c.create_pipeline(name="m", uniqueId=unique()),
        "DeactivatePipeline": lambda c: c.deactivate_pipeline(pipelineId=pipeline_id),
        "DeletePipeline": lambda c: c.delete_pipeline(pipelineId=doomed),
        "DescribeObjects": lambda c: c.describe_objects(pipelineId=pipeline_id, objectIds=["Default"]),
        "DescribePipelines": lambda c: c.describe_pipelines(pipelineIds=[pipeline_id]),
        "EvaluateExpression": lambda c: c.evaluate_expression(pipelineId=pipeline_id, objectId="Default",
                                                              expression="#{1 + 1}"),
        "GetPipelineDefinition": lambda c: c.get_pipeline_definition(pipelineId=pipeline_id),
        "ListPipelines": lambda c: c.list_pipelines(),
        "PollForTask": lambda c: c.poll_for_task(workerGroup="matrix-nobody"),
        "PutPipelineDefinition": lambda c: c.put_pipeline_definition(
            pipelineId=pipeline_id, pipelineObjects=[obj("Default", scheduleType="ondemand", workerGroup="w")]),
        "QueryObjects": lambda c: c.query_objects(pipelineId=pipeline_id, sphere="COMPONENT"),
        "RemoveTags": lambda c: c.remove_tags(pipelineId=pipeline_id, tagKeys=["k"]),
        "ReportTaskProgress": lambda c: c.report_task_progress(taskId="no-such-task"),
        "ReportTaskRunnerHeartbeat": lambda c: c.report_task_runner_heartbeat(taskrunnerId="matrix"),
        "SetStatus": lambda c: c.set_status(pipelineId=pipeline_id, objectIds=["Default"], status="PAUSE"),
        "SetTaskStatus": lambda c: c.set_task_status(taskId="no-such-task", taskStatus="FINISHED"),
        "ValidatePipelineDefinition": lambda c: c.validate_pipeline_definition(
            pipelineId=pipeline_id, pipelineObjects=[obj("Default", scheduleType="ondemand", workerGroup="w")]),
    }


def test_authorization_matrix_every_operation_needs_exactly_its_permission(iam_server):
    server = iam_server
    root = server.client()
    pipeline_id = root.create_pipeline(name="matrix", uniqueId=unique())["pipelineId"]
    root.put_pipeline_definition(pipelineId=pipeline_id,
                                 pipelineObjects=[obj("Default", scheduleType="ondemand", workerGroup="w")])
    doomed = root.create_pipeline(name="doomed", uniqueId=unique())["pipelineId"]
    calls = operations(pipeline_id, doomed)
    assert len(calls) == 19
    nobody, _, _ = user_with(server, unique("nobody"))
    for operation, call in calls.items():
        message = denied(lambda: call(nobody))
        assert f"datapipeline:{operation} on resource:" in message, message
    for operation, call in calls.items():
        client, _, _ = user_with(server, unique(f"only-{operation}"), documents=[allow(f"datapipeline:{operation}")])
        try:
            call(client)
        except botocore.exceptions.ClientError as error:
            # Allowed: whatever else may fail (no such task, nothing to activate), it is not access.
            assert error.response["Error"]["Code"] != "AccessDeniedException", (operation, error.response)
        # ... and exactly that permission: another operation is still denied.
        other = "ListPipelines" if operation != "ListPipelines" else "CreatePipeline"
        denied(lambda: calls[other](client))


def test_tag_creator_and_worker_group_conditions(iam_server):
    server = iam_server
    root = server.client()
    blue = root.create_pipeline(name="blue", uniqueId=unique(), tags=[{"key": "team", "value": "blue"}])["pipelineId"]
    red = root.create_pipeline(name="red", uniqueId=unique(), tags=[{"key": "team", "value": "red"}])["pipelineId"]
    viewer, _, _ = user_with(server, unique("blue-viewer"), documents=[
        allow("datapipeline:DescribePipelines", condition={"StringEquals": {"datapipeline:Tag/team": "blue"}})])
    assert viewer.describe_pipelines(pipelineIds=[blue])["pipelineDescriptionList"][0]["pipelineId"] == blue
    assert f"pipeline/{red}" in denied(lambda: viewer.describe_pipelines(pipelineIds=[red]))

    # Lists show only what the caller may list: by tag, or everything but what a Deny hides.
    blue_lister, _, _ = user_with(server, unique("blue-lister"), documents=[
        allow("datapipeline:ListPipelines", condition={"StringEquals": {"datapipeline:Tag/team": "blue"}})])
    listed = {item["id"] for item in blue_lister.list_pipelines()["pipelineIdList"]}
    assert blue in listed and red not in listed
    not_red, _, _ = user_with(server, unique("not-red"), documents=[{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "datapipeline:ListPipelines", "Resource": "*"},
        {"Effect": "Deny", "Action": "datapipeline:ListPipelines", "Resource": "*",
         "Condition": {"StringEquals": {"datapipeline:Tag/team": "red"}}}]}])
    listed = {item["id"] for item in not_red.list_pipelines()["pipelineIdList"]}
    assert blue in listed and red not in listed

    # Users may delete the pipelines they created, and only those.
    owner, _, _ = user_with(server, unique("owner"), documents=[{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "datapipeline:CreatePipeline", "Resource": "*"},
        {"Effect": "Allow", "Action": "datapipeline:DeletePipeline", "Resource": "*",
         "Condition": {"StringEquals": {"datapipeline:PipelineCreator": "${aws:userid}"}}}]}])
    mine = owner.create_pipeline(name="mine", uniqueId=unique())["pipelineId"]
    denied(lambda: owner.delete_pipeline(pipelineId=blue))
    owner.delete_pipeline(pipelineId=mine)

    # The shipped task-runner policy: only the worker group in the runner user's tag.
    runner, _, _ = user_with(server, unique("runner-a"), "SluiceTaskRunner", tags={"workerGroup": "group-a"})
    assert "taskObject" not in runner.poll_for_task(workerGroup="group-a")
    assert "datapipeline:PollForTask" in denied(lambda: runner.poll_for_task(workerGroup="group-b"))
    denied(lambda: runner.list_pipelines())


def test_which_policies_may_be_attached_is_a_condition(iam_server):
    server = iam_server
    name = unique("self-admin")
    _, key, account = user_with(server, name, documents=[{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:AttachUserPolicy", "Resource": "arn:aws:iam::*:user/${aws:username}",
         "Condition": {"ArnEquals": {"iam:PolicyARN": "arn:aws:iam::aws:policy/SluiceReadOnlyAccess"}}}]}])
    mine = {"access_key_id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    status, body = server.iam("AttachUserPolicy", {"UserName": name,
                                                   "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}, **mine)
    assert (status, body["__type"]) == (400, "AccessDeniedException")
    status, body = server.iam("AttachUserPolicy", {"UserName": name,
                                                   "PolicyArn": "arn:aws:iam::aws:policy/SluiceReadOnlyAccess"}, **mine)
    assert status == 200, body
    # Tags a request sets are conditions too: creating service users can be kept for admins.
    creator, creator_key, _ = user_with(server, unique("creator"), documents=[{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iam:CreateUser", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:CreateUser", "Resource": "*",
         "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["sluice:service"]}}}]}])
    as_creator = {"access_key_id": creator_key["AccessKeyId"], "secret": creator_key["SecretAccessKey"]}
    status, body = server.iam("CreateUser", {"UserName": unique("svc"), "Tags": [
        {"Key": "sluice:service", "Value": "true"}]}, **as_creator)
    assert (status, body["__type"]) == (400, "AccessDeniedException")
    assert server.iam("CreateUser", {"UserName": unique("plain")}, **as_creator)[0] == 200


def test_users_manage_their_own_keys_only(iam_server):
    server = iam_server
    _, key, account = user_with(server, unique("self"), documents=[{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:CreateAccessKey", "iam:ListAccessKeys", "iam:DeleteAccessKey"],
         "Resource": "arn:aws:iam::*:user/${aws:username}"}]}])
    other = unique("other")
    assert server.iam("CreateUser", {"UserName": other})[0] == 200
    mine = {"access_key_id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    status, body = server.iam("ListAccessKeys", {}, **mine)
    assert status == 200 and [item["AccessKeyId"] for item in body["AccessKeyMetadata"]] == [key["AccessKeyId"]]
    status, body = server.iam("CreateAccessKey", {"UserName": other}, **mine)
    assert (status, body["__type"]) == (400, "AccessDeniedException")
    assert f"iam:CreateAccessKey on resource: arn:aws:iam::{account}:user/{other}" in body["message"]
    status, body = server.iam("ListUsers", {}, **mine)
    assert body["__type"] == "AccessDeniedException"


def totp(seed_base32, step):
    """RFC 6238 as authenticator apps compute it (HMAC-SHA-1, 6 digits, 30 s)."""
    import base64
    import hashlib
    import hmac
    import struct
    key = base64.b32decode(seed_base32 + "=" * (-len(seed_base32) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def sluice_iam_as(server, key_id, secret, *args, token=None, check=True):
    env = server.cli_env()
    env.update(SLUICE_ENDPOINT=server.url, AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)
    if token:
        env["AWS_SESSION_TOKEN"] = token
    result = subprocess.run([SLUICE, "iam", *args], capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_mfa_devices_and_session_credentials_that_carry_mfa(iam_server, tmp_path):
    import time as clock
    import urllib.parse

    import boto3
    server = iam_server
    name = unique("carol")
    guarded = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["datapipeline:*", "iam:*MFADevice*", "iam:ListMFADevices"], "Resource": "*"},
        {"Sid": "NoDeletingWithoutMFA", "Effect": "Deny", "Action": "datapipeline:DeletePipeline", "Resource": "*",
         "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}]}
    carol, key, account = user_with(server, name, documents=[guarded])
    as_carol = (key["AccessKeyId"], key["SecretAccessKey"])
    pipeline_id = carol.create_pipeline(name="guarded", uniqueId=unique())["pipelineId"]
    assert denied(lambda: carol.delete_pipeline(pipelineId=pipeline_id)).endswith("with an explicit deny in an identity-based policy")

    # Enrolment: a QR code and the otpauth:// URI, then two consecutive codes.
    shown = sluice_iam_as(server, *as_carol, "create-mfa-device", name)
    uri = next(line for line in shown.stdout.splitlines() if line.startswith("otpauth://totp/"))
    assert "▀" in shown.stdout or "█" in shown.stdout, "a QR code in the terminal"
    serial = next(line for line in shown.stdout.splitlines() if line.startswith("serial number: ")).split(": ")[1]
    assert serial == f"arn:aws:iam::{account}:mfa/{name}"
    seed = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0]
    now = int(clock.time()) // 30
    wrong = sluice_iam_as(server, *as_carol, "enable-mfa", serial, totp(seed, now - 1), totp(seed, now - 3), check=False)
    assert wrong.returncode != 0 and "consecutive" in wrong.stderr
    sluice_iam_as(server, *as_carol, "enable-mfa", serial, totp(seed, now - 2), totp(seed, now - 1))
    assert serial in sluice_iam_as(server, *as_carol, "list-mfa-devices").stdout

    # Session credentials with MFA may delete; without MFA they may not.
    credentials = tmp_path / "credentials"
    code = totp(seed, int(clock.time()) // 30)
    sluice_iam_as(server, *as_carol, "session-token", "--serial-number", serial, "--code", code,
                  "--duration-seconds", "900", "--credentials-file", str(credentials), "--profile", "mfa")
    fields = dict(line.split(" = ") for line in credentials.read_text().splitlines() if " = " in line)
    assert fields["aws_access_key_id"].startswith("ASIA")

    def session_client(session_fields, token=None):
        return boto3.client("datapipeline", endpoint_url=server.url, region_name="us-east-1", verify=server.cert,
                            aws_access_key_id=session_fields["aws_access_key_id"],
                            aws_secret_access_key=session_fields["aws_secret_access_key"],
                            aws_session_token=token or session_fields["aws_session_token"])
    with_mfa = session_client(fields)
    with_mfa.delete_pipeline(pipelineId=pipeline_id)

    # The same code is never accepted twice.
    replay = sluice_iam_as(server, *as_carol, "session-token", "--serial-number", serial, "--code", code, check=False)
    assert replay.returncode != 0 and "invalid MFA one time pass code" in replay.stderr
    plain = sluice_iam_as(server, *as_carol, "session-token").stdout
    exported = dict(line.removeprefix("export ").split("=", 1) for line in plain.splitlines())
    without_mfa = session_client({"aws_access_key_id": exported["AWS_ACCESS_KEY_ID"],
                                  "aws_secret_access_key": exported["AWS_SECRET_ACCESS_KEY"]},
                                 token=exported["AWS_SESSION_TOKEN"])
    other = carol.create_pipeline(name="guarded-too", uniqueId=unique())["pipelineId"]
    denied(lambda: without_mfa.delete_pipeline(pipelineId=other))
    without_mfa.describe_pipelines(pipelineIds=[other])
    # A session cannot mint sessions; a changed token is not a token; the session key alone is nothing.
    nested = sluice_iam_as(server, exported["AWS_ACCESS_KEY_ID"], exported["AWS_SECRET_ACCESS_KEY"], "session-token",
                           token=exported["AWS_SESSION_TOKEN"], check=False)
    assert nested.returncode != 0 and "Cannot call GetSessionToken with session credentials" in nested.stderr
    token = exported["AWS_SESSION_TOKEN"]
    # (A changed last character: the token's own last character may be an "x".)
    for bad in (token[:-1] + ("y" if token.endswith("x") else "x"), None):
        client = boto3.client("datapipeline", endpoint_url=server.url, region_name="us-east-1", verify=server.cert,
                              aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"], aws_session_token=bad)
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            client.list_pipelines()
        assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    # The runner's client takes session credentials from the environment too.
    assert serial in sluice_iam_as(server, exported["AWS_ACCESS_KEY_ID"], exported["AWS_SECRET_ACCESS_KEY"],
                                   "list-mfa-devices", token=exported["AWS_SESSION_TOKEN"]).stdout
    status, _, body = server.raw("SluiceIAM.GetSessionToken", {"DurationSeconds": 60}, service="sts",
                                 access_key_id=key["AccessKeyId"], secret=key["SecretAccessKey"])
    assert status == 400 and "DurationSeconds" in body["message"]

    # A stolen long-term key cannot add a second device for its user (that takes an MFA session).
    second = sluice_iam_as(server, *as_carol, "create-mfa-device", name + "-2")
    second_uri = next(line for line in second.stdout.splitlines() if line.startswith("otpauth://totp/"))
    second_seed = urllib.parse.parse_qs(urllib.parse.urlparse(second_uri).query)["secret"][0]
    now = int(clock.time()) // 30
    refused = sluice_iam_as(server, *as_carol, "enable-mfa", serial + "-2", totp(second_seed, now - 2),
                            totp(second_seed, now - 1), check=False)
    assert refused.returncode != 0 and "already enabled" in refused.stderr
    sluice_iam_as(server, *as_carol, "delete-mfa-device", serial + "-2")
    # Guessing codes stops after five wrong ones, even before the right one.
    for guess in ("000001", "000002", "000003", "000004", "000005"):
        sluice_iam_as(server, *as_carol, "session-token", "--serial-number", serial, "--code", guess, check=False)
    throttled = sluice_iam_as(server, *as_carol, "session-token", "--serial-number", serial, "--code",
                              totp(seed, int(clock.time()) // 30), check=False)
    assert throttled.returncode != 0 and "too many wrong MFA codes" in throttled.stderr
    # Deactivating the key a session was got with ends the session.
    sluice_iam(server, "update-access-key", key["AccessKeyId"], "--user", name, "--status", "Inactive")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        with_mfa.list_pipelines()
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    sluice_iam(server, "update-access-key", key["AccessKeyId"], "--user", name, "--status", "Active")

    # A device in use cannot be deleted, nor can its user; deactivated, both can go.
    assert "DeleteConflict" in sluice_iam_as(server, *as_carol, "delete-mfa-device", serial, check=False).stderr
    sluice_iam_as(server, *as_carol, "deactivate-mfa", serial)
    sluice_iam_as(server, *as_carol, "delete-mfa-device", serial)

    # Seeds, codes and session secrets stay out of the database and the audit trail.
    database = sqlite3.connect(server.data_dir / "sluice.db")
    dump = "\n".join(database.iterdump())
    database.close()
    for secret in (seed, fields["aws_session_token"], fields["aws_secret_access_key"], exported["AWS_SESSION_TOKEN"]):
        assert secret not in dump
    for event in ("CreateVirtualMFADevice", "EnableMFADevice", "GetSessionToken"):
        trail = json.dumps(server.raw("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents",
                                      {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": event}]},
                                      service="cloudtrail")[2])
        assert event in trail
        for secret in (seed, code, fields["aws_session_token"], fields["aws_secret_access_key"]):
            assert secret not in trail, (event, secret)


def test_groups_give_their_members_the_groups_policies(iam_server):
    server = iam_server
    name, group = unique("dave"), unique("operators")
    client, _, _ = user_with(server, name)
    denied(lambda: client.list_pipelines())
    sluice_iam(server, "create-group", group)
    sluice_iam(server, "attach-group", group, "SluiceReadOnlyAccess")
    sluice_iam(server, "add-to-group", name, group)
    shown = sluice_iam(server, "get-group", group).stdout
    assert f"member  {name}" in shown and "policy  arn:aws:iam::aws:policy/SluiceReadOnlyAccess" in shown
    client.list_pipelines()
    denied(lambda: client.create_pipeline(name="x", uniqueId=unique()))
    # A group's Deny applies to its members too; policies from user and group combine.
    status, policy = server.iam("CreatePolicy", {"PolicyName": unique("no-list"), "PolicyDocument": json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "datapipeline:ListPipelines",
                                                 "Resource": "*"}]})})
    assert status == 200
    assert server.iam("DeleteGroup", {"GroupName": group})[1]["__type"] == "DeleteConflict"
    status, body = server.iam("AttachGroupPolicy", {"GroupName": group, "PolicyArn": policy["Policy"]["Arn"]})
    assert status == 200, body
    denied(lambda: client.list_pipelines())
    status, body = server.iam("GetPolicy", {"PolicyArn": policy["Policy"]["Arn"]})
    assert body["Policy"]["AttachmentCount"] == 1
    assert server.iam("DeleteUser", {"UserName": name})[1]["__type"] == "DeleteConflict"
    sluice_iam(server, "remove-from-group", name, group)
    denied(lambda: client.list_pipelines())
    assert "member" not in sluice_iam(server, "get-group", group).stdout
    sluice_iam(server, "delete-group", group)
    assert group not in sluice_iam(server, "list-groups").stdout
    sluice_iam(server, "delete-user", name)
    status, body = server.iam("GetGroup", {"GroupName": group})
    assert (status, body["__type"]) == (404, "NoSuchEntity")


def test_simulate_explains_the_decision(iam_server):
    server = iam_server
    name = unique("erin")
    user_with(server, name, "SluiceReadOnlyAccess", documents=[{"Version": "2012-10-17", "Statement": [
        {"Sid": "BlueOnly", "Effect": "Allow", "Action": "datapipeline:ActivatePipeline", "Resource": "*",
         "Condition": {"StringEquals": {"datapipeline:Tag/team": "blue"}}},
        {"Sid": "NeedsMfa", "Effect": "Deny", "Action": "datapipeline:DeletePipeline", "Resource": "*",
         "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}]}])
    shown = sluice_iam(server, "simulate", name, "datapipeline:ActivatePipeline", "datapipeline:DeletePipeline",
                       "datapipeline:DescribePipelines", "--context", "datapipeline:Tag/team=red").stdout
    lines = shown.splitlines()
    assert any(line.startswith("datapipeline:ActivatePipeline on *: implicitDeny (no statement)") for line in lines), shown
    assert 'BlueOnly (Allow) does not apply: condition StringEquals on datapipeline:tag/team with ["blue"] does not hold: ' \
        'the request has ["red"]' in shown
    assert any(line.startswith("datapipeline:DeletePipeline on *: explicitDeny (arn:aws:iam::") for line in lines), shown
    assert "NeedsMfa (Deny) applies" in shown
    assert any(line.startswith("datapipeline:DescribePipelines on *: allowed (arn:aws:iam::aws:policy/SluiceReadOnlyAccess)")
               for line in lines), shown
    shown = sluice_iam(server, "simulate", name, "datapipeline:DeletePipeline", "--context",
                       "aws:MultiFactorAuthPresent=true").stdout
    assert "implicitDeny" in shown and "NeedsMfa (Deny) does not apply: condition BoolIfExists" in shown
    status, body = server.iam("SimulatePrincipalPolicy", {"PolicySourceArn": "arn:aws:iam::1:user/nobody",
                                                          "ActionNames": ["x:y"]})
    assert (status, body["__type"]) == (404, "NoSuchEntity")


def test_aws_cli_and_boto3_speak_sts_to_sluice(iam_server):
    import time as clock

    import boto3

    from conftest import VENV_BIN
    server = iam_server
    name = unique("frank")
    _, key, account = user_with(server, name, "SluiceReadOnlyAccess")
    env = server.cli_env()
    env.update(AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"])

    def aws_sts(*args, check=True):
        result = subprocess.run([str(VENV_BIN / "aws"), "sts", *args, "--endpoint-url", server.url, "--output", "json"],
                                capture_output=True, text=True, env=env, timeout=60)
        if check:
            assert result.returncode == 0, result.stderr
        return result
    identity = json.loads(aws_sts("get-caller-identity").stdout)
    assert identity["Arn"] == f"arn:aws:iam::{account}:user/{name}" and identity["Account"] == account

    # The root enrols a device for the user; the user gets MFA session credentials with the AWS CLI.
    status, created = server.iam("CreateVirtualMFADevice", {"VirtualMFADeviceName": name})
    assert status == 200, created
    serial, seed = created["VirtualMFADevice"]["SerialNumber"], created["VirtualMFADevice"]["Base32StringSeed"]
    now = int(clock.time()) // 30
    status, body = server.iam("EnableMFADevice", {"UserName": name, "SerialNumber": serial,
                                                  "AuthenticationCode1": totp(seed, now - 2),
                                                  "AuthenticationCode2": totp(seed, now - 1)})
    assert status == 200, body
    wrong = aws_sts("get-session-token", "--serial-number", serial, "--token-code", "000000", check=False)
    assert wrong.returncode != 0 and "AccessDenied" in wrong.stderr
    issued = json.loads(aws_sts("get-session-token", "--serial-number", serial, "--token-code",
                                totp(seed, int(clock.time()) // 30), "--duration-seconds", "900").stdout)
    credentials = issued["Credentials"]
    assert credentials["AccessKeyId"].startswith("ASIA") and credentials["Expiration"]
    session = dict(aws_access_key_id=credentials["AccessKeyId"], aws_secret_access_key=credentials["SecretAccessKey"],
                   aws_session_token=credentials["SessionToken"])
    sts = boto3.client("sts", endpoint_url=server.url, region_name="us-east-1", verify=server.cert, **session)
    assert sts.get_caller_identity()["Arn"] == identity["Arn"]
    pipelines = boto3.client("datapipeline", endpoint_url=server.url, region_name="us-east-1", verify=server.cert,
                             **session)
    pipelines.list_pipelines()
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sts.get_session_token()
    assert caught.value.response["Error"]["Code"] == "AccessDenied"


def test_an_account_can_require_mfa_of_every_human_user(fresh_server, tmp_path):
    import time as clock

    import boto3
    server = fresh_server
    name = unique("gina")
    human, key, account = user_with(server, name, "SluiceReadOnlyAccess", documents=[{
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iam:*MFADevice*", "iam:ListMFADevices",
                                                                              "iam:GetUser"], "Resource": "*"}]}])
    robot, _, _ = user_with(server, unique("robot"), "SluiceReadOnlyAccess", tags={"sluice:service": "true"})
    human.list_pipelines()
    assert "MFA is required" in sluice_iam(server, "require-mfa", "on").stdout
    assert "MFA is required" in sluice_iam(server, "require-mfa").stdout
    message = denied(lambda: human.list_pipelines())
    assert "because this account requires MFA" in message
    robot.list_pipelines()
    server.client().list_pipelines()
    # The user can still set up a device and get MFA-bearing session credentials, and then work.
    mine = (key["AccessKeyId"], key["SecretAccessKey"])
    shown = sluice_iam_as(server, *mine, "create-mfa-device", name)
    uri = next(line for line in shown.stdout.splitlines() if line.startswith("otpauth://totp/"))
    serial = f"arn:aws:iam::{account}:mfa/{name}"
    import urllib.parse
    seed = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0]
    now = int(clock.time()) // 30
    sluice_iam_as(server, *mine, "enable-mfa", serial, totp(seed, now - 2), totp(seed, now - 1))
    plain = sluice_iam_as(server, *mine, "session-token").stdout
    exported = dict(line.removeprefix("export ").split("=", 1) for line in plain.splitlines())
    without_mfa = boto3.client("datapipeline", endpoint_url=server.url, region_name="us-east-1", verify=server.cert,
                               aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
                               aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
                               aws_session_token=exported["AWS_SESSION_TOKEN"])
    denied(lambda: without_mfa.list_pipelines())
    with_code = sluice_iam_as(server, *mine, "session-token", "--serial-number", serial, "--code",
                              totp(seed, int(clock.time()) // 30)).stdout
    exported = dict(line.removeprefix("export ").split("=", 1) for line in with_code.splitlines())
    with_mfa = boto3.client("datapipeline", endpoint_url=server.url, region_name="us-east-1", verify=server.cert,
                            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
                            aws_session_token=exported["AWS_SESSION_TOKEN"])
    with_mfa.list_pipelines()
    # Only those allowed to may change the setting.
    assert "AccessDenied" in sluice_iam_as(server, *mine, "require-mfa", "off",
                                           token=None, check=False).stderr
    assert "not required" in sluice_iam(server, "require-mfa", "off").stdout
    human.list_pipelines()


def test_the_aws_cli_manages_users_and_policies_with_aws_iam(iam_server, tmp_path):
    from conftest import VENV_BIN
    server = iam_server

    def aws_iam(*args, env=None, check=True):
        result = subprocess.run([str(VENV_BIN / "aws"), "iam", *args, "--endpoint-url", server.url, "--output", "json"],
                                capture_output=True, text=True, env=env or server.cli_env(), timeout=60)
        if check:
            assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if check and result.stdout.strip() else result
    name = unique("hank")
    created = aws_iam("create-user", "--user-name", name, "--tags", "Key=team,Value=blue")["User"]
    assert created["UserName"] == name and created["Arn"].endswith(f":user/{name}")
    assert created["Tags"] == [{"Key": "team", "Value": "blue"}]
    assert name in [user["UserName"] for user in aws_iam("list-users")["Users"]]
    document = tmp_path / "policy.json"
    document.write_text(json.dumps(allow("datapipeline:ListPipelines")))
    policy = aws_iam("create-policy", "--policy-name", unique("lister"), "--policy-document", f"file://{document}")
    aws_iam("attach-user-policy", "--user-name", name, "--policy-arn", policy["Policy"]["Arn"])
    attached = aws_iam("list-attached-user-policies", "--user-name", name)["AttachedPolicies"]
    assert [item["PolicyArn"] for item in attached] == [policy["Policy"]["Arn"]]
    key = aws_iam("create-access-key", "--user-name", name)["AccessKey"]
    listed = aws_iam("list-access-keys", "--user-name", name)["AccessKeyMetadata"]
    assert [item["AccessKeyId"] for item in listed] == [key["AccessKeyId"]]
    user = server.client(access_key_id=key["AccessKeyId"], secret_access_key=key["SecretAccessKey"])
    user.list_pipelines()
    denied(lambda: user.create_pipeline(name="x", uniqueId=unique()))
    simulated = aws_iam("simulate-principal-policy", "--policy-source-arn", created["Arn"], "--action-names",
                        "datapipeline:ListPipelines", "datapipeline:DeletePipeline")["EvaluationResults"]
    assert [result["EvalDecision"] for result in simulated] == ["allowed", "implicitDeny"]
    missing = aws_iam("get-user", "--user-name", "nobody-at-all", check=False)
    assert missing.returncode != 0 and "NoSuchEntity" in missing.stderr
    aws_iam("delete-access-key", "--user-name", name, "--access-key-id", key["AccessKeyId"])
    aws_iam("detach-user-policy", "--user-name", name, "--policy-arn", policy["Policy"]["Arn"])
    aws_iam("delete-user", "--user-name", name)
    assert name not in [user["UserName"] for user in aws_iam("list-users")["Users"]]
