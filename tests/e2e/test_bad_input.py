"""Bad input gets a 4xx with an AWS error type and a message naming the member; never a 5xx."""

import json
import random

import pytest

from conftest import unique


def test_malformed_json_is_a_serialization_error(server):
    status, _, body = server.raw("DataPipeline.CreatePipeline", '{"name": "x", ')
    assert (status, body["__type"]) == (400, "SerializationException")
    assert "not valid JSON" in body["message"]


def test_wrong_types_name_the_member(server):
    body = {"pipelineId": "df-X", "pipelineObjects": [{"id": "A", "name": "A", "fields": [{"key": "k", "stringValue": 3}]}]}
    status, _, answer = server.raw("DataPipeline.PutPipelineDefinition", body)
    assert (status, answer["__type"]) == (400, "InvalidRequestException")
    assert "pipelineObjects[0].fields[0].stringValue" in answer["message"]
    status, _, answer = server.raw("DataPipeline.CreatePipeline", {"name": "x"})
    assert status == 400 and "uniqueId" in answer["message"]
    status, _, answer = server.raw("DataPipeline.CreatePipeline", [1, 2])
    assert status == 400 and answer["__type"] == "InvalidRequestException"


def test_oversize_and_control_characters_are_refused_naming_the_member(server, client):
    with pytest.raises(client.exceptions.InvalidRequestException, match="Value at 'name'.*less than or equal to 1024"):
        client.create_pipeline(name="n" * 1025, uniqueId=unique())
    with pytest.raises(client.exceptions.InvalidRequestException, match="Value at 'uniqueId'.*pattern"):
        client.create_pipeline(name="n", uniqueId="bad\u0001id")
    pipeline_id = client.create_pipeline(name="big", uniqueId=unique())["pipelineId"]
    big = [{"id": "A", "name": "A", "fields": [{"key": "myNote", "stringValue": "x" * 10241}]}]
    with pytest.raises(client.exceptions.InvalidRequestException, match="pipelineObjects.1.member.fields.1.member.stringValue"):
        client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=big)


def test_unknown_or_missing_operation(server):
    status, _, body = server.raw("DataPipeline.DropEverything", {})
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    status, _, body = server.raw(None, {})
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    assert "X-Amz-Target" in body["message"]
    status, _, body = server.raw("DataPipeline.ListPipelines", {}, method="GET")
    assert status == 400


def test_a_50_megabyte_body_is_refused_before_it_is_read(server):
    status, _, body = server.raw("DataPipeline.CreatePipeline", b"", content_length=50 * 1024 * 1024, send_body=False)
    assert (status, body["__type"]) == (413, "RequestEntityTooLarge")
    assert "larger than the limit" in body["message"]


def test_a_body_over_the_limit_without_a_length_is_refused(server):
    # Chunked, so the server only learns the size while reading.
    import http.client
    import ssl
    connection = http.client.HTTPSConnection("localhost", server.port, context=ssl.create_default_context(cafile=server.cert))
    connection.putrequest("POST", "/")
    connection.putheader("x-amz-target", "DataPipeline.ListPipelines")
    connection.putheader("transfer-encoding", "chunked")
    connection.endheaders()
    chunk = b"x" * (1024 * 1024)
    try:
        for _ in range(30):
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        connection.send(b"0\r\n\r\n")
    except OSError:
        # The server answered and closed while we were still sending: expected.
        pass
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["__type"] == "RequestEntityTooLarge"


def test_random_bodies_never_cause_a_server_error(server):
    generator = random.Random(20261128)
    targets = ["CreatePipeline", "DeletePipeline", "DescribePipelines", "ListPipelines", "PutPipelineDefinition",
               "ValidatePipelineDefinition", "GetPipelineDefinition", "AddTags", "RemoveTags", "ActivatePipeline"]
    members = ["pipelineId", "name", "uniqueId", "pipelineObjects", "fields", "tags", "tagKeys", "marker", "version",
               "pipelineIds", "parameterObjects", "parameterValues", "id", "key", "stringValue", "refValue"]

    def value(depth=0):
        kind = generator.randrange(7 if depth < 3 else 4)
        if kind == 0:
            return generator.randrange(-5, 5)
        if kind == 1:
            return "".join(generator.choice("df-Ab#{}@*\u0000\u00e9 ") for _ in range(generator.randrange(0, 30)))
        if kind == 2:
            return None
        if kind == 3:
            return generator.random() < 0.5
        if kind in (4, 5):
            return {generator.choice(members): value(depth + 1) for _ in range(generator.randrange(0, 5))}
        return [value(depth + 1) for _ in range(generator.randrange(0, 4))]

    for _ in range(300):
        body = {generator.choice(members): value() for _ in range(generator.randrange(0, 6))}
        status, _, answer = server.raw("DataPipeline." + generator.choice(targets), body)
        assert status < 500, (body, answer)
        if status >= 400:
            assert answer["__type"] and answer["message"]
