"""The web console in headless Chromium (Debian's `chromium`, driven by Playwright) against a real
server with an in-process runner: sign in with a password and a TOTP code, open a pipeline's
graph, rerun a failed instance and watch it turn green, find the audit record of that rerun; a
user without permission sees a refusal, not the data. Screenshots go to target/e2e-artifacts/."""

import hashlib
import http.client
import json
import os
import pathlib
import ssl
import subprocess
import time
import urllib.parse

import pytest

from conftest import SLUICE, Server, wait_for
from test_iam import totp

CHROMIUM = os.environ.get("SLUICE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = pathlib.Path(os.environ.get(
    "SLUICE_ARTIFACTS", pathlib.Path(__file__).resolve().parents[2] / "target" / "e2e-artifacts"))
PASSWORD = "Sluice-Console-2026!"

# scripts/test installs Debian's chromium and requires it; a bare pytest run without one skips.
if not os.path.exists(CHROMIUM) and not os.environ.get("SLUICE_REQUIRE_CHROMIUM"):
    pytest.skip(f"no Chromium at {CHROMIUM} (scripts/test installs Debian's chromium)", allow_module_level=True)


def instance_status(client, pipeline_id, component):
    ids = client.query_objects(pipelineId=pipeline_id, sphere="INSTANCE")["ids"]
    if not ids:
        return None
    for obj in client.describe_objects(pipelineId=pipeline_id, objectIds=ids)["pipelineObjects"]:
        fields = {f["key"]: f.get("stringValue", f.get("refValue")) for f in obj["fields"]}
        if fields.get("@componentParent") == component:
            return fields.get("@status")
    return None


def user(server, name, *policies, documents=(), mfa=False):
    status, created = server.iam("CreateUser", {"UserName": name})
    assert status == 200, created
    for index, document in enumerate(documents):
        status, policy = server.iam("CreatePolicy", {"PolicyName": f"{name}-{index}",
                                                     "PolicyDocument": json.dumps(document)})
        assert status == 200, policy
        policies += (policy["Policy"]["Arn"],)
    for policy in policies:
        arn = policy if policy.startswith("arn:") else f"arn:aws:iam::aws:policy/{policy}"
        status, body = server.iam("AttachUserPolicy", {"UserName": name, "PolicyArn": arn})
        assert status == 200, body
    # The console password goes in on stdin, never on a command line.
    result = subprocess.run([SLUICE, "iam", "set-password", name, "--endpoint", server.url], input=PASSWORD,
                            capture_output=True, text=True, env=server.cli_env(), timeout=60)
    assert result.returncode == 0 and "console password set" in result.stdout, result.stdout + result.stderr
    if not mfa:
        return None
    status, device = server.iam("CreateVirtualMFADevice", {"VirtualMFADeviceName": name})
    assert status == 200, device
    seed = device["VirtualMFADevice"]["Base32StringSeed"]
    now = int(time.time()) // 30
    status, body = server.iam("EnableMFADevice", {
        "UserName": name, "SerialNumber": device["VirtualMFADevice"]["SerialNumber"],
        "AuthenticationCode1": totp(seed, now - 2), "AuthenticationCode2": totp(seed, now - 1)})
    assert status == 200, body
    return seed


def post_form(url, path, form, cookie):
    """A form POST outside the browser (as a forger would send it): (status, body)."""
    host = url.split("//", 1)[1]
    connection = http.client.HTTPSConnection(host, context=ssl._create_unverified_context(), timeout=30)
    connection.request("POST", path, body=urllib.parse.urlencode(form), headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie, "Origin": url})
    response = connection.getresponse()
    return response.status, response.read().decode()


def sign_in(page, url, name, code=""):
    page.goto(url + "/console/signin")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    if code:
        page.fill("#code", code)
    page.click("button[type=submit]")


def test_the_console_signs_in_with_totp_reruns_a_failed_instance_and_audits_it(tmp_path):
    from playwright.sync_api import sync_playwright
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    marker = tmp_path / "second-try"
    server = Server(tmp_path / "data", extra_args=["--worker-group", "wg", "--runner-dir",
                                                   str(tmp_path / "runner")]).start()
    try:
        client = server.client()
        pipeline_id = client.create_pipeline(name="nightly-orders", uniqueId="console")["pipelineId"]
        client.add_tags(pipelineId=pipeline_id, tags=[{"key": "team", "value": "data"}])
        objects = {
            "Default": {"scheduleType": "ondemand", "workerGroup": "wg", "maximumRetries": "0"},
            "Flaky": {"type": "ShellCommandActivity",
                      # (A key assembled by the shell: one written in the definition is refused.)
                      "command": f"test -f {marker} || {{ touch {marker}; k=AKIA; "
                                 "echo \"first try fails with ${k}QWERTYUIOPASDFGH\" >&2; exit 1; }"},
            "Report": {"type": "ShellCommandActivity", "command": "echo report", "dependsOn": {"ref": "Flaky"}},
        }
        client.put_pipeline_definition(pipelineId=pipeline_id, pipelineObjects=[
            {"id": object_id, "name": object_id, "fields": [
                {"key": key, "refValue": value["ref"]} if isinstance(value, dict) else {"key": key, "stringValue": value}
                for key, value in fields.items()]}
            for object_id, fields in objects.items()])
        client.activate_pipeline(pipelineId=pipeline_id)
        wait_for("the first attempt to fail", lambda: instance_status(client, pipeline_id, "Flaky") == "FAILED")

        seed = user(server, "ada", "SluicePipelineOperator", documents=[{
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
                "cloudtrail:LookupEvents", "iam:ListUsers", "iam:ListMFADevices", "iam:ListAccessKeys"]}]}],
            mfa=True)
        user(server, "rex")
        user(server, "rita", "SluiceReadOnlyAccess")
        status, body = server.iam("UpdateLoginProfile", {"UserName": "rita", "Password": PASSWORD,
                                                         "PasswordResetRequired": True})
        assert status == 200, body

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            context = browser.new_context(ignore_https_errors=True, viewport={"width": 1366, "height": 900})
            page = context.new_page()

            # Unsigned visitors are sent to sign in; a wrong code is refused without saying which
            # of the three was wrong.
            page.goto(server.url + "/console/pipelines")
            assert page.url.endswith("/console/signin")
            response = page.goto(server.url + "/console/signin")
            csp = response.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "script-src" not in csp
            assert response.headers["x-frame-options"] == "DENY"
            sign_in(page, server.url, "ada", "000000")
            assert "is not right" in page.inner_text("[role=alert]")
            page.screenshot(path=str(ARTIFACTS / "console-signin-refused.png"))

            sign_in(page, server.url, "ada", totp(seed, int(time.time()) // 30))
            page.wait_for_url("**/console/pipelines")
            cookie = next(c for c in context.cookies() if c["name"] == "__Host-sluice-console")
            assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
            assert "nightly-orders" in page.inner_text("main") and "team=data" in page.inner_text("main")
            assert "<script" not in page.content()
            page.screenshot(path=str(ARTIFACTS / "console-pipelines.png"), full_page=True)

            # Search and state filters.
            page.goto(server.url + "/console/pipelines?q=nothing-like-it")
            assert "No pipeline matches" in page.inner_text("main")

            # The pipeline: its graph, its failed instance, and a rerun that turns it green.
            page.goto(server.url + "/console/pipelines")
            page.click("text=nightly-orders")
            page.wait_for_selector("svg.graph")
            assert page.locator("svg.graph g.node.activity").count() == 2
            assert page.locator("svg.graph line.edge.depends").count() == 1
            assert page.locator("svg.timeline rect.cell.bad").count() >= 1
            page.screenshot(path=str(ARTIFACTS / "console-pipeline-failed.png"), full_page=True)
            flaky_row = page.locator("tr", has_text="Flaky").filter(has_text="FAILED")
            flaky_row.locator("input[type=checkbox]").check()
            page.click("button[value=RERUN]")
            assert "rerun for 1 instance(s)" in page.inner_text("[role=status]")

            def green():
                page.reload()
                row = page.locator("tbody tr", has_text="Flaky")
                return row.count() == 1 and "FINISHED" in row.inner_text()
            wait_for("the rerun to finish", green)
            assert page.locator("tbody tr", has_text="Flaky").locator(".badge.ok").count() == 1
            page.screenshot(path=str(ARTIFACTS / "console-pipeline-green.png"), full_page=True)

            # Pause and resume the pipeline's activities.
            page.click("button[value=PAUSE]")
            assert "pause for 2 activit(ies)" in page.inner_text("[role=status]")
            page.click("button[value=RESUME]")
            assert "resume for 2 activit(ies)" in page.inner_text("[role=status]")

            # The failed attempt's stderr, masked.
            page.locator("tbody tr", has_text="Flaky").locator(".attempt", has_text="FAILED").locator(
                "a", has_text="stderr").click()
            log = page.inner_text("pre.log")
            assert "first try fails with ********************" in log
            assert "QWERTYUIOPASDFGH" not in page.content()
            page.screenshot(path=str(ARTIFACTS / "console-attempt-log.png"))
            page.go_back()

            # The rerun in the audit trail, as ada, from the console.
            page.goto(server.url + "/console/audit?attribute=EventName&value=SetStatus")
            records = [json.loads(row.locator("pre").text_content())
                       for row in page.locator("tbody tr", has_text="SetStatus").all()]
            rerun = next(record for record in records if record["requestParameters"]["status"] == "RERUN")
            assert rerun["userIdentity"]["userName"] == "ada"
            assert rerun["sessionCredentialFromConsole"] == "true"
            page.goto(server.url + "/console/audit?attribute=EventName&value=ConsoleLogin")
            logins = page.inner_text("tbody")
            assert "Success" in logins and "Failure" in logins
            assert PASSWORD not in page.content()
            page.screenshot(path=str(ARTIFACTS / "console-audit.png"), full_page=True)

            # Administrators see users, their MFA and keys; findings say honestly there are none.
            page.goto(server.url + "/console/users")
            users = {row.locator("td").first.inner_text(): row.inner_text()
                     for row in page.locator("tbody tr").all()}
            assert "1 device(s)" in users["ada"] and "none" in users["rex"], users
            page.screenshot(path=str(ARTIFACTS / "console-users.png"))
            page.goto(server.url + "/console/findings")
            assert "No findings" in page.inner_text("main")

            # A form without the session's token is refused.
            forged = page.request.post(server.url + f"/console/pipelines/{pipeline_id}/action",
                                       form={"action": "deactivate"})
            assert forged.status == 403
            # A session cannot be ended by someone who knows only its key id (from the audit
            # trail): sign-out checks the cookie's token, not just the form's.
            session = next(c for c in context.cookies() if c["name"] == "__Host-sluice-console")
            key_id = session["value"].split(".")[0]
            fake = "not-the-token"
            csrf = hashlib.sha256(f"sluice-console-csrf:{fake}".encode()).hexdigest()
            status, _ = post_form(server.url, "/console/signout", {"csrf": csrf},
                                  cookie=f"__Host-sluice-console={key_id}.{fake}")
            assert status == 303
            page.goto(server.url + "/console/pipelines")
            assert page.url.endswith("/console/pipelines"), "ada is still signed in"
            page.goto(server.url + "/console/pipelines")
            page.click("button:has-text('Sign out')")
            page.wait_for_url("**/console/signin")
            page.goto(server.url + "/console/pipelines")
            assert page.url.endswith("/console/signin")

            # A user with no policies sees a refusal, not the pipeline. (Signed in with the keyboard
            # alone: the name field has the focus, Tab moves on, Enter sends.)
            page.goto(server.url + "/console/signin")
            page.wait_for_function("document.activeElement && document.activeElement.id === 'username'")
            page.keyboard.type("rex")
            page.keyboard.press("Tab")
            page.keyboard.type(PASSWORD)
            page.keyboard.press("Enter")
            page.wait_for_url("**/console/pipelines")
            assert "Not allowed" in page.inner_text("main") and "nightly-orders" not in page.content()
            page.screenshot(path=str(ARTIFACTS / "console-refused.png"), full_page=True)
            page.click("button:has-text('Sign out')")

            # A reader whose password must be reset changes it first; then sees the pipeline but
            # may not rerun it, and nothing changes.
            sign_in(page, server.url, "rita")
            page.wait_for_url("**/console/password")
            page.goto(server.url + "/console/pipelines")
            assert page.url.endswith("/console/password")
            page.fill("#old", PASSWORD)
            page.fill("#new", "rita")
            page.fill("#confirm", "rita")
            page.evaluate("document.querySelectorAll('input').forEach(i => i.removeAttribute('minlength'))")
            page.click("button:has-text('Change password')")
            assert "12 to 128" in page.inner_text("[role=alert]")
            page.fill("#old", PASSWORD)
            page.fill("#new", "Reader-Only-Pass-2026")
            page.fill("#confirm", "Reader-Only-Pass-2026")
            page.click("button:has-text('Change password')")
            # The change ends the session: signing in again takes the new password.
            page.wait_for_url("**/console/signin?changed=1")
            assert "Your password is changed" in page.inner_text("[role=status]")
            page.fill("#username", "rita")
            page.fill("#password", "Reader-Only-Pass-2026")
            page.click("button[type=submit]")
            page.wait_for_url("**/console/pipelines")
            page.click("text=nightly-orders")
            page.locator("tbody tr", has_text="Report").locator("input[type=checkbox]").check()
            page.click("button[value=RERUN]")
            assert "Not allowed" in page.inner_text("main") and "datapipeline:SetStatus" in page.inner_text("main")
            browser.close()
        assert instance_status(client, pipeline_id, "Report") == "FINISHED"
    finally:
        server.stop()


def test_console_passwords_are_iam_login_profiles_kept_only_as_hashes(tmp_path):
    from conftest import VENV_BIN
    server = Server(tmp_path / "data").start()
    try:
        def aws_iam(*args, check=True):
            result = subprocess.run([str(VENV_BIN / "aws"), "iam", *args, "--endpoint-url", server.url,
                                     "--output", "json"], capture_output=True, text=True, env=server.cli_env(),
                                    timeout=60)
            if check:
                assert result.returncode == 0, result.stderr
                return json.loads(result.stdout) if result.stdout.strip() else {}
            return result

        aws_iam("create-user", "--user-name", "hank")
        secret = "Blue-Console-Pass-77"
        created = aws_iam("create-login-profile", "--user-name", "hank", "--password", secret,
                          "--password-reset-required")["LoginProfile"]
        assert created["UserName"] == "hank" and created["PasswordResetRequired"] is True
        assert aws_iam("get-login-profile", "--user-name", "hank")["LoginProfile"]["UserName"] == "hank"
        again = aws_iam("create-login-profile", "--user-name", "hank", "--password", secret, check=False)
        assert again.returncode != 0 and "EntityAlreadyExists" in again.stderr
        weak = aws_iam("update-login-profile", "--user-name", "hank", "--password", "hank-is-me-1234", check=False)
        assert weak.returncode != 0 and "PasswordPolicyViolation" in weak.stderr and "user name" in weak.stderr
        short = aws_iam("update-login-profile", "--user-name", "hank", "--password", "Sh0rt!", check=False)
        assert short.returncode != 0 and "12 to 128" in short.stderr
        aws_iam("update-login-profile", "--user-name", "hank", "--password", secret + "x")
        missing = aws_iam("get-login-profile", "--user-name", "nobody", check=False)
        assert missing.returncode != 0 and "NoSuchEntity" in missing.stderr

        # The audit trail records the calls, never the passwords; no file holds them.
        status, _, answer = server.raw("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents", {
            "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "UpdateLoginProfile"}]},
            service="cloudtrail")
        assert status == 200 and answer["Events"], answer
        for event in answer["Events"]:
            assert secret not in event["CloudTrailEvent"]
        aws_iam("delete-login-profile", "--user-name", "hank")
        gone = aws_iam("get-login-profile", "--user-name", "hank", check=False)
        assert gone.returncode != 0 and "NoSuchEntity" in gone.stderr
    finally:
        server.stop()
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data and (secret + "x").encode() not in data, path
