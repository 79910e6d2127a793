"""Sign-in method selection: flags and environment, secrets only from the environment."""

from __future__ import annotations

import asyncio

import pytest

from pimtrail.collectors.graph.credentials import (CredentialConfig, StaticTokenCredential, build_credential,
                                                   close_credential)
from pimtrail.errors import InputError

SECRET = "not-a-real-secret-0c9f"
ENV = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH",
       "AZURE_CLIENT_CERTIFICATE_PASSWORD", "PIMTRAIL_GRAPH_TOKEN")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_auto_picks_certificate_then_secret_then_token_then_default(monkeypatch, tmp_path):
    assert CredentialConfig.from_env().resolved() == "default"
    monkeypatch.setenv("PIMTRAIL_GRAPH_TOKEN", "t")
    assert CredentialConfig.from_env().resolved() == "token"
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    assert CredentialConfig.from_env().resolved() == "secret"
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PATH", str(tmp_path / "app.pem"))
    assert CredentialConfig.from_env().resolved() == "certificate"
    assert CredentialConfig.from_env("managed-identity").resolved() == "managed-identity"


def test_flags_win_over_environment(monkeypatch):
    monkeypatch.setenv("AZURE_TENANT_ID", "env-tenant")
    monkeypatch.setenv("AZURE_CLIENT_ID", "env-client")
    config = CredentialConfig.from_env("secret", tenant_id="flag-tenant")
    assert (config.tenant_id, config.client_id) == ("flag-tenant", "env-client")


def test_the_config_and_its_description_never_hold_the_secret(monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("AZURE_TENANT_ID", "t1")
    monkeypatch.setenv("AZURE_CLIENT_ID", "c1")
    config = CredentialConfig.from_env()
    assert SECRET not in repr(config) and SECRET not in config.describe()
    assert config.describe() == "secret, tenant t1, app c1"
    assert "tok-123" not in repr(StaticTokenCredential("tok-123"))


def test_each_method_builds_its_azure_identity_credential(monkeypatch, tmp_path):
    from azure.identity import DeviceCodeCredential, aio

    monkeypatch.setenv("AZURE_TENANT_ID", "00000000-0000-4000-8000-000000000001")
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-4000-8000-000000000002")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    pem = tmp_path / "app.pem"
    pem.write_text("not parsed until a token is needed")
    expected = {"secret": aio.ClientSecretCredential, "managed-identity": aio.ManagedIdentityCredential,
                "default": aio.DefaultAzureCredential, "device-code": DeviceCodeCredential}
    for method, kind in expected.items():
        credential = build_credential(CredentialConfig.from_env(method))
        assert isinstance(credential, kind), method
        asyncio.run(close_credential(credential))
    monkeypatch.setenv("PIMTRAIL_GRAPH_TOKEN", "tok")
    token = build_credential(CredentialConfig.from_env("token"))
    assert token.get_token("https://graph.microsoft.com/.default").token == "tok"


def test_missing_inputs_name_the_flag_and_the_variable(tmp_path):
    with pytest.raises(InputError, match="--tenant.*AZURE_TENANT_ID"):
        build_credential(CredentialConfig.from_env("certificate"))
    with pytest.raises(InputError, match="certificate file not found"):
        build_credential(CredentialConfig("certificate", "t", "c", str(tmp_path / "missing.pem")))
    with pytest.raises(InputError, match="AZURE_CLIENT_SECRET"):
        build_credential(CredentialConfig("secret", "t", "c"))
    with pytest.raises(InputError, match="unknown sign-in method"):
        CredentialConfig("password").resolved()
