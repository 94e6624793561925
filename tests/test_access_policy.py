"""A mailbox outside the app's ApplicationAccessPolicy: Graph answers 403 ErrorAccessDenied and
the gateway says which mailbox and what to change, without leaking the secret."""

from __future__ import annotations

from .conftest import ALICE, BOB, start_gateway

RESTRICTED_APP = "7d1c0f3e-5b2a-4c8d-9e6f-0a1b2c3d4e5f"
RESTRICTED_SECRET = "restricted-app-secret-value"


def test_mailbox_outside_access_policy_is_explained(emulator, tmp_path):
    emulator.register_app(RESTRICTED_APP, secret=RESTRICTED_SECRET,
                          allowed_mailboxes={"alice@contoso.com"})
    secret_file = tmp_path / "restricted_secret"
    secret_file.write_text(RESTRICTED_SECRET)
    gateway, stop = start_gateway(emulator, tmp_path / "gw", client_id=RESTRICTED_APP,
                                  client_secret_file=secret_file)
    try:
        allowed = gateway.session(ALICE).request(
            "PROPFIND", f"{gateway.url}/alice@contoso.com/", headers={"Depth": "1"})
        assert allowed.status_code == 207
        denied = gateway.session(BOB).request(
            "PROPFIND", f"{gateway.url}/bob@contoso.com/", headers={"Depth": "1"})
        assert denied.status_code == 403
        assert "bob@contoso.com" in denied.text
        assert "ErrorAccessDenied" in denied.text
        assert "ApplicationAccessPolicy" in denied.text or "RBAC" in denied.text
        assert RESTRICTED_SECRET not in denied.text
    finally:
        stop()
