"""A throwaway certificate authority and server certificate for graphsim's HTTPS listener.

Why: MSAL refuses non-https authorities and the production code verifies TLS through
`REQUESTS_CA_BUNDLE`, so the simulator must look like a real HTTPS service that a client trusts
only because it was told to. `trustme` creates a fresh CA per simulator; the PEM files go to a
temporary directory (never into the repository) that is removed when the simulator stops.
"""
from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost")


@dataclass
class TlsMaterial:
    directory: str
    ca_bundle: str  # PEM of the test CA: what clients put in REQUESTS_CA_BUNDLE / verify=
    server_context: ssl.SSLContext

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def create_tls_material(directory: str | None = None) -> TlsMaterial:
    """Create a CA, a server certificate for 127.0.0.1 and localhost, and a server SSL context."""
    directory = directory or tempfile.mkdtemp(prefix="graphsim-tls-")
    os.makedirs(directory, exist_ok=True)
    ca = trustme.CA(organization_name="graphsim test CA")
    server_cert = ca.issue_cert(*SERVER_NAMES)
    ca_path = os.path.join(directory, "graphsim-ca.pem")
    ca.cert_pem.write_to_path(ca_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    return TlsMaterial(directory=directory, ca_bundle=ca_path, server_context=context)
