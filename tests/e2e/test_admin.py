"""Sluice's administration API (`SluiceAdmin.<Op>`, IAM actions `sluice:<Op>`): keys rotated and
re-wrapped, and the audit trail verified, through a running server — authorized and audited like
every other call."""

import base64
import json
import pytest
import os
import subprocess
import time

from conftest import SLUICE, Server
from test_encryption import database, kek_version, put_secret_definition
from test_iam import allow, sluice_iam, user_with


def admin(server, operation, body=None, *, key=None):
    status, _, parsed = server.raw(f"SluiceAdmin.{operation}", body or {}, service="sluice",
                                   access_key_id=key["AccessKeyId"] if key else None,
                                   secret=key["SecretAccessKey"] if key else None)
    return status, parsed


def sluice_cli(server, *args, env=None, check=True):
    result = subprocess.run([SLUICE, *args, "--endpoint", server.url], capture_output=True, text=True,
                            env={**server.cli_env(), **(env or {})}, timeout=120)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.mark.sqlite_only
def test_rotate_rewrap_and_verify_through_the_api(tmp_path):
    server = Server(tmp_path / "data", ["--audit-delivery-seconds", "1", "--audit-digest-seconds", "1"]).start()
    try:
        client = server.client()
        pipeline_id = client.create_pipeline(name="adm", uniqueId="adm")["pipelineId"]
        put_secret_definition(client, pipeline_id)
        # A user with an MFA device: its seed is sealed under the KEK too.
        sluice_iam(server, "create-user", "mfa-holder")
        status, device = server.iam("CreateVirtualMFADevice", {"VirtualMFADeviceName": "mfa-holder"})
        assert status == 200, device

        status, before = admin(server, "GetKeyStatus")
        assert status == 200, before
        assert before["KeySource"] == "FOLDER" and before["KeyVersions"] == [1] and before["PendingRewrapTotal"] == 0
        assert before["Rewrap"]["State"] == "NEVER_RUN" and before["Fips"] is False

        rotated = sluice_cli(server, "keys", "rotate")
        assert "version 2" in rotated.stdout, rotated.stdout
        status, after = admin(server, "GetKeyStatus")
        assert after["KeyVersions"] == [1, 2] and after["NewestVersion"] == 2
        # The root's key, the pipeline's data key and the MFA seed are still under version 1.
        assert after["PendingRewrap"] == {"AccessKeys": 1, "DataKeys": 1, "MfaSeeds": 1, "PlaintextDefinitions": 0,
                                          "RoleSecrets": 0}

        rewrapped = sluice_cli(server, "keys", "rewrap")
        assert "re-sealed 1 access key secret(s), 1 MFA seed(s), 1 data key(s)" in rewrapped.stdout, rewrapped.stdout
        status, done = admin(server, "GetKeyStatus")
        assert done["PendingRewrapTotal"] == 0 and done["Rewrap"]["State"] == "SUCCEEDED"
        assert done["Rewrap"]["Resealed"]["DataKeys"] == 1
        # The server still reads everything it sealed, and the root's re-sealed key still signs.
        fields = {f["key"]: f.get("stringValue") for o in client.get_pipeline_definition(pipelineId=pipeline_id)
                  ["pipelineObjects"] for f in o["fields"]}
        assert fields["*password"] == "field-secret-hunter2"

        with database(server.data_dir) as connection:
            seeds = [kek_version(row[0]) for row in connection.execute("SELECT sealed_seed FROM mfa_devices")]
            data_keys = [kek_version(row[0]) for row in connection.execute("SELECT wrapped FROM data_keys")]
        assert seeds == [2] and data_keys == [2]

        status_text = sluice_cli(server, "keys", "status").stdout
        assert '"NewestVersion": 2' in status_text

        time.sleep(2.5)  # let the audit worker deliver and digest
        verified = sluice_cli(server, "audit", "verify")
        assert "intact" in verified.stdout, verified.stdout
        status, report = admin(server, "VerifyAuditTrail", {"StartTime": "2000-01-01T00:00:00Z"})
        assert status == 200 and report["Intact"] is True and report["RecordsChecked"] > 5, report
        status, bad = admin(server, "VerifyAuditTrail", {"StartTime": "yesterday"})
        assert status == 400 and bad["__type"] == "InvalidRequestException" and "StartTime" in bad["message"]

        # Every administrative act is in the trail, under its own event source.
        looked_up = subprocess.run([SLUICE, "audit", "lookup", "--endpoint", server.url, "--event-name", "RotateKeys",
                                    "--json"], capture_output=True, text=True, env=server.cli_env(), timeout=60)
        assert looked_up.returncode == 0, looked_up.stderr
        records = [json.loads(line) for line in looked_up.stdout.splitlines() if line.strip()]
        assert [r["eventSource"] for r in records] == ["sluice.amazonaws.com"], records
        assert records[0]["readOnly"] is False and "errorCode" not in records[0]
    finally:
        server.stop()


def test_admin_operations_need_their_own_permission(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        _, operator_key, _ = user_with(server, "operator", "SluicePipelineOperator")
        status, refused = admin(server, "GetKeyStatus", key=operator_key)
        assert status == 400 and refused["__type"] == "AccessDeniedException"
        assert "sluice:GetKeyStatus" in refused["message"] and ":keyring" in refused["message"]
        _, auditor_key, _ = user_with(server, "auditor", documents=[allow("sluice:GetKeyStatus",
                                                                          "sluice:VerifyAuditTrail")])
        status, allowed = admin(server, "GetKeyStatus", key=auditor_key)
        assert status == 200, allowed
        status, allowed = admin(server, "VerifyAuditTrail", key=auditor_key)
        assert status == 200 and allowed["Intact"] is True, allowed
        for operation in ("RotateKeys", "RewrapKeys"):
            status, refused = admin(server, operation, key=auditor_key)
            assert status == 400 and f"sluice:{operation}" in refused["message"], refused
        # Nothing was rotated by the refused call.
        assert sorted(p.name for p in (server.data_dir / "keys").glob("kek-v*.key")) == ["kek-v1.key"]
        status, unknown = admin(server, "DropKeys")
        assert status == 400 and unknown["__type"] == "UnknownOperationException"
    finally:
        server.stop()


def test_keys_from_the_environment_cannot_be_rotated_by_the_server(tmp_path):
    version_1 = {"SLUICE_KEK_V1": base64.b64encode(os.urandom(32)).decode()}
    server = Server(tmp_path / "data", extra_env=version_1).start()
    try:
        status, answer = admin(server, "RotateKeys")
        assert status == 400 and answer["__type"] == "InvalidRequestException"
        assert "environment" in answer["message"]
        status, answer = admin(server, "GetKeyStatus")
        assert answer["KeySource"] == "ENVIRONMENT" and answer["KeyVersions"] == [1]
    finally:
        server.stop()


def test_rotation_and_rewrap_while_writes_continue(tmp_path):
    import threading
    server = Server(tmp_path / "data").start()
    try:
        client = server.client()
        for index in range(20):  # data keys under version 1 for the re-wrap to work through
            created = client.create_pipeline(name=f"before{index}", uniqueId=f"before{index}")["pipelineId"]
            put_secret_definition(client, created)
        written, errors, stop = [], [], threading.Event()

        def writer():
            writer_client = server.client()
            index = 0
            while not stop.is_set():
                try:
                    created = writer_client.create_pipeline(name=f"w{index}", uniqueId=f"w{index}")["pipelineId"]
                    put_secret_definition(writer_client, created)
                    written.append(created)
                except Exception as error:  # noqa: BLE001 - reported below
                    errors.append(repr(error))
                index += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            time.sleep(0.3)
            sluice_cli(server, "keys", "rotate")
            rewrapped = sluice_cli(server, "keys", "rewrap")
            # The 20 made before, and whatever the writer made before the rotation.
            import re
            assert int(re.search(r"(\d+) data key\(s\)", rewrapped.stdout).group(1)) >= 20, rewrapped.stdout
            time.sleep(0.3)
        finally:
            stop.set()
            thread.join()
        assert not errors, errors
        assert len(written) >= 3, written
        status, answer = admin(server, "GetKeyStatus")
        assert answer["PendingRewrapTotal"] == 0, answer
        for pipeline_id in written:
            objects = client.get_pipeline_definition(pipelineId=pipeline_id)["pipelineObjects"]
            assert {f["key"]: f.get("stringValue") for o in objects for f in o["fields"]}["*password"] \
                == "field-secret-hunter2"
    finally:
        server.stop()
