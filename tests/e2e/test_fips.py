"""FIPS mode: a build with the `fips` feature runs with `--fips` on AWS-LC's FIPS 140-3 module,
says so on its status endpoint, and offers only approved TLS algorithms. A build without the
module refuses `--fips` instead of pretending."""

import json
import os
import socket
import ssl
import subprocess
import urllib.request

import pytest

from conftest import SLUICE, Server

FIPS_BIN = os.environ.get("SLUICE_FIPS_BIN")


def status(server):
    context = ssl.create_default_context(cafile=server.cert)
    with urllib.request.urlopen(f"{server.url}/sluice/status", context=context, timeout=10) as response:
        return json.loads(response.read())


def test_a_build_without_the_module_refuses_fips(tmp_path):
    result = subprocess.run([SLUICE, "serve", "--data-dir", str(tmp_path / "d"), "--listen", "127.0.0.1:0", "--fips"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "FIPS" in result.stderr and "--features fips" in result.stderr


def test_the_status_endpoint_reports_fips_false_without_it(server):
    shown = status(server)
    assert shown == {"service": "sluice", "version": shown["version"], "fips": False,
                     "tlsVersions": ["TLSv1.2", "TLSv1.3"], "scheduler": shown["scheduler"]}
    assert shown["scheduler"] in ({"leader": True}, {"leader": False})


@pytest.fixture
def fips_server(tmp_path):
    if not FIPS_BIN:
        if os.environ.get("SLUICE_REQUIRE_FIPS") == "1":
            pytest.fail("SLUICE_FIPS_BIN is not set: scripts/test builds it")
        pytest.skip("no FIPS build (scripts/test builds one with --features fips)")
    server = Server(tmp_path / "data", ["--fips"], binary=FIPS_BIN).start()
    yield server
    server.stop()


def test_fips_mode_end_to_end(fips_server):
    assert status(fips_server)["fips"] is True
    client = fips_server.client()
    pipeline_id = client.create_pipeline(name="fips", uniqueId="fips")["pipelineId"]
    assert client.describe_pipelines(pipelineIds=[pipeline_id])["pipelineDescriptionList"][0]["name"] == "fips"
    # ChaCha20-Poly1305 is not FIPS-approved: a client offering only that gets no handshake.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(fips_server.cert)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-CHACHA20-POLY1305")
    with pytest.raises(ssl.SSLError):
        with socket.create_connection(("localhost", fips_server.port), timeout=10) as raw:
            context.wrap_socket(raw, server_hostname="localhost")
    # An approved suite works.
    approved = ssl.create_default_context(cafile=fips_server.cert)
    approved.maximum_version = ssl.TLSVersion.TLSv1_2
    approved.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384")
    with socket.create_connection(("localhost", fips_server.port), timeout=10) as raw:
        with approved.wrap_socket(raw, server_hostname="localhost") as wrapped:
            assert "AES" in wrapped.cipher()[0]
