"""`python -m graphsim` as a process: what it prints, the credentials file, secrets kept out of output,
and the admin HTTP API that drives it from outside."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


class Cli:
    def __init__(self, *args: str, env: dict | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHSIM_")}
        full_env.update(env or {})
        self.proc = subprocess.Popen([sys.executable, "-m", "graphsim", *args], cwd=ROOT, env=full_env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = [self.proc.stdout.readline().rstrip("\n") for _ in range(4)]
        assert all(self.lines), (self.lines, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.values = dict(line.split("=", 1) for line in self.lines)

    def stop(self) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, out, err


@pytest.fixture
def cli(tmp_path):
    started: list[Cli] = []

    def start(*args: str, env: dict | None = None) -> Cli:
        c = Cli(*args, env=env)
        started.append(c)
        return c

    yield start
    for c in started:
        if c.proc.poll() is None:
            c.proc.kill()
            c.proc.communicate()


def test_cli_prints_endpoints_writes_credentials_and_never_prints_the_secret(cli, tmp_path):
    creds_path = tmp_path / "graphsim.json"
    c = cli("--mailboxes", "alice@contoso.com=50,bob@contoso.com=1k", "--seed", "3",
            "--credentials-file", str(creds_path))
    assert [line.split("=", 1)[0] for line in c.lines] == ["GRAPHSIM_URL", "REQUESTS_CA_BUNDLE", "TENANT_ID",
                                                           "OUTLOOK_CLIENT_ID"]
    url, ca = c.values["GRAPHSIM_URL"], c.values["REQUESTS_CA_BUNDLE"]
    assert url.startswith("https://127.0.0.1:")
    assert not Path(ca).resolve().is_relative_to(ROOT)
    creds = json.loads(creds_path.read_text())
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
    assert creds["authority_host"] == creds["graph_endpoint"] == url
    assert (creds["tenant_id"], creds["client_id"], creds["ca_bundle"]) == (
        c.values["TENANT_ID"], c.values["OUTLOOK_CLIENT_ID"], ca)

    token = requests.post(f"{url}/{creds['tenant_id']}/oauth2/v2.0/token", verify=ca, data={
        "grant_type": "client_credentials", "client_id": creds["client_id"], "client_secret": creds["client_secret"],
        "scope": f"{url}/.default"}).json()["access_token"]
    body = requests.get(f"{url}/v1.0/users/bob@contoso.com/messages?$top=1&$count=true", verify=ca,
                        headers={"Authorization": f"Bearer {token}"}).json()
    assert body["@odata.count"] == 1000

    code, out, err = c.stop()
    assert code == 0
    assert creds["client_secret"] not in out + err + "\n".join(c.lines)
    assert not Path(ca).exists()  # the temporary CA directory is removed on exit


def test_cli_secret_from_environment_and_print_credentials(cli):
    c = cli("--mailboxes", "alice@contoso.com=5", "--print-credentials",
            env={"GRAPHSIM_CLIENT_SECRET": "local-dev-secret-123"})
    extra = c.proc.stdout.readline().rstrip("\n")
    assert extra == "OUTLOOK_CLIENT_SECRET=local-dev-secret-123"
    assert c.stop()[0] == 0


def test_admin_api_drives_a_separate_process(cli):
    c = cli("--mailboxes", "alice@contoso.com=20", "--seed", "4")
    url, ca = c.values["GRAPHSIM_URL"], c.values["REQUESTS_CA_BUNDLE"]
    admin = requests.Session()
    admin.verify = ca
    admin.trust_env = False
    base = f"{url}/_graphsim"

    assert admin.get(f"{base}/health").json()["ok"] is True
    truth = admin.get(f"{base}/mailboxes/alice@contoso.com/messages", params={"fields": "id,isRead"}).json()
    assert len(truth) == 20 and set(truth[0]) == {"id", "isRead"}

    created = admin.post(f"{base}/mailboxes/alice@contoso.com/messages",
                         json={"folder": "inbox", "subject": "Über-wichtig ❗", "isRead": False})
    assert created.status_code == 201
    new_id = created.json()["id"]
    assert admin.patch(f"{base}/mailboxes/alice@contoso.com/messages/{new_id}", json={"isRead": True}).status_code == 204
    moved = admin.post(f"{base}/mailboxes/alice@contoso.com/messages/{new_id}/move", json={"folder": "archive"})
    assert moved.json()["id"] == new_id
    folder = admin.post(f"{base}/mailboxes/alice@contoso.com/folders", json={"name": "Projekte", "parent": "inbox"})
    assert folder.status_code == 201
    truth = admin.get(f"{base}/mailboxes/alice@contoso.com/messages", params={"folder": "archive"}).json()
    [mine] = [m for m in truth if m["id"] == new_id]
    assert (mine["subject"], mine["isRead"]) == ("Über-wichtig ❗", True)
    folders = admin.get(f"{base}/mailboxes/alice@contoso.com/folders").json()
    assert "Projekte" in [f["displayName"] for f in folders]
    assert admin.delete(f"{base}/mailboxes/alice@contoso.com/messages/{new_id}").status_code == 204
    assert admin.delete(f"{base}/mailboxes/alice@contoso.com/messages/{new_id}").status_code == 404

    faults = admin.post(f"{base}/faults", json={"latency_ms": 5, "rate_limit": [100, 10]}).json()
    assert (faults["latency_ms"], faults["rate_limit"], faults["concurrency_limit"]) == (5, [100, 10.0], 4)
    assert admin.post(f"{base}/faults", json={"no_such_option": 1}).status_code == 400
    assert admin.post(f"{base}/faults/reset").json()["latency_ms"] == 0

    assert admin.post(f"{base}/apps", json={"clientId": "dddddddd-0000-4000-8000-000000000004",
                                            "secret": "x", "permissions": ["Mail.Read"]}).status_code == 201
    assert admin.post(f"{base}/deny", json={"clientId": "dddddddd-0000-4000-8000-000000000004",
                                            "upn": "alice@contoso.com"}).status_code == 204
    token = requests.post(f"{url}/{c.values['TENANT_ID']}/oauth2/v2.0/token", verify=ca, data={
        "grant_type": "client_credentials", "client_id": "dddddddd-0000-4000-8000-000000000004",
        "client_secret": "x", "scope": f"{url}/.default"}).json()["access_token"]
    denied = requests.get(f"{url}/v1.0/users/alice@contoso.com/messages", verify=ca,
                          headers={"Authorization": f"Bearer {token}"})
    assert denied.status_code == 403

    stats = admin.get(f"{base}/stats").json()
    assert stats["token_requests"] == 1 and stats["requests_by_mailbox"] == {"alice@contoso.com": 1}
    assert admin.post(f"{base}/stats/reset").json()["requests"] == 0
    assert admin.post(f"{base}/delta/expire", json={"upn": "alice@contoso.com"}).status_code == 200
    assert c.stop()[0] == 0


def test_cli_rejects_a_bad_mailbox_spec():
    result = subprocess.run([sys.executable, "-m", "graphsim", "--mailboxes", "not-an-address=5"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "bad mailbox spec" in result.stderr
