"""``ccdeploy infer``: attest a serving enclave against a release policy, pin its TLS key, run one inference."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import numpy as np

from ccdeploy._cli._output import emit_json, json_option, say
from ccdeploy._cli._time import parse_at
from ccdeploy._cli.receipt import _log_key as read_log_key
from ccdeploy.client import AttestedClient
from ccdeploy.errors import UsageError

_MAX_SHOWN = 16


@click.command("infer")
@click.argument("url")
@click.option("--model", "model", required=True, help="The model's name on the server.")
@click.option(
    "--policy",
    "policy_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Release policy YAML the server's evidence must satisfy.",
)
@click.option(
    "--input",
    "input_specs",
    multiple=True,
    required=True,
    metavar="NAME=FILE.npy|NAME=@JSON",
    help="An input from a .npy file, or @ followed by a JSON list (or @file.json); JSON takes the model's dtype.",
)
@click.option("--output", "output_names", multiple=True, metavar="NAME", help="Return only these outputs.")
@click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write each output to DIR/NAME.npy.",
)
@click.option("--at", "at_text", metavar="RFC3339", help="Appraise the evidence at this instant (default: now).")
@click.option(
    "--broker-key",
    "broker_key",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="PEM",
    help="The key broker's receipt public key: verify the enclave's release receipt (needs --log-key).",
)
@click.option(
    "--log-key",
    "log_key",
    metavar="VKEY|@FILE",
    help="The transparency log's note verifier key, or @FILE holding it (needs --broker-key).",
)
@json_option
def infer(
    url: str,
    model: str,
    policy_file: Path,
    input_specs: tuple[str, ...],
    output_names: tuple[str, ...],
    output_dir: Path | None,
    at_text: str | None,
    broker_key: Path | None,
    log_key: str | None,
    json_output: bool,
) -> None:
    """Verify the enclave serving at URL, then run MODEL on the inputs over its attested TLS key.

    With --broker-key and --log-key, the enclave's release receipt must verify, name this enclave's keys and
    MODEL. Exit 0: verified and answered; 1: the enclave was rejected; 2: usage or a refused request;
    3: unreachable.
    """
    at = parse_at(at_text)
    if (broker_key is None) != (log_key is None):
        raise UsageError("--broker-key and --log-key go together (both or neither)")
    raw_inputs = dict(_split(spec) for spec in input_specs)
    receipt_keys: dict[str, Any] = {}
    if broker_key is not None and log_key is not None:
        receipt_keys = {"broker_key": _read_key(broker_key), "log_key": read_log_key(log_key), "expected_model": model}
    with AttestedClient(url, policy=policy_file, now=(lambda: at) if at else _now, **receipt_keys) as client:
        verified = client.attest()
        if not json_output:
            say(f"verified {verified.evidence_type} evidence: platform {verified.platform}, debug {verified.debug}")
            for name, value in sorted(verified.measurements.items()):
                say(f"  {name} = {value}")
            say(f"  policy checks passed: {', '.join(name for name, _, _ in verified.checks) or 'none'}")
            say(f"  binding: our nonce, HPKE key sha256:{verified.hpke_public_key_sha256[:16]}…, TLS key")
            say(f"  TLS key pinned: sha256:{verified.tls_public_key_sha256}")
            receipt = verified.receipt
            if receipt is None:
                say("  release receipt: not checked (give --broker-key and --log-key)")
            else:
                say(
                    f"  release receipt verified: model {receipt.model}, artifact ccseal.v1.blake3:"
                    f"{receipt.artifact_digest}, log index {receipt.log_index}, released {receipt.released_at}"
                )
        wants_types = any(value.startswith("@") for value in raw_inputs.values())
        datatypes = _input_datatypes(client.model_metadata(model)) if wants_types else {}
        inputs = {name: _load_input(name, value, datatypes) for name, value in raw_inputs.items()}
        outputs = client.infer(model, inputs, list(output_names) or None)
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        for name, array in outputs.items():
            np.save(output_dir / f"{_safe_name(name)}.npy", array, allow_pickle=False)
    if json_output:
        summary = verified.to_dict()
        emit_json(
            {
                "ok": True,
                "verified": summary,
                "receipt": summary["receipt"],  # null unless --broker-key/--log-key verified it
                "model": model,
                "outputs": {name: _tensor_json(array) for name, array in outputs.items()},
            }
        )
        return
    for name, array in outputs.items():
        flat = array.ravel().tolist()
        shown = flat[:_MAX_SHOWN] + (["…"] if len(flat) > _MAX_SHOWN else [])
        say(f"output {name} {array.dtype} {list(array.shape)}: {shown}")
    if output_dir is not None:
        say(f"outputs written to {output_dir}")


def _read_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the broker key {path}: {exc.strerror}") from None


def _now() -> datetime:
    return datetime.now(UTC)


def _split(spec: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    if not sep or not name or not value:
        raise UsageError(f"--input {spec!r} is not NAME=FILE.npy or NAME=@JSON")
    return name, value


def _input_datatypes(metadata: dict[str, Any]) -> dict[str, str]:
    return {str(t.get("name")): str(t.get("datatype")) for t in metadata.get("inputs", []) if isinstance(t, dict)}


_NUMPY_FOR = {
    "BOOL": "?", "UINT8": "u1", "UINT16": "u2", "UINT32": "u4", "UINT64": "u8", "INT8": "i1", "INT16": "i2",
    "INT32": "i4", "INT64": "i8", "FP16": "f2", "FP32": "f4", "FP64": "f8", "BYTES": "O",
}  # fmt: skip


def _load_input(name: str, value: str, datatypes: dict[str, str]) -> np.ndarray[Any, Any]:
    if value.startswith("@"):
        text = value[1:]
        try:
            data = json.loads(text if text.lstrip().startswith("[") else Path(text).read_text())
        except (OSError, ValueError) as error:
            raise UsageError(f"--input {name}: cannot read a JSON list ({type(error).__name__})") from None
        dtype = _NUMPY_FOR.get(datatypes.get(name, ""))
        if dtype is None:
            raise UsageError(f"--input {name}: the model has no such input")
        try:
            return np.asarray(data, dtype=dtype)
        except (ValueError, TypeError):
            raise UsageError(f"--input {name}: the JSON list is not a regular array of the model's type") from None
    try:
        array: np.ndarray[Any, Any] = np.load(Path(value), allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UsageError(f"--input {name}: cannot read {value} as .npy ({type(error).__name__})") from None
    return array


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".")
    return cleaned or "output"


def _tensor_json(array: np.ndarray[Any, Any]) -> dict[str, Any]:
    data = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in array.ravel().tolist()]
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": data}
