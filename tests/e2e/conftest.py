"""End-to-end harness: starts the real `sluice serve` binary and drives it with real clients
(boto3, the AWS CLI, and raw HTTPS with our own SigV4 signer for what SDKs will not send)."""

import datetime
import hashlib
import hmac
import http.client
import json
import os
import pathlib
import shutil
import ssl
import subprocess
import time

import boto3
import botocore.config
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SLUICE = os.environ.get("SLUICE_BIN", str(ROOT / "target" / "debug" / "sluice"))
SAMPLES = ROOT.parent / "shared" / "reference" / "dp-samples"
VENV_BIN = pathlib.Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"


POSTGRES = os.environ.get("SLUICE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432")


_POSTGRES_DATABASES = {}


def postgres_database_for(data_dir):
    """The PostgreSQL database of a data directory (created empty the first time): a server
    restarted on the same directory finds its state, as it would in the SQLite file."""
    import uuid
    key = str(pathlib.Path(data_dir).resolve())
    if key not in _POSTGRES_DATABASES:
        name = f"sluice_e2e_{os.getpid()}_{uuid.uuid4().hex[:12]}"
        subprocess.run(["psql", f"{POSTGRES}/postgres", "-qc", f'CREATE DATABASE "{name}"'], check=True,
                       capture_output=True, timeout=60)
        _POSTGRES_DATABASES[key] = f"{POSTGRES}/{name}"
    return _POSTGRES_DATABASES[key]


class Server:
    def __init__(self, data_dir, extra_args=(), extra_env=None, binary=None):
        self.binary = binary or SLUICE
        self.extra_env = extra_env or {}
        self.data_dir = pathlib.Path(data_dir)
        self.log_path = self.data_dir.parent / (self.data_dir.name + ".log")
        self.extra_args = list(extra_args)
        # Answer PollForTask at once unless a test is about the long poll.
        if "--poll-wait-seconds" not in self.extra_args:
            self.extra_args += ["--poll-wait-seconds", "0"]
        # No in-process runner (its polls would be in every audit count) unless a test asks.
        if "--worker-group" not in self.extra_args and "--run-resources" not in self.extra_args:
            self.extra_args += ["--no-runner"]
        self.process = None
        self.url = None
        # SLUICE_TEST_STORE=postgres runs every server on a fresh PostgreSQL database of its own
        # (the whole suite, once per backend).
        if os.environ.get("SLUICE_TEST_STORE") == "postgres" and "--store" not in self.extra_args:
            self.extra_args += ["--store", postgres_database_for(self.data_dir)]

    def start(self):
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [self.binary, "serve", "--data-dir", str(self.data_dir), "--listen", "127.0.0.1:0", *self.extra_args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env={**os.environ, "SLUICE_LOG": "debug", **self.extra_env},
        )
        line = self.process.stdout.readline().decode()
        if "listening on" not in line:
            self.process.kill()
            raise RuntimeError(f"sluice serve did not start: {line!r}; log: {self.log_path.read_text()}")
        self.url = line.strip().split("listening on ", 1)[1].replace("127.0.0.1", "localhost")
        self.port = int(self.url.rsplit(":", 1)[1])
        creds = json.loads((self.data_dir / "bootstrap-credentials.json").read_text())
        self.access_key_id = creds["AccessKeyId"]
        self.secret_access_key = creds["SecretAccessKey"]
        self.cert = str(self.data_dir / "tls" / "cert.pem")
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()

    def client(self, **overrides):
        config = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"})
        return boto3.client(
            "datapipeline",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=overrides.get("access_key_id", self.access_key_id),
            aws_secret_access_key=overrides.get("secret_access_key", self.secret_access_key),
            verify=self.cert if self.url.startswith("https") else False,
            config=config,
        )

    def cli_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key_id,
            AWS_SECRET_ACCESS_KEY=self.secret_access_key,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CA_BUNDLE=self.cert,
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        )
        return env

    def aws(self, *args, check=True):
        """Runs `aws datapipeline ...` against this server; returns parsed JSON output (or None)."""
        command = [str(VENV_BIN / "aws"), "--endpoint-url", self.url, "--output", "json", "datapipeline", *args]
        result = subprocess.run(command, capture_output=True, text=True, env=self.cli_env(), timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        if not check:
            return result
        return json.loads(result.stdout) if result.stdout.strip() else None

    def raw(self, target, body, *, sign=True, headers=None, access_key_id=None, secret=None, amz_date=None,
            signed_headers=None, method="POST", content_length=None, send_body=True, service="datapipeline"):
        """Sends one request with full control over what is signed; returns (status, headers, json)."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        host = f"localhost:{self.port}"
        all_headers = {"host": host, "content-type": "application/x-amz-json-1.1"}
        if target is not None:
            all_headers["x-amz-target"] = target
        if sign:
            now = amz_date or datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            all_headers["x-amz-date"] = now
            all_headers.update(headers or {})
            names = signed_headers or sorted(all_headers)
            all_headers["authorization"] = sigv4_authorization(
                method, "/", names, all_headers, body, access_key_id or self.access_key_id,
                secret or self.secret_access_key, now, service=service)
        else:
            all_headers.update(headers or {})
        context = ssl.create_default_context(cafile=self.cert)
        connection = http.client.HTTPSConnection("localhost", self.port, context=context, timeout=60)
        if content_length is not None or not send_body:
            connection.putrequest(method, "/", skip_host=True, skip_accept_encoding=True)
            for name, value in all_headers.items():
                connection.putheader(name, value)
            connection.putheader("content-length", str(content_length if content_length is not None else len(body)))
            connection.endheaders()
            if send_body:
                connection.send(body)
        else:
            connection.request(method, "/", body=body, headers=all_headers)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload
        return response.status, {k.lower(): v for k, v in response.getheaders()}, parsed


    def iam(self, operation, body=None, *, access_key_id=None, secret=None):
        """One call of Sluice's identity API (`SluiceIAM.<Op>`, signed for `iam`): (status, json)."""
        status, _, parsed = self.raw(f"SluiceIAM.{operation}", body or {}, access_key_id=access_key_id,
                                     secret=secret, service="iam")
        return status, parsed


def sigv4_authorization(method, path, signed_names, headers, body, access_key_id, secret, amz_date,
                        region="us-east-1", service="datapipeline"):
    date = amz_date[:8]
    canonical_headers = "".join(f"{name}:{' '.join(str(headers[name]).split())}\n" for name in signed_names)
    canonical = "\n".join([method, path, "", canonical_headers, ";".join(signed_names), hashlib.sha256(body).hexdigest()])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])

    def mac(key, text):
        return hmac.new(key, text.encode(), hashlib.sha256).digest()

    key = mac(mac(mac(mac(("AWS4" + secret).encode(), date), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return (f"AWS4-HMAC-SHA256 Credential={access_key_id}/{scope}, "
            f"SignedHeaders={';'.join(signed_names)}, Signature={signature}")


def free_port():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class S3Server:
    """s3s-fs, a real S3-protocol server backed by a folder (installed by scripts/test)."""

    ACCESS_KEY = "s3testaccesskey"
    SECRET_KEY = "s3test-secret-key-value"

    def __init__(self, root):
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        binary = shutil.which("s3s-fs") or str(pathlib.Path.home() / ".cargo" / "bin" / "s3s-fs")
        self.process = subprocess.Popen(
            [binary, "--host", "127.0.0.1", "--port", str(self.port), "--access-key", self.ACCESS_KEY,
             "--secret-key", self.SECRET_KEY, str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import socket
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {"AWS_ACCESS_KEY_ID": self.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY}

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def s3_server(tmp_path):
    instance = S3Server(tmp_path / "s3")
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    instance = Server(tmp_path_factory.mktemp("shared") / "data").start()
    yield instance
    instance.stop()


@pytest.fixture
def fresh_server(tmp_path):
    instance = Server(tmp_path / "data").start()
    yield instance
    instance.stop()


@pytest.fixture
def client(server):
    return server.client()


def wait_for(what, check, seconds=60):
    """`check()`'s first truthy value within `seconds`, or an AssertionError naming `what`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def unique(prefix="p"):
    return f"{prefix}-{time.time_ns()}"


class RecordingProxy:
    """A forwarding HTTP(S) proxy in front of an S3-protocol server that records the headers of
    every request (s3s-fs ignores server-side-encryption headers, so this is where the test sees
    what the runner asked for). With `tls=True` it serves a self-signed certificate for
    localhost (in `self.cert`), which nothing trusts unless told to."""

    def __init__(self, target_port, workdir, tls=False):
        import http.server
        import threading
        self.requests = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
                upstream = http.client.HTTPConnection("127.0.0.1", target_port, timeout=60)
                upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    upstream.putheader(name, value)
                upstream.endheaders()
                if body:
                    upstream.send(body)
                response = upstream.getresponse()
                payload = response.read()
                self.send_response_only(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.cert = None
        if tls:
            workdir = pathlib.Path(workdir)
            workdir.mkdir(parents=True, exist_ok=True)
            # A private CA (self.cert, what a client must be told to trust) and a certificate it issued.
            self.cert, ca_key = str(workdir / "ca.pem"), str(workdir / "ca.key")
            cert, key, request = str(workdir / "proxy.pem"), str(workdir / "proxy.key"), str(workdir / "proxy.csr")
            extensions = workdir / "san.ext"
            extensions.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
                                  "extendedKeyUsage=serverAuth\n")
            for command in (
                    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=Test private CA",
                     "-keyout", ca_key, "-out", self.cert],
                    ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", key, "-out", request],
                    ["x509", "-req", "-in", request, "-CA", self.cert, "-CAkey", ca_key, "-CAcreateserial", "-days", "1",
                     "-extfile", str(extensions), "-out", cert]):
                subprocess.run(["openssl", *command], check=True, capture_output=True)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.endpoint = f"{'https' if tls else 'http'}://localhost:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def writes(self):
        """(path, x-amz-server-side-encryption, its KMS key id) of every PUT and POST."""
        return [(path, headers.get("x-amz-server-side-encryption"),
                 headers.get("x-amz-server-side-encryption-aws-kms-key-id"))
                for method, path, headers in self.requests if method in ("PUT", "POST")]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "sqlite_only: reads the SQLite file itself, or uses an offline --data-dir command")


def pytest_collection_modifyitems(config, items):
    # On PostgreSQL (SLUICE_TEST_STORE=postgres) the tests that open the SQLite file, or the
    # offline commands that do, do not apply; every other test runs against PostgreSQL.
    if os.environ.get("SLUICE_TEST_STORE") == "postgres":
        skip = pytest.mark.skip(reason="reads the SQLite file or uses an offline --data-dir command")
        for item in items:
            if "sqlite_only" in item.keywords:
                item.add_marker(skip)


def pytest_sessionstart(session):
    # Databases an earlier PostgreSQL run left behind go first.
    if os.environ.get("SLUICE_TEST_STORE") == "postgres":
        listed = subprocess.run(
            ["psql", f"{POSTGRES}/postgres", "-Atc", "SELECT datname FROM pg_database WHERE datname LIKE 'sluice\\_e2e\\_%'"],
            capture_output=True, text=True, timeout=60)
        for name in listed.stdout.split():
            # A database of a test process still running (another checkout's run) stays.
            pid = name.split("_")[2] if name.count("_") >= 3 else ""
            if pid.isdigit() and os.path.exists(f"/proc/{pid}"):
                continue
            subprocess.run(["psql", f"{POSTGRES}/postgres", "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
                           capture_output=True, timeout=60)
