"""API keys on the real stores (both backends): made, used, limited, revoked."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from hounsfield.auth.keys import KeyNameTaken, KeyStore
from hounsfield.auth.passwords import hash_password
from hounsfield.auth.principal import Refused
from hounsfield.auth.roles import Role
from hounsfield.auth.store import UserStore
from hounsfield.db import Database


@pytest.fixture
def stores(database: Database) -> tuple[KeyStore, UserStore]:
    users = UserStore(database)
    users.create("tech", hash_password("Correct-Horse-42-battery"), Role.TECHNICIAN)
    users.create("boss", hash_password("Correct-Horse-42-battery"), Role.ADMIN)
    return KeyStore(database), users


def make(keys: KeyStore, name: str = "nightly", **fields):
    given = {
        "owner": "tech",
        "created_by": "tech",
        "role": Role.TECHNICIAN,
        "read_only": False,
        "expires_at": None,
    }
    return keys.create(name, **(given | fields))


def refusal(keys: KeyStore, secret: str) -> str:
    with pytest.raises(Refused) as caught:
        keys.authenticate(secret)
    assert caught.value.status == 401
    return caught.value.reason


def test_a_key_acts_as_its_owner_with_its_role_and_only_its_digest_is_stored(
    stores, database: Database
) -> None:
    keys, _ = stores
    key, secret = make(keys, read_only=True)
    assert re.fullmatch(r"hfk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", secret)
    principal = keys.authenticate(secret)
    assert (principal.username, principal.role, principal.key) == (
        "tech",
        Role.TECHNICIAN,
        "nightly",
    )
    assert principal.read_only and principal.session_id == f"key:{key.id}"
    stored = database.query("SELECT * FROM api_keys WHERE id = ?", (key.id,))[0]
    assert secret not in [str(value) for value in stored]  # a row iterates its values
    assert stored["digest"] == hashlib.sha256(secret.encode()).hexdigest()
    assert keys.get(key.id).last_used_at is not None


def test_a_wrong_secret_for_a_real_id_and_malformed_keys_are_refused(stores) -> None:
    keys, _ = stores
    _, secret = make(keys)
    forged = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert refusal(keys, forged) == "API key is not valid"
    assert refusal(keys, "hfk_" + "0" * 16 + "_" + "x" * 43) == "API key is not valid"
    for malformed in ("hfk_", secret + "x", secret.replace("_", "-"), "hfk_zz_zz"):
        assert refusal(keys, malformed) == "API key is malformed"


def test_revoked_and_expired_keys_stop_at_once(stores) -> None:
    keys, _ = stores
    key, secret = make(keys)
    assert keys.revoke(key.id, "tech")
    assert not keys.revoke(key.id, "tech")  # once
    assert refusal(keys, secret) == "API key is revoked"
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="milliseconds")
    _, old = make(keys, "old", expires_at=past)
    assert refusal(keys, old) == "API key is expired"


def test_a_disabled_demoted_or_deleted_owner_takes_their_keys_with_them(stores) -> None:
    keys, users = stores
    _, secret = make(keys, "by-boss", owner="boss", created_by="boss", role=Role.RADIOLOGIST)
    assert keys.authenticate(secret).role is Role.RADIOLOGIST
    users.update("boss", role=Role.TECHNICIAN)  # a technician may not hold a radiologist key
    assert refusal(keys, secret) == "API key's role is above its owner's now"
    users.update("boss", role=Role.ADMIN, disabled=1)
    assert refusal(keys, secret) == "API key's owner is disabled or gone"
    _, mine = make(keys)
    users.delete("tech")
    assert refusal(keys, mine) == "API key is not valid"  # deleted with its owner


def test_a_service_account_outlives_the_admin_who_made_it(stores) -> None:
    keys, users = stores
    key, secret = make(keys, "prometheus", owner=None, created_by="boss", role=Role.METRICS)
    users.update("boss", disabled=1)
    principal = keys.authenticate(secret)
    assert (principal.username, principal.role) == ("service:prometheus", Role.METRICS)
    assert key.to_json()["service"] and key.to_json()["createdBy"] == "boss"


def test_names_are_unique_among_unrevoked_keys(stores) -> None:
    keys, _ = stores
    key, _ = make(keys)
    with pytest.raises(KeyNameTaken):
        make(keys, owner="boss", created_by="boss")
    keys.revoke(key.id, "tech")
    again, _ = make(keys)
    assert again.id != key.id
    assert [k.name for k in keys.list(owner="tech")] == ["nightly", "nightly"]
    assert [k.state() for k in keys.list(owner="tech")] == ["active", "revoked"]
