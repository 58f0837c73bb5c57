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
