"""The process itself: bootstrap credentials, TLS, plain HTTP only on loopback, restarts, and no
secret in any log."""

import os
import socket
import ssl
import stat
import subprocess
import warnings

import pytest

from conftest import SLUICE, Server, unique


@pytest.mark.sqlite_only
def test_bootstrap_files_are_private_and_survive_a_restart(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        pipeline_id = server.client().create_pipeline(name="kept", uniqueId="u")["pipelineId"]
        first_key = server.access_key_id
        with open(server.cert) as handle:
            first_cert = handle.read()
    finally:
        server.stop()
    data = tmp_path / "data"
    assert stat.S_IMODE(os.stat(data / "bootstrap-credentials.json").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(data / "tls" / "key.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    restarted = Server(data).start()
    try:
        assert restarted.access_key_id == first_key
        assert open(restarted.cert).read() == first_cert
        described = restarted.client().describe_pipelines(pipelineIds=[pipeline_id])
        assert described["pipelineDescriptionList"][0]["name"] == "kept"
    finally:
        restarted.stop()
    assert "bootstrap-credentials.json" in (tmp_path / "data.log").read_text()


def tls_handshake(port, cert, minimum, maximum):
    context = ssl.create_default_context(cafile=cert)
    context.minimum_version = minimum
    context.maximum_version = maximum
    with socket.create_connection(("localhost", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as wrapped:
            return wrapped.version()


def test_only_tls_1_2_and_1_3_are_offered(server):
    assert tls_handshake(server.port, server.cert, ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    assert tls_handshake(server.port, server.cert, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with pytest.raises((ssl.SSLError, ConnectionResetError)), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1 are deprecated: that is the point
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_ciphers("ALL:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
        with socket.create_connection(("localhost", server.port), timeout=10) as raw:
            context.wrap_socket(raw, server_hostname="localhost")


def test_operator_certificates_are_used(tmp_path):
    # Use another server's generated pair as "the operator's own" certificate.
    donor = Server(tmp_path / "donor").start()
    donor.stop()
    server = Server(tmp_path / "data", ["--tls-cert", str(tmp_path / "donor/tls/cert.pem"),
                                         "--tls-key", str(tmp_path / "donor/tls/key.pem")]).start()
    try:
        server.cert = str(tmp_path / "donor/tls/cert.pem")
        assert "pipelineIdList" in server.client().list_pipelines()
        assert not (tmp_path / "data" / "tls").exists()
    finally:
        server.stop()


def test_plain_http_only_on_loopback(tmp_path):
    refused = subprocess.run([SLUICE, "serve", "--data-dir", str(tmp_path / "d"), "--listen", "0.0.0.0:0", "--insecure-http"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0
    assert "only allowed on a loopback address" in refused.stderr
    server = Server(tmp_path / "data", ["--insecure-http"]).start()
    try:
        assert server.url.startswith("http://")
        assert "pipelineIdList" in server.client().list_pipelines()
    finally:
        server.stop()


def test_no_secret_or_signature_reaches_the_log(tmp_path):
    server = Server(tmp_path / "data").start()
    try:
        client = server.client()
        pipeline_id = client.create_pipeline(name="secrets", uniqueId=unique())["pipelineId"]
        client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=[
            {"id": "Db", "name": "Db", "fields": [{"key": "type", "stringValue": "JdbcDatabase"},
                                                  {"key": "*password", "stringValue": "hunter2-very-secret"}]}])
        server.raw("DataPipeline.ListPipelines", {}, secret="wrong-secret-value")
        status, _, _ = server.raw("DataPipeline.ListPipelines", {})
        assert status == 200
    finally:
        server.stop()
    log = (tmp_path / "data.log").read_text()
    assert "request" in log and server.access_key_id in log  # the log is real and names the key id
    for secret in (server.secret_access_key, "hunter2-very-secret", "wrong-secret-value", "Signature="):
        assert secret not in log


def test_openssl_sees_tls_1_0_and_1_1_refused_and_1_2_1_3_accepted(server):
    import shutil
    openssl = shutil.which("openssl")
    assert openssl, "openssl is part of the base system"
    for flag, accepted in (("-tls1", False), ("-tls1_1", False), ("-tls1_2", True), ("-tls1_3", True)):
        # SECLEVEL=0 lets the client offer the old versions at all, so the refusal is the server's.
        result = subprocess.run([openssl, "s_client", "-connect", f"127.0.0.1:{server.port}", flag, "-cipher", "DEFAULT@SECLEVEL=0",
                                 "-CAfile", server.cert, "-servername", "localhost"],
                                input="", capture_output=True, text=True, timeout=30)
        output = result.stdout + result.stderr
        if accepted:
            assert result.returncode == 0 and "Verify return code: 0 (ok)" in output, (flag, output)
        else:
            assert result.returncode != 0 and "alert" in output, (flag, output)


def test_doctor_tls_reports_versions_and_trust(server):
    import os
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    trusted = subprocess.run([SLUICE, "doctor", "tls", server.url, "--ca-bundle", server.cert],
                             capture_output=True, text=True, env=env, timeout=60)
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert "TLS 1.3       offered" in trusted.stdout and "TLS 1.2       offered" in trusted.stdout
    assert "certificate   trusted" in trusted.stdout
    untrusted = subprocess.run([SLUICE, "doctor", "tls", server.url], capture_output=True, text=True, env=env, timeout=60)
    assert untrusted.returncode == 1 and "NOT trusted" in untrusted.stdout and "UnknownIssuer" in untrusted.stdout
    unreachable = subprocess.run([SLUICE, "doctor", "tls", "https://localhost:1"], capture_output=True, text=True, env=env, timeout=60)
    assert unreachable.returncode == 2 and "cannot connect" in unreachable.stdout
