"""``ccdeploy receipt verify``: check a release receipt offline (for auditors).

Exit 0 valid, 1 invalid (signature, log proof, leaf mismatch), 2 usage (unreadable file, malformed key).
``--json`` prints ``{verdict, model, released_at, log_index, checks, error}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ccdeploy._cli._output import emit_json, json_option, say
from ccdeploy.errors import CcdError, DecisionError, UsageError
from ccdeploy.release.receipt import Receipt, ReceiptCheck, verify_receipt

__all__ = ["receipt"]

_FILE = click.Path(path_type=Path, dir_okay=False)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {path}: {exc.strerror}") from None


def _receipt_bytes(data: bytes) -> bytes:
    """The bundle itself, or the ``receipt`` member of a saved ``ReleaseGrant`` response."""
    try:
        document = json.loads(data)
    except ValueError:
        return data  # verify_receipt reports it as malformed
    if isinstance(document, dict) and isinstance(document.get("receipt"), dict) and "mediaType" not in document:
        return json.dumps(document["receipt"]).encode()
    return data


def _log_key(text: str) -> str:
    """``--log-key`` is the verifier key string, or ``@FILE`` holding it."""
    if text.startswith("@"):
        return _read(Path(text[1:]), "log key file").decode("utf-8", "replace").strip()
    return text.strip()


def _document(result: Receipt | None, checks: list[ReceiptCheck], error: CcdError | None) -> dict[str, Any]:
    verdict = "valid" if error is None else ("invalid" if isinstance(error, DecisionError) else "error")
    return {
        "verdict": verdict,
        "model": result.model if result else None,
        "released_at": result.released_at if result else None,
        "log_index": result.log_index if result else None,
        "audit_seq": result.audit_seq if result else None,
        "checks": [c.to_dict() for c in checks],
        "error": None if error is None else {"type": type(error).__name__, "message": error.diagnostics()},
    }


@click.group()
def receipt() -> None:
    """Verify release receipts the key broker signs."""


@receipt.command("verify")
@click.argument("receipt_file", metavar="RECEIPT", type=_FILE)
@click.option("--broker-key", "broker_key", required=True, type=_FILE, metavar="PEM", help="The broker's public key.")
@click.option(
    "--log-key",
    "log_key",
    required=True,
    metavar="VKEY",
    help="The transparency log's note verifier key (<name>+<id>+<key>), or @FILE holding it.",
)
@click.option(
    "--leaf",
    "leaf_file",
    type=_FILE,
    metavar="FILE",
    help="The release's audit entry (canonical JSON), as logged; needed only for receipts from brokers that do "
    "not sign the audit entry fields.",
)
@json_option
def verify(receipt_file: Path, broker_key: Path, log_key: str, leaf_file: Path | None, json_output: bool) -> None:
    """Check RECEIPT: broker signature, signed checkpoint, inclusion proof, and that the logged leaf is this release."""
    checks: list[ReceiptCheck] = []
    try:
        result = verify_receipt(
            _receipt_bytes(_read(receipt_file, "receipt")),
            _read(broker_key, "broker key"),
            _log_key(log_key),
            leaf_data=_read(leaf_file, "audit entry") if leaf_file is not None else None,
            checks=checks,
        )
    except CcdError as error:
        if not json_output:
            raise
        emit_json(_document(None, checks, error))
        raise click.exceptions.Exit(error.exit_code) from None
    if json_output:
        emit_json(_document(result, checks, None))
        return
    say(f"valid: {result.model} released at {result.released_at}, log index {result.log_index} of {result.tree_size}")
    for check in result.checks:
        say(f"  {check.name}: {check.detail}")
    if not result.leaf_checked:  # pragma: no cover - verify_receipt refuses a receipt whose leaf it cannot tie
        say("  leaf: not checked")
