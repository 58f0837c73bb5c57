"""Pipeline lifecycle operations through boto3 and the AWS CLI."""

import pytest

from conftest import unique


def test_create_is_idempotent_on_name_and_unique_id(server, client):
    token = unique()
    first = client.create_pipeline(name="orders", uniqueId=token)["pipelineId"]
    again = client.create_pipeline(name="orders", uniqueId=token)["pipelineId"]
    other_name = client.create_pipeline(name="orders-2", uniqueId=token)["pipelineId"]
    assert first == again
    assert other_name != first
    assert first.startswith("df-") and len(first) == 23 and first[3:].isalnum() and first[3:].isupper()
    # The CLI gets the same answer.
    assert server.aws("create-pipeline", "--name", "orders", "--unique-id", token)["pipelineId"] == first


def test_list_pipelines_paginates_through_120(fresh_server):
    client = fresh_server.client()
    created = {client.create_pipeline(name=f"p{i:03}", uniqueId=f"u{i}")["pipelineId"] for i in range(120)}
    first_page = client.list_pipelines()
    assert first_page["hasMoreResults"] is True and first_page["marker"]
    assert len(first_page["pipelineIdList"]) == 100
    second_page = client.list_pipelines(marker=first_page["marker"])
    assert second_page["hasMoreResults"] is False and "marker" not in second_page
    listed = [entry["id"] for page in client.get_paginator("list_pipelines").paginate() for entry in page["pipelineIdList"]]
    assert len(listed) == 120 and set(listed) == created
    cli_listed = fresh_server.aws("list-pipelines")["pipelineIdList"]
    assert {entry["id"] for entry in cli_listed} == created
    with pytest.raises(client.exceptions.InvalidRequestException, match="marker"):
        client.list_pipelines(marker="not-a-marker")


def test_describe_pipelines_returns_fields_tags_and_typed_errors(client):
    pipeline_id = client.create_pipeline(
        name="nightly", uniqueId=unique(), description="loads orders",
        tags=[{"key": "team", "value": "data"}, {"key": "env", "value": "prod"}])["pipelineId"]
    description = client.describe_pipelines(pipelineIds=[pipeline_id])["pipelineDescriptionList"][0]
    fields = {field["key"]: field.get("stringValue") for field in description["fields"]}
    assert fields["@pipelineState"] == "PENDING"
    assert fields["@id"] == pipeline_id and fields["@sphere"] == "PIPELINE" and fields["name"] == "nightly"
    assert fields["description"] == "loads orders" and fields["uniqueId"]
    assert {"@creationTime", "@userId", "@accountId", "pipelineCreator"} <= set(fields)
    assert description["tags"] == [{"key": "team", "value": "data"}, {"key": "env", "value": "prod"}]
    assert description["description"] == "loads orders"
    with pytest.raises(client.exceptions.PipelineNotFoundException):
        client.describe_pipelines(pipelineIds=[pipeline_id, "df-DOESNOTEXIST0000000"])


def test_delete_leaves_a_tombstone(client):
    pipeline_id = client.create_pipeline(name="doomed", uniqueId=unique())["pipelineId"]
    client.delete_pipeline(pipelineId=pipeline_id)
    with pytest.raises(client.exceptions.PipelineDeletedException):
        client.describe_pipelines(pipelineIds=[pipeline_id])
    with pytest.raises(client.exceptions.PipelineDeletedException):
        client.get_pipeline_definition(pipelineId=pipeline_id)
    with pytest.raises(client.exceptions.PipelineNotFoundException):
        client.delete_pipeline(pipelineId=pipeline_id)
    listed = [entry["id"] for page in client.get_paginator("list_pipelines").paginate() for entry in page["pipelineIdList"]]
    assert pipeline_id not in listed


def test_tags_are_added_replaced_removed_and_capped(server, client):
    pipeline_id = client.create_pipeline(name="tagged", uniqueId=unique(), tags=[{"key": "a", "value": "1"}])["pipelineId"]
    client.add_tags(pipelineId=pipeline_id, tags=[{"key": "a", "value": "2"}, {"key": "b", "value": "3"}])
    server.aws("add-tags", "--pipeline-id", pipeline_id, "--tags", "key=c,value=4")
    tags = client.describe_pipelines(pipelineIds=[pipeline_id])["pipelineDescriptionList"][0]["tags"]
    assert tags == [{"key": "a", "value": "2"}, {"key": "b", "value": "3"}, {"key": "c", "value": "4"}]
    client.remove_tags(pipelineId=pipeline_id, tagKeys=["a", "missing"])
    server.aws("remove-tags", "--pipeline-id", pipeline_id, "--tag-keys", "c")
    tags = client.describe_pipelines(pipelineIds=[pipeline_id])["pipelineDescriptionList"][0]["tags"]
    assert tags == [{"key": "b", "value": "3"}]
    with pytest.raises(client.exceptions.InvalidRequestException, match="at most 10 tags"):
        client.add_tags(pipelineId=pipeline_id, tags=[{"key": f"k{i}", "value": "v"} for i in range(10)])
    with pytest.raises(client.exceptions.InvalidRequestException, match="tags.1.member.key"):
        client.add_tags(pipelineId=pipeline_id, tags=[{"key": "k" * 129, "value": "v"}])
    # Nothing of a refused call was applied.
    tags = client.describe_pipelines(pipelineIds=[pipeline_id])["pipelineDescriptionList"][0]["tags"]
    assert tags == [{"key": "b", "value": "3"}]
    with pytest.raises(client.exceptions.PipelineNotFoundException):
        client.add_tags(pipelineId="df-DOESNOTEXIST0000000", tags=[])


def test_evaluate_expression_in_a_component_context(server, client):
    pipeline_id = client.create_pipeline(name="expr", uniqueId=unique())["pipelineId"]
    with pytest.raises(client.exceptions.InvalidRequestException, match="no definition yet"):
        client.evaluate_expression(pipelineId=pipeline_id, objectId="Schedule", expression="#{period}")
    client.put_pipeline_definition(
        pipelineId=pipeline_id,
        pipelineObjects=[
            {"id": "Default", "name": "Default", "fields": [{"key": "workerGroup", "stringValue": "wg"},
                                                            {"key": "schedule", "refValue": "Schedule"}]},
            {"id": "Schedule", "name": "Schedule", "fields": [
                {"key": "type", "stringValue": "Schedule"}, {"key": "period", "stringValue": "1 day"},
                {"key": "startDateTime", "stringValue": "2012-12-12T00:00:00"},
                {"key": "endDateTime", "stringValue": "2012-12-21T18:00:00"}]},
            {"id": "Db", "name": "Db", "fields": [{"key": "type", "stringValue": "JdbcDatabase"},
                                                  {"key": "*password", "stringValue": "hunter2"}]},
        ],
        parameterObjects=[{"id": "myBucket", "attributes": [{"key": "default", "stringValue": "logs"}]}])
    # The API reference's own example.
    result = client.evaluate_expression(pipelineId=pipeline_id, objectId="Schedule",
                                        expression="Transform started at #{startDateTime} and finished at #{endDateTime}")
    assert result["evaluatedExpression"] == "Transform started at 2012-12-12T00:00:00 and finished at 2012-12-21T18:00:00"
    cli = server.aws("evaluate-expression", "--pipeline-id", pipeline_id, "--object-id", "Default",
                     "--expression", "s3://#{myBucket}/#{format(plusDays(schedule.startDateTime, 1), 'YYYY-MM-dd')}/#{@pipelineId}")
    assert cli["evaluatedExpression"] == f"s3://logs/2012-12-13/{pipeline_id}"
    # The root may read secrets (sluice:RevealSecretFields); test_encryption checks the mask
    # others get.
    revealed = client.evaluate_expression(pipelineId=pipeline_id, objectId="Db", expression="#{*password}")
    assert revealed["evaluatedExpression"] == "hunter2"
    with pytest.raises(client.exceptions.InvalidRequestException, match="object 'Nope' is not in the definition"):
        client.evaluate_expression(pipelineId=pipeline_id, objectId="Nope", expression="x")
    with pytest.raises(client.exceptions.InvalidRequestException, match="is not defined here at position 2"):
        client.evaluate_expression(pipelineId=pipeline_id, objectId="Default", expression="#{@scheduledStartTime}")
    client.delete_pipeline(pipelineId=pipeline_id)
    with pytest.raises(client.exceptions.PipelineDeletedException):
        client.evaluate_expression(pipelineId=pipeline_id, objectId="Default", expression="x")


def test_describe_objects_shows_components_as_the_service_does(server, client):
    pipeline_id = client.create_pipeline(name="objects", uniqueId=unique())["pipelineId"]
    assert client.describe_objects(pipelineId=pipeline_id, objectIds=["Default"])["pipelineObjects"] == []
    client.put_pipeline_definition(
        pipelineId=pipeline_id,
        pipelineObjects=[
            {"id": "Default", "name": "Default", "fields": [{"key": "workerGroup", "stringValue": "wg"},
                                                            {"key": "scheduleType", "stringValue": "ondemand"}]},
            {"id": "Out", "name": "Out", "fields": [{"key": "type", "stringValue": "S3DataNode"},
                                                    {"key": "directoryPath", "stringValue": "s3://b/#{myPrefix}/#{@pipelineId}"}]},
        ],
        parameterObjects=[{"id": "myPrefix", "attributes": [{"key": "default", "stringValue": "daily"}]}])
    raw = client.describe_objects(pipelineId=pipeline_id, objectIds=["Out", "Missing", "Default"])
    assert [o["id"] for o in raw["pipelineObjects"]] == ["Out", "Default"] and raw["hasMoreResults"] is False
    out = {f["key"]: f.get("stringValue", f.get("refValue")) for f in raw["pipelineObjects"][0]["fields"]}
    assert out["directoryPath"] == "s3://b/#{myPrefix}/#{@pipelineId}"
    assert out["parent"] == "Default" and out["@sphere"] == "COMPONENT" and out["@version"] == "1"
    assert out["@pipelineId"] == pipeline_id and out["@status"] == "PENDING"
    default = {f["key"] for f in raw["pipelineObjects"][1]["fields"]}
    assert "parent" not in default
    evaluated = client.describe_objects(pipelineId=pipeline_id, objectIds=["Out"], evaluateExpressions=True)
    fields = {f["key"]: f.get("stringValue") for f in evaluated["pipelineObjects"][0]["fields"]}
    assert fields["directoryPath"] == f"s3://b/daily/{pipeline_id}"
    cli = server.aws("describe-objects", "--pipeline-id", pipeline_id, "--object-ids", "Out", "--evaluate-expressions")
    assert cli["pipelineObjects"][0]["id"] == "Out"
    with pytest.raises(client.exceptions.InvalidRequestException, match="objectIds"):
        client.describe_objects(pipelineId=pipeline_id, objectIds=[f"o{i}" for i in range(101)])


def test_query_objects_selects_components_and_list_runs_works(server, client):
    pipeline_id = client.create_pipeline(name="query", uniqueId=unique())["pipelineId"]
    objects = [{"id": "Default", "name": "Default", "fields": [{"key": "workerGroup", "stringValue": "wg"},
                                                               {"key": "scheduleType", "stringValue": "ondemand"}]}]
    for index in range(5):
        fields = [{"key": "type", "stringValue": "ShellCommandActivity"}, {"key": "command", "stringValue": f"echo {index}"}]
        if index:
            fields.append({"key": "dependsOn", "refValue": f"A{index - 1}"})
        objects.append({"id": f"A{index}", "name": f"A{index}", "fields": fields})
    client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=objects)
    everything = client.query_objects(pipelineId=pipeline_id, sphere="component")
    assert everything["ids"] == ["Default", "A0", "A1", "A2", "A3", "A4"] and everything["hasMoreResults"] is False
    typed = client.query_objects(pipelineId=pipeline_id, sphere="COMPONENT", query={"selectors": [
        {"fieldName": "type", "operator": {"type": "EQ", "values": ["ShellCommandActivity"]}},
        {"fieldName": "dependsOn", "operator": {"type": "REF_EQ", "values": ["A1"]}}]})
    assert typed["ids"] == ["A2"]
    between = client.query_objects(pipelineId=pipeline_id, sphere="COMPONENT", query={"selectors": [
        {"fieldName": "@id", "operator": {"type": "BETWEEN", "values": ["A1", "A3"]}}]})
    assert between["ids"] == ["A1", "A2", "A3"]
    pages = list(client.get_paginator("query_objects").paginate(pipelineId=pipeline_id, sphere="COMPONENT",
                                                                PaginationConfig={"PageSize": 2}))
    assert [page["ids"] for page in pages] == [["Default", "A0"], ["A1", "A2"], ["A3", "A4"]]
    # No instances exist before activation; the CLI's list-runs still works (it needs `ids`).
    assert client.query_objects(pipelineId=pipeline_id, sphere="INSTANCE")["ids"] == []
    runs = server.aws("list-runs", "--pipeline-id", pipeline_id, check=False)
    assert runs.returncode == 0, runs.stderr
    with pytest.raises(client.exceptions.InvalidRequestException, match="sphere"):
        client.query_objects(pipelineId=pipeline_id, sphere="GALAXY")
    with pytest.raises(client.exceptions.InvalidRequestException, match="BETWEEN takes exactly two values"):
        client.query_objects(pipelineId=pipeline_id, sphere="COMPONENT", query={"selectors": [
            {"fieldName": "@id", "operator": {"type": "BETWEEN", "values": ["A1"]}}]})


@pytest.mark.sqlite_only
def test_guard_rails_refuse_credentials_and_flag_personal_data(tmp_path):
    import json as json_module
    import sqlite3
    from conftest import Server
    server = Server(tmp_path / "data").start()
    try:
        client = server.client()
        with pytest.raises(client.exceptions.InvalidRequestException, match="value of tag 1 holds a password inside a URL"):
            client.create_pipeline(name="p", uniqueId="u1", tags=[{"key": "db", "value": "postgres://app:s3cret@db/x"}])
        with pytest.raises(client.exceptions.InvalidRequestException, match="description holds an AWS access key id"):
            client.create_pipeline(name="p", uniqueId="u2", description="uses AKIAIOSFODNN7EXAMPLE")
        pipeline_id = client.create_pipeline(name="p", uniqueId="u3", tags=[{"key": "owner", "value": "jane.doe@example.com"}])["pipelineId"]
        with pytest.raises(client.exceptions.InvalidRequestException, match="FATAL.*CREDENTIAL_IN_DEFINITION"):
            client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=[
                {"id": "Db", "name": "Db", "fields": [{"key": "type", "stringValue": "JdbcDatabase"},
                                                      {"key": "connectionString", "stringValue": "jdbc:mysql://admin:hunter2@db:3306/x"}]}])
        assert client.get_pipeline_definition(pipelineId=pipeline_id)["pipelineObjects"] == []
    finally:
        server.stop()
    connection = sqlite3.connect(f"file:{server.data_dir / 'sluice.db'}?mode=ro", uri=True)
    records = [json_module.loads(row[0]) for row in connection.execute("SELECT record FROM audit_records ORDER BY seq")]
    connection.close()
    created = [r for r in records if r["eventName"] == "CreatePipeline" and "errorCode" not in r][0]
    assert created["additionalEventData"] == {"guardRailFindings": ["the value of tag 1 seems to hold an email address"]}
    assert "s3cret" not in (tmp_path / "data.log").read_text()
    refused = [r for r in records if r["eventName"] == "CreatePipeline" and r.get("errorCode")]
    assert refused and all("s3cret" not in json_module.dumps(r) for r in refused)
