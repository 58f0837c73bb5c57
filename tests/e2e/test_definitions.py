"""Definitions: the CLI's file format in and out, validation results, and every public sample
through parse → validate → put → get."""

import json
import pathlib
import subprocess

import pytest

from conftest import SAMPLES, SLUICE, unique

LIST_DEFINITION = {
    "objects": [
        {"id": "Default", "name": "Default", "scheduleType": "ondemand", "failureAndRerunMode": "CASCADE",
         "workerGroup": "wg-1"},
        {"id": "A", "type": "ShellCommandActivity", "command": "echo $1 $2 $3",
         "scriptArgument": ["z", "a", "m"], "dependsOn": [{"ref": "B"}, {"ref": "C"}]},
        {"id": "B", "type": "ShellCommandActivity", "command": "true"},
        {"id": "C", "name": "Cee", "type": "ShellCommandActivity", "command": "true"},
    ],
    "parameters": [{"id": "myP", "type": "String", "allowedValues": ["a", "b"], "optional": "true", "isArray": "true"}],
    "values": {"myP": ["b", "a"]},
}


def normalise(file_definition):
    """What `get-pipeline-definition` prints for what `put-pipeline-definition` read: names default
    to ids, one-element lists print as scalars, keys in sorted order."""
    def one(entry, keep_name):
        out = {"id": entry["id"]}
        if keep_name:
            out["name"] = entry.get("name", entry["id"])
        for key in sorted(k for k in entry if k not in ("id", "name")):
            value = entry[key]
            out[key] = value[0] if isinstance(value, list) and len(value) == 1 else value
        return out
    return {
        "objects": [one(o, True) for o in file_definition["objects"]],
        "parameters": [one(p, False) for p in file_definition.get("parameters", [])],
        "values": {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in file_definition.get("values", {}).items()},
    }


def test_cli_file_format_round_trips_with_list_order_kept(server, tmp_path):
    pipeline_id = server.aws("create-pipeline", "--name", "lists", "--unique-id", unique())["pipelineId"]
    source = tmp_path / "definition.json"
    source.write_text(json.dumps(LIST_DEFINITION))
    result = server.aws("put-pipeline-definition", "--pipeline-id", pipeline_id, "--pipeline-definition", f"file://{source}")
    assert result["errored"] is False, result
    printed = server.aws("get-pipeline-definition", "--pipeline-id", pipeline_id)
    assert printed == normalise(LIST_DEFINITION)
    # What the CLI printed, fed back, is stored identically (checked on the wire with boto3).
    again = tmp_path / "again.json"
    again.write_text(json.dumps(printed))
    first_wire = server.client().get_pipeline_definition(pipelineId=pipeline_id)
    server.aws("put-pipeline-definition", "--pipeline-id", pipeline_id, "--pipeline-definition", f"file://{again}")
    second_wire = server.client().get_pipeline_definition(pipelineId=pipeline_id)
    for key in ("pipelineObjects", "parameterObjects", "parameterValues"):
        assert first_wire[key] == second_wire[key]
    args = [f["stringValue"] for o in second_wire["pipelineObjects"] if o["id"] == "A"
            for f in o["fields"] if f["key"] == "scriptArgument"]
    assert args == ["z", "a", "m"]
    fields = {o["id"]: o for o in second_wire["pipelineObjects"]}
    assert fields["C"]["name"] == "Cee"
    described = server.client().describe_pipelines(pipelineIds=[pipeline_id])["pipelineDescriptionList"][0]
    assert {"key": "@version", "stringValue": "2"} in described["fields"]


def test_validation_errors_are_reported_per_object_and_not_stored(client):
    pipeline_id = client.create_pipeline(name="v", uniqueId=unique())["pipelineId"]
    good = [
        {"id": "Default", "name": "Default", "fields": [{"key": "workerGroup", "stringValue": "wg"},
                                                         {"key": "schedule", "refValue": "Schedule"}]},
        {"id": "Schedule", "name": "Schedule", "fields": [{"key": "type", "stringValue": "Schedule"},
                                                           {"key": "period", "stringValue": "1 day"},
                                                           {"key": "startDateTime", "stringValue": "2012-12-12T00:00:00"}]},
    ]
    assert client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=good)["errored"] is False
    bad = json.loads(json.dumps(good))
    bad[1]["fields"][2]["stringValue"] = "bad-time"
    bad.append({"id": "Job", "name": "Job", "fields": [{"key": "type", "stringValue": "ShellCommandActivity"},
                                                       {"key": "input", "refValue": "Schedule"},
                                                       {"key": "comand", "stringValue": "ls"}]})
    result = client.validate_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=bad)
    assert result["errored"] is True
    errors = {entry["id"]: entry["errors"] for entry in result["validationErrors"]}
    warnings = {entry["id"]: entry["warnings"] for entry in result["validationWarnings"]}
    assert any(m.startswith("INVALID_FIELD_VALUE: 'startDateTime'") for m in errors["Schedule"])
    assert any("needs one of 'command', 'scriptUri'" in m for m in errors["Job"])
    assert any("'input' must reference a data node, but 'Schedule' is a Schedule" in m for m in errors["Job"])
    assert any("did you mean 'command'" in m for m in warnings["Job"])
    # Validate stores nothing; the latest definition is still the good one.
    stored = client.get_pipeline_definition(pipelineId=pipeline_id)["pipelineObjects"]
    assert [o["id"] for o in stored] == ["Default", "Schedule"]
    # Put saves a definition with (non-fatal) errors and says so.
    put = client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=bad)
    assert put["errored"] is True and put["validationErrors"]


def test_fatal_errors_refuse_the_put_and_store_nothing(client):
    pipeline_id = client.create_pipeline(name="f", uniqueId=unique())["pipelineId"]
    objects = [{"id": "Default", "name": "Default", "fields": [{"key": "workerGroup", "stringValue": ""}]}]
    with pytest.raises(client.exceptions.InvalidRequestException, match="FATAL.*workerGroup"):
        client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=objects)
    assert client.get_pipeline_definition(pipelineId=pipeline_id)["pipelineObjects"] == []
    both = [{"id": "A", "name": "A", "fields": [{"key": "parent", "stringValue": "x", "refValue": "y"}]}]
    with pytest.raises(client.exceptions.InvalidRequestException, match="both stringValue and refValue"):
        client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=both)
    too_many = [{"id": f"o{i}", "name": f"o{i}", "fields": []} for i in range(101)]
    with pytest.raises(client.exceptions.InvalidRequestException, match="101 objects; the limit is 100"):
        client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=too_many)


def test_get_definition_versions(client):
    pipeline_id = client.create_pipeline(name="g", uniqueId=unique())["pipelineId"]
    empty = client.get_pipeline_definition(pipelineId=pipeline_id, version="active")
    assert empty["pipelineObjects"] == [] and empty["parameterObjects"] == [] and empty["parameterValues"] == []
    with pytest.raises(client.exceptions.InvalidRequestException, match="'version'"):
        client.get_pipeline_definition(pipelineId=pipeline_id, version="yesterday")


def sample_files():
    companions = {"dynamo-db-export__example-parameters.json", "oracle-backup__parameters.json", "oracle-backup__values.json"}
    return sorted(p.name for p in SAMPLES.glob("*.json") if p.name not in companions)


def offline_validation(path, *extra):
    result = subprocess.run([SLUICE, "validate", str(path), *extra], capture_output=True, text=True)
    return result


@pytest.mark.parametrize("name", sample_files())
def test_every_sample_goes_through_parse_validate_put_get(server, client, name):
    path = SAMPLES / name
    text = path.read_text()
    try:
        document = json.loads(text)
    except ValueError as error:
        # Not JSON (raw line breaks in strings): our parser names line and column, like Python's.
        offline = offline_validation(path)
        assert offline.returncode == 2
        assert f"not valid JSON at line {error.lineno}, column {error.colno}" in offline.stderr, offline.stderr
        refused = server.aws("put-pipeline-definition", "--pipeline-id", "df-X", "--pipeline-definition",
                             f"file://{path}", check=False)
        assert refused.returncode != 0
        return
    pipeline_id = client.create_pipeline(name=name[:100], uniqueId=unique())["pipelineId"]
    offline = json.loads(offline_validation(path).stdout)
    if "pipelineObjects" in document or (document["objects"] and "fields" in document["objects"][0]):
        # Wire format in a file: what the sample's own boto3 scripts send.
        objects = document.get("pipelineObjects") or document["objects"]
        parameters = document.get("parameterObjects") or document.get("parameters", [])
        values = document.get("parameterValues", [])
        put = client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=objects,
                                             parameterObjects=parameters, parameterValues=values)
        stored = client.get_pipeline_definition(pipelineId=pipeline_id)
        assert stored["pipelineObjects"] == objects
        assert stored["parameterObjects"] == parameters and stored["parameterValues"] == values
    else:
        put = server.aws("put-pipeline-definition", "--pipeline-id", pipeline_id, "--pipeline-definition", f"file://{path}")
        printed = server.aws("get-pipeline-definition", "--pipeline-id", pipeline_id)
        expected = normalise(document)
        assert printed["objects"] == expected["objects"]
        assert printed.get("parameters", []) == expected["parameters"]
        assert printed.get("values", {}) == expected["values"]
    # The server and the offline validator agree, message for message.
    assert put["errored"] == offline["errored"]
    assert put["validationErrors"] == offline["validationErrors"]
    assert put["validationWarnings"] == offline["validationWarnings"]
