"""The credential vault: client secrets given in a request's `config`, encrypted at rest.

A secret never travels in orchestration inputs, custom status, logs or responses: the job keeps
only a reference (`{"kind": "vault", "ref": ...}`, or `{"kind": "settings"}` for the app's
own settings), and activities resolve it here. Secrets are encrypted with Fernet (AES-128-CBC +
HMAC-SHA256) under the key in setting CREDENTIAL_ENCRYPTION_KEY; Table storage holds only the
ciphertext. Without that setting, requests that carry a secret are refused.
"""
from __future__ import annotations

import json
import uuid
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from cryptography.fernet import Fernet, InvalidToken

from mailextract.errors import EncryptionKeyMissing, MissingCredentials
from mailextract.graph.credentials import GraphCredentials
from mailextract.settings import Settings, get_settings
from mailextract.storage import account

TABLE = "CredentialVault"
_MATERIAL = ("client_secret", "certificate_pem", "certificate_thumbprint")


class CredentialVault:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()

    def _fernet(self) -> Fernet:
        key = self.settings.credential_encryption_key
        if not key:
            raise EncryptionKeyMissing()
        return Fernet(key.encode())

    def reference_for(self, config: Any) -> dict[str, Any]:
        """Resolve request credentials (config, else settings) and return a secret-free reference.

        Raises MissingCredentials naming what is missing, before anything is stored. Secret
        material that came with the request is encrypted into the vault; material from the
        settings is read from the settings again when used.
        """
        credentials = GraphCredentials.resolve(config, self.settings)
        reference = {"kind": "settings", "tenant_id": credentials.tenant_id, "client_id": credentials.client_id}
        material = {name: getattr(credentials, name) for name in _MATERIAL}
        settings_secret = self.settings.outlook_client_secret
        if material["certificate_pem"] or material["client_secret"] != settings_secret:
            ref = uuid.uuid4().hex
            token = self._fernet().encrypt(json.dumps(material).encode()).decode()
            account.table(TABLE, self.settings).upsert_entity(
                {"PartitionKey": "secret", "RowKey": ref, "Ciphertext": token})
            reference.update(kind="vault", ref=ref)
        return reference

    def credentials(self, reference: dict[str, Any]) -> GraphCredentials:
        if reference.get("kind") == "settings":
            material = {"client_secret": self.settings.outlook_client_secret}
        else:
            try:
                row = account.table(TABLE, self.settings).get_entity("secret", reference["ref"])
                material = json.loads(self._fernet().decrypt(row["Ciphertext"].encode()))
            except (ResourceNotFoundError, InvalidToken):
                raise MissingCredentials(["outlook_client_secret (the stored secret can no longer be read)"]) from None
        return GraphCredentials(tenant_id=reference["tenant_id"], client_id=reference["client_id"], **material)

    def forget_for_run(self, job: dict[str, Any]) -> None:
        """Forget the secret of a run that ended, unless it belongs to something that outlives
        the run: a batch (its runs share the batch's) or a connection (its syncs use its own)."""
        if not job.get("parent_batch_id") and job.get("credential_owner") != "connection":
            self.forget(job.get("credential"))

    def forget(self, reference: dict[str, Any] | None) -> None:
        if reference and reference.get("kind") == "vault":
            try:
                account.table(TABLE, self.settings).delete_entity("secret", reference["ref"])
            except ResourceNotFoundError:
                pass
