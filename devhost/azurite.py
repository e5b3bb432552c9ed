"""Starts Azurite (the Azure Storage emulator, from the npm package pinned in package.json).

Used by `scripts/run` and by the test suite, so both run against real Table and Blob storage.
Azurite listens on free loopback ports chosen here and keeps its data in the given folder, so a
restart with the same folder finds the same data.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# The well-known Azurite development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class Azurite:
    """A running Azurite process and the connection string that reaches it."""

    process: subprocess.Popen
    blob_port: int
    queue_port: int
    table_port: int
    location: Path

    @property
    def connection_string(self) -> str:
        base = "http://127.0.0.1"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/{DEV_ACCOUNT};"
            f"QueueEndpoint={base}:{self.queue_port}/{DEV_ACCOUNT};"
            f"TableEndpoint={base}:{self.table_port}/{DEV_ACCOUNT};"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def azurite_executable() -> str:
    local = REPO_ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if not found:
        raise FileNotFoundError("azurite not installed: run scripts/test or scripts/run (they run `npm ci`)")
    return found


def start_azurite(location: Path, log_path: Path | None = None, *, in_memory: bool = False) -> Azurite:
    """Azurite on free ports. `in_memory` keeps no data on disk: Azurite's disk persistence (a LokiJS
    database saved whole, over and over) costs CPU that grows with the data, which a benchmark of
    the service must not measure as the service's."""
    location.mkdir(parents=True, exist_ok=True)
    blob, queue, table = free_port(), free_port(), free_port()
    cmd = [
        azurite_executable(),
        "--silent", "--disableTelemetry", "--skipApiVersionCheck", "--loose",
        *(["--inMemoryPersistence"] if in_memory else ["--location", str(location)]),
        "--blobHost", "127.0.0.1", "--blobPort", str(blob),
        "--queueHost", "127.0.0.1", "--queuePort", str(queue),
        "--tableHost", "127.0.0.1", "--tablePort", str(table),
    ]
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy(),
                            start_new_session=True)
    try:
        for port in (blob, table):
            wait_for_port(port, timeout=30, proc=proc)
    except Exception:
        proc.kill()
        raise
    return Azurite(proc, blob, queue, table, location)
