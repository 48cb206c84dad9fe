"""Signed approvals (issue 15 item 2): Ed25519 keys whose private half never enters the store.

A public key is registered as a lifecycle record (kind ``key``: actor = approver name, note = the raw
32-byte public key in hex, ref = its fingerprint), so it is hash-chained like every record and listed in
every notice. An approval (kind ``approve``) then carries ``signature``: the approver's Ed25519 signature
over ``approve-v1|<run_id>|<head_hash>|<L:approver>`` where head_hash is the run's committed head (the
hash of its last entry, ``settlement_runs.head_hash``) and ``L:`` is the UTF-8 byte length and ``:``.

Rule: once any key is registered, every later approval must carry a valid signature by the key
registered under its approver's name at the time (the latest key record of that name before it);
approvals recorded before the first key are legacy, unsigned. ``first_problem`` checks every approval;
``settle ledger verify`` fails on it and ``settle notice`` / ``settle disburse`` refuse to run while it
finds one, so an entry no valid approval covers never reaches a notice or a payment.
Must not import ``api``, ``settlement.cli`` or the clause code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class KeyError_(ValueError):
    """A key file that is not an Ed25519 key."""


def message(run_id: int, head_hash: str, approver: str) -> bytes:
    return f"approve-v1|{int(run_id)}|{head_hash}|{len(approver.encode())}:{approver}".encode()


def fingerprint(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """A PEM (PKCS#8, unencrypted) Ed25519 private key file, as ``settle keys generate`` writes."""
    data = Path(path).read_bytes()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyError_(f"{path}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyError_(f"{path}: not an Ed25519 key")
    return key


def load_public_key(path: Path) -> bytes:
    """The raw 32 bytes of a PEM (SubjectPublicKeyInfo) Ed25519 public key file."""
    data = Path(path).read_bytes()
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyError_(f"{path}: not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyError_(f"{path}: not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def generate(private_out: Path, public_out: Path) -> bytes:
    """Write a new key pair (private PEM with mode 0600, public PEM); returns the raw public key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    private_out.touch(mode=0o600, exist_ok=False)
    private_out.write_bytes(pem)
    public = key.public_key()
    public_out.write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo))
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sign(key: Ed25519PrivateKey, run_id: int, head_hash: str, approver: str) -> str:
    return key.sign(message(run_id, head_hash, approver)).hex()


def public_key_of(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def keys_registered(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("SELECT count(*) FROM lifecycle_events WHERE kind = 'key'").fetchall()[0][0])


def key_for(con: duckdb.DuckDBPyConnection, name: str, before_event: int | None = None) -> str | None:
    """Hex of the public key registered under ``name`` (the latest, or the latest before a record)."""
    rows = con.execute(
        "SELECT note FROM lifecycle_events WHERE kind = 'key' AND actor = ? AND (? IS NULL OR event_id < ?) "
        "ORDER BY event_id DESC LIMIT 1", [name, before_event, before_event]).fetchall()
    return rows[0][0] if rows else None


_APPROVALS_SQL = """
SELECT e.event_id, e.run_id, e.actor, e.signature, s.head_hash,
       (SELECT k.note FROM lifecycle_events k WHERE k.kind = 'key' AND k.actor = e.actor AND k.event_id < e.event_id
        ORDER BY k.event_id DESC LIMIT 1) AS public_key,
       EXISTS (SELECT 1 FROM lifecycle_events k WHERE k.kind = 'key' AND k.event_id < e.event_id) AS required
FROM lifecycle_events e LEFT JOIN settlement_runs s ON s.run_id = e.run_id
WHERE e.kind = 'approve' ORDER BY e.event_id
"""


def first_problem(con: duckdb.DuckDBPyConnection) -> str | None:
    """The first approval that is not validly signed although it must be (or carries a bad signature), as
    a sentence naming the record; None when every approval holds."""
    for event_id, run_id, actor, signature, head_hash, public_key, required in con.execute(_APPROVALS_SQL).fetchall():
        name = f"lifecycle event {event_id} (approve of run {run_id} by {actor})"
        if signature is None:
            if required:
                return f"{name}: unsigned, but approver keys were registered before it (settle approve --key)"
            continue
        if public_key is None:
            return f"{name}: signed, but no key was registered for {actor} before it"
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(
                bytes.fromhex(signature), message(run_id, head_hash or "", actor))
        except (InvalidSignature, ValueError):
            return (f"{name}: signature does not verify with {actor}'s key {fingerprint(bytes.fromhex(public_key))} "
                    "over the run's head hash (approval, run or its entries edited?)")
    return None
