"""`scripts/run`: the whole app locally, one command, no cloud.

Starts Azurite (data kept in .local/azurite so runs survive restarts), graphsim with demo
mailboxes unless real Graph credentials are configured (TENANT_ID, OUTLOOK_CLIENT_ID and
OUTLOOK_CLIENT_SECRET in the environment or local.settings.json), and devhost on port 7071.
Secrets that requests bring are encrypted with CREDENTIAL_ENCRYPTION_KEY, or else with a key
generated once into .local/credential-encryption.key.
The simulator's endpoints, CA bundle and demo credentials reach devhost through its environment
only; the demo secret is never printed.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from devhost.azurite import REPO_ROOT, start_azurite
from devhost.config import load_settings_values, with_process_defaults

GRAPH_CREDENTIALS = ("TENANT_ID", "OUTLOOK_CLIENT_ID", "OUTLOOK_CLIENT_SECRET")


def _configured(name: str, settings: dict[str, str]) -> bool:
    return bool(os.environ.get(name) or settings.get(name))


def _local_encryption_key(local: Path) -> str:
    """A Fernet key kept in .local/ (git-ignored), so secrets stored locally stay readable across runs."""
    path = local / "credential-encryption.key"
    if not path.exists():
        from cryptography.fernet import Fernet
        local.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Fernet.generate_key())
        path.chmod(0o600)
    return path.read_text().strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/run", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 7071)))
    parser.add_argument("--require-keys", action="store_true")
    parser.add_argument("--mailboxes", default=None,
                        help="graphsim demo mailboxes, e.g. 'alice@contoso.com=2000,bob@contoso.com=300'")
    args = parser.parse_args(argv)

    local = REPO_ROOT / ".local"
    settings_file = REPO_ROOT / "local.settings.json"
    settings = load_settings_values(settings_file) if settings_file.exists() else {}
    env = with_process_defaults(os.environ)
    with ExitStack() as stack:
        azurite = start_azurite(local / "azurite", local / "azurite.log")
        stack.callback(azurite.stop)
        env["AzureWebJobsStorage"] = azurite.connection_string
        print(f"Azurite: blob :{azurite.blob_port}, table :{azurite.table_port} (data in {local / 'azurite'})")

        if all(_configured(name, settings) for name in GRAPH_CREDENTIALS):
            print("Graph: real Microsoft Graph with the configured credentials")
        else:
            from graphsim.testing import GraphSim
            sim = stack.enter_context(GraphSim.start(mailboxes=args.mailboxes or
                                                     "alice@contoso.com=500,bob@contoso.com=120", seed=1))
            env.update({"AZURE_AUTHORITY_HOST": sim.authority_host, "GRAPH_API_ENDPOINT": sim.graph_endpoint,
                        "REQUESTS_CA_BUNDLE": sim.ca_bundle, "TENANT_ID": sim.tenant_id,
                        "OUTLOOK_CLIENT_ID": sim.client_id, "OUTLOOK_CLIENT_SECRET": sim.client_secret})
            print(f"Graph: graphsim at {sim.graph_endpoint} (tenant {sim.tenant_id}, demo mailboxes "
                  f"{args.mailboxes or 'alice@contoso.com=500,bob@contoso.com=120'}); CA bundle {sim.ca_bundle}")

        if not _configured("SYNC_TIMER_SCHEDULE", settings):
            env["SYNC_TIMER_SCHEDULE"] = "0 * * * * *"  # every minute
        if not _configured("CREDENTIAL_ENCRYPTION_KEY", settings):
            env["CREDENTIAL_ENCRYPTION_KEY"] = _local_encryption_key(local)

        cmd = [sys.executable, "-m", "devhost", "--app", str(REPO_ROOT), "--port", str(args.port)]
        if args.require_keys:
            cmd.append("--require-keys")
        host = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env)
        signal.signal(signal.SIGTERM, lambda *_: host.terminate())
        try:
            return host.wait()
        except KeyboardInterrupt:
            host.terminate()
            return host.wait()


if __name__ == "__main__":
    sys.exit(main())
