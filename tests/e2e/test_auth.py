"""Every request must be SigV4-signed for `datapipeline` with a known key; failures answer with
AWS's error types, and nothing is done for an unauthenticated call."""

import datetime

import pytest
import botocore.exceptions

LIST = "DataPipeline.ListPipelines"


def test_a_correctly_signed_raw_request_is_accepted(server):
    status, headers, body = server.raw(LIST, {})
    assert status == 200, body
    assert "pipelineIdList" in body and headers["x-amzn-requestid"]
    assert headers["content-type"] == "application/x-amz-json-1.1"


def test_unsigned_requests_are_refused(server):
    status, _, body = server.raw(LIST, {}, sign=False)
    assert (status, body["__type"]) == (403, "MissingAuthenticationToken")


def test_a_wrong_secret_fails_the_signature(server):
    client = server.client(secret_access_key="x" * 40)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.list_pipelines()
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    status, _, body = server.raw(LIST, {}, secret="wrong")
    assert (status, body["__type"]) == (400, "InvalidSignatureException")


def test_an_unknown_access_key_is_unrecognized(server):
    client = server.client(access_key_id="AKIAUNKNOWNUNKNOWN00")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.list_pipelines()
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_a_request_skewed_by_more_than_five_minutes_has_expired(server):
    for minutes in (-10, 10):
        when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=minutes)
        status, _, body = server.raw(LIST, {}, amz_date=when.strftime("%Y%m%dT%H%M%SZ"))
        assert (status, body["__type"]) == (400, "RequestExpired"), body


def test_malformed_or_incomplete_signatures(server):
    status, _, body = server.raw(LIST, {}, sign=False, headers={"authorization": "AWS4-HMAC-SHA256 garbage"})
    assert (status, body["__type"]) == (400, "IncompleteSignature")
    # x-amz-target sent but not signed.
    status, _, body = server.raw(LIST, {}, signed_headers=["host", "x-amz-date"])
    assert (status, body["__type"]) == (400, "IncompleteSignature")
    assert "x-amz-target" in body["message"]
    # A session token cannot be valid yet: no session credentials exist.
    status, _, body = server.raw(LIST, {}, headers={"x-amz-security-token": "token"})
    assert (status, body["__type"]) == (400, "UnrecognizedClientException")


def test_a_tampered_body_fails_the_signature(server):
    # Sign one body, send another: the signature covers the body hash.
    import conftest
    import json
    import http.client
    import ssl
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    headers = {"host": f"localhost:{server.port}", "content-type": "application/x-amz-json-1.1",
               "x-amz-target": "DataPipeline.CreatePipeline", "x-amz-date": now}
    signed_body = json.dumps({"name": "a", "uniqueId": "b"}).encode()
    headers["authorization"] = conftest.sigv4_authorization(
        "POST", "/", sorted(headers), headers, signed_body, server.access_key_id, server.secret_access_key, now)
    connection = http.client.HTTPSConnection("localhost", server.port, context=ssl.create_default_context(cafile=server.cert))
    connection.request("POST", "/", body=json.dumps({"name": "evil", "uniqueId": "b"}), headers=headers)
    response = connection.getresponse()
    body = json.loads(response.read())
    assert (response.status, body["__type"]) == (400, "InvalidSignatureException")
