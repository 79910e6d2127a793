"""How pimtrail signs in to Microsoft Graph: one credential, chosen by flags or environment.

| method             | needs                                                                  |
|--------------------|------------------------------------------------------------------------|
| `certificate`      | AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_CERTIFICATE_PATH        |
|                    | (+ AZURE_CLIENT_CERTIFICATE_PASSWORD if the PEM/PFX is encrypted)      |
| `secret`           | AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET                  |
| `managed-identity` | an Azure host with an identity (AZURE_CLIENT_ID for a user-assigned one)|
| `default`          | whatever DefaultAzureCredential finds (env, workload/managed identity, az login) |
| `device-code`      | a person signing in (delegated, ad hoc); AZURE_CLIENT_ID of a public client |
| `token`            | PIMTRAIL_GRAPH_TOKEN, a bearer token (the emulator, or a token you already hold) |

`auto` picks certificate, then secret, then token from the environment, else `default`.
Secrets (client secret, certificate password, tokens) are read from the environment only —
never from the command line, where `ps` and shell history would show them — and are never
printed, logged or stored: `CredentialConfig` does not hold them, its repr cannot show them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from pimtrail.errors import InputError

METHODS = ("auto", "certificate", "secret", "managed-identity", "default", "device-code", "token")


@dataclass(frozen=True)
class CredentialConfig:
    """Which credential to build. Holds no secret: those are read from the environment when
    the credential is built, and handed straight to azure-identity."""

    method: str = "auto"
    tenant_id: str | None = None
    client_id: str | None = None
    certificate_path: str | None = None

    @classmethod
    def from_env(cls, method: str = "auto", tenant_id: str | None = None, client_id: str | None = None,
                 certificate_path: str | None = None) -> "CredentialConfig":
        """Flags win over AZURE_* variables."""
        env = os.environ
        return cls(method or "auto", tenant_id or env.get("AZURE_TENANT_ID") or None,
                   client_id or env.get("AZURE_CLIENT_ID") or None,
                   certificate_path or env.get("AZURE_CLIENT_CERTIFICATE_PATH") or None)

    def resolved(self) -> str:
        """The method `auto` stands for, given the environment."""
        if self.method not in METHODS:
            raise InputError(f"unknown sign-in method {self.method!r}", field="--auth",
                             fix=f"one of {', '.join(METHODS)}")
        if self.method != "auto":
            return self.method
        if self.certificate_path:
            return "certificate"
        if os.environ.get("AZURE_CLIENT_SECRET"):
            return "secret"
        if os.environ.get("PIMTRAIL_GRAPH_TOKEN"):
            return "token"
        return "default"

    def describe(self) -> str:
        """One line for the user: the method and the non-secret identifiers only."""
        method = self.resolved()
        parts = [method]
        if self.tenant_id and method not in ("token", "managed-identity"):
            parts.append(f"tenant {self.tenant_id}")
        if self.client_id and method != "token":
            parts.append(f"app {self.client_id}")
        if method == "certificate" and self.certificate_path:
            parts.append(f"certificate {self.certificate_path}")
        return ", ".join(parts)


class StaticTokenCredential:
    """A credential that always returns one bearer token: for the emulator and for tests
    (any object with `get_token(*scopes, **kw) -> AccessToken` is a credential)."""

    def __init__(self, token: str, lifetime: int = 3600):
        self._token, self._lifetime = token, lifetime

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + self._lifetime)

    def __repr__(self) -> str:
        return "StaticTokenCredential(<hidden>)"


def _need(value: str | None, what: str, flag: str, env: str, method: str) -> str:
    if not value:
        raise InputError(f"{method} sign-in needs the {what}", field=flag, fix=f"pass {flag} or set {env}")
    return value


def build_credential(config: CredentialConfig) -> Any:
    """The azure-identity credential for `config` (async where azure-identity has one).
    The caller closes it: `await close_credential(cred)`."""
    method = config.resolved()
    if method == "token":
        token = os.environ.get("PIMTRAIL_GRAPH_TOKEN")
        if not token:
            raise InputError("token sign-in needs a bearer token", field="--auth token",
                             fix="set PIMTRAIL_GRAPH_TOKEN")
        return StaticTokenCredential(token)
    if method == "device-code":
        from azure.identity import DeviceCodeCredential  # no async variant exists

        return DeviceCodeCredential(client_id=_need(config.client_id, "application (client) id",
                                                    "--client-id", "AZURE_CLIENT_ID", method),
                                    tenant_id=config.tenant_id, timeout=300)
    from azure.identity import aio

    if method == "managed-identity":
        return aio.ManagedIdentityCredential(client_id=config.client_id) if config.client_id \
            else aio.ManagedIdentityCredential()
    if method == "default":
        return aio.DefaultAzureCredential(exclude_interactive_browser_credential=True)
    tenant = _need(config.tenant_id, "tenant id", "--tenant", "AZURE_TENANT_ID", method)
    client = _need(config.client_id, "application (client) id", "--client-id", "AZURE_CLIENT_ID", method)
    if method == "secret":
        secret = os.environ.get("AZURE_CLIENT_SECRET")
        if not secret:
            raise InputError("secret sign-in needs the client secret", field="--auth secret",
                             fix="set AZURE_CLIENT_SECRET (never on the command line)")
        return aio.ClientSecretCredential(tenant, client, secret)
    path = _need(config.certificate_path, "certificate file", "--certificate",
                 "AZURE_CLIENT_CERTIFICATE_PATH", method)
    if not os.path.isfile(path):
        raise InputError("certificate file not found", path=path,
                         fix="a PEM (private key + certificate) or PFX file")
    return aio.CertificateCredential(tenant, client, path,
                                     password=os.environ.get("AZURE_CLIENT_CERTIFICATE_PASSWORD") or None)


async def close_credential(credential: Any) -> None:
    close = getattr(credential, "close", None)
    if close is None:
        return
    result = close()
    if hasattr(result, "__await__"):
        await result
