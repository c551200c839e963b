"""Verify an in-toto supply-chain layout, its links and its inspections, at a given time.

This follows ``in_toto.verifylib.in_toto_verify`` step by step and calls its public functions for
each step, with three differences that make it safe to use as a verifier:

* **Time is an argument.** ``in_toto_verify`` judges expiry with the clock; here the layout (and every
  sublayout) expires when ``expires <= at``.
* **Signatures are checked over the exact received object, and owner keys are matched by verifying**
  (see :mod:`ccdeploy.provenance._layout_keys` and :mod:`ccdeploy.provenance._layout_document`), so
  layouts written by in-toto-golang verify although their keyids and extension fields differ from
  in-toto-python's.
* **Inspections run in** ``workdir``, never the process's current directory, and their links are
  not written anywhere (see :mod:`ccdeploy.provenance._layout_inspect`).

``in_toto_verify`` checks *links*, not files: a product changed on disk after its link was written
is only caught by an inspection whose rules say ``MATCH <file> WITH PRODUCTS FROM <step>`` followed
by ``DISALLOW *``. Layouts meant to protect artifacts on disk need such an inspection.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from in_toto import verifylib
from in_toto.exceptions import Error as InTotoError
from in_toto.models.layout import SUBLAYOUT_LINK_DIR_FORMAT
from securesystemslib.exceptions import Error as SslibError

from ccdeploy._checks import Check
from ccdeploy.errors import LayoutInvalid, TrustRootInvalid, UsageError
from ccdeploy.provenance._layout_document import (
    LayoutDocument,
    document_from_metadata,
    parse_layout,
    read_layout_file,
)
from ccdeploy.provenance._layout_inspect import IN_TOTO_LOCK, run_inspection
from ccdeploy.provenance._layout_keys import OwnerKey, load_owner_keys, owner_key_from_layout, verified_by

__all__ = ["LayoutCheck", "LayoutResult", "verify_layout"]

_T = TypeVar("_T")
_MAX_SUBLAYOUT_DEPTH = 8


LayoutCheck = Check
"""One check of a layout verification (``name`` e.g. ``layout-signature``, ``expiry``, ``step-rules``,
``inspection untar``; steps of a sublayout are prefixed ``sublayout <step>: ``). A returned result holds only
passed checks: a failure raises."""


@dataclass(frozen=True)
class LayoutResult:
    """A layout, its links and its inspections verified.

    Attributes:
        expires: When the top-level layout expires.
        steps: The names of the layout's steps, in order.
        inspections: The names of the inspections that ran, in order.
        keyids: The keyids named by the layout signatures that the owner keys verified (labels
            chosen by whoever signed; the keys themselves are what was checked).
        checks: Every check that ran, in order.
    """

    expires: datetime
    steps: tuple[str, ...]
    inspections: tuple[str, ...]
    keyids: tuple[str, ...]
    checks: tuple[LayoutCheck, ...]

    verdict = "verified"

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``{verdict, layout: {expires, steps, inspections, keyids}, checks, error}``."""
        return {
            "verdict": self.verdict,
            "layout": {
                "expires": _rfc3339(self.expires),
                "steps": list(self.steps),
                "inspections": list(self.inspections),
                "keyids": list(self.keyids),
            },
            "checks": [check.to_dict() for check in self.checks],
            "error": None,
        }


def verify_layout(
    layout: Path,
    layout_keys: Sequence[Path],
    links_dir: Path,
    *,
    at: datetime,
    workdir: Path,
    inspection_timeout_s: float = 300.0,
) -> LayoutResult:
    """Verify an in-toto layout, its links and its inspections as of ``at``.

    The order is in-toto's: layout signatures, expiry, links loading, link signature thresholds,
    sublayouts (recursively, same time and workdir), command alignment (reported, never fatal, as
    the in-toto spec says), threshold constraints, step artifact rules, inspections, inspection
    artifact rules.

    Owner keys are matched to layout signatures by verifying, not by keyid: in-toto-golang and
    in-toto-python compute different keyids for the same PEM key, and a PEM key does not say its
    signature scheme, so every signature is tried under every scheme the key's type allows (RSA:
    RSASSA-PSS and PKCS#1 v1.5 with SHA-256/384/512; ECDSA: the curve's scheme; Ed25519). Each
    owner key must have made a valid signature, as in in-toto.

    Inspections run as subprocesses with ``cwd=workdir`` and record the artifacts of ``workdir``;
    they run the commands the (verified) layout names, so only verify layouts whose owners you
    trust to run commands on this machine. Calls are serialized process-wide, because in-toto keeps
    global state, and in-toto's artifact recorder changes the process cwd while it hashes (it is
    restored afterwards).

    Args:
        layout: A DSSE-enveloped or metablock layout file.
        layout_keys: PEM public keys of the layout owners (RSA, ECDSA P-256/384/521, Ed25519).
        links_dir: The directory holding ``<step>.<keyid8>.link`` files (and sublayout link dirs).
        at: The instant expiry is judged at; timezone-aware.
        workdir: The directory inspections run in and whose files they record.
        inspection_timeout_s: How long each inspection command may run.

    Returns:
        The verified layout's summary and the checks that passed.

    Raises:
        ValueError: ``at`` is naive.
        LayoutInvalid: A check failed; the message names it (signature, expired, links, threshold,
            rule, inspection, ...).
        TrustRootInvalid: A layout key is missing, unreadable or unsupported.
        UsageError: The layout file is unreadable or not an in-toto layout, or ``workdir`` is not a
            directory.
        CouldNotCheck: An inspection command could not be started or timed out.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("verify_layout needs a timezone-aware 'at'")
    owners = load_owner_keys(layout_keys)
    document = read_layout_file(layout)
    if not workdir.is_dir():
        raise UsageError(f"inspection workdir {workdir} is not a directory")
    run = _Run(at=at, workdir=workdir.resolve(), timeout_s=inspection_timeout_s)
    with IN_TOTO_LOCK, _restore_cwd():
        parsed, keyids, _summary = run.verify(document, owners, links_dir, prefix="", depth=0, step_name="")
    return LayoutResult(
        expires=_expiry(parsed, ""),
        steps=tuple(step.name for step in parsed.steps),
        inspections=tuple(inspection.name for inspection in parsed.inspect),
        keyids=keyids,
        checks=tuple(run.checks),
    )


@dataclass
class _Run:
    at: datetime
    workdir: Path
    timeout_s: float

    def __post_init__(self) -> None:
        self.checks: list[LayoutCheck] = []

    def passed(self, prefix: str, name: str, detail: str) -> None:
        self.checks.append(LayoutCheck(prefix + name, True, detail))

    def verify(
        self,
        document: LayoutDocument,
        owners: Sequence[OwnerKey],
        links_dir: Path,
        *,
        prefix: str,
        depth: int,
        step_name: str,
    ) -> tuple[Any, tuple[str, ...], Any]:
        """Verify one (sub)layout; return its in-toto ``Layout``, verified signature keyids and summary link."""
        keyids = _verify_signatures(document, owners, prefix)
        self.passed(prefix, "layout-signature", f"{len(owners)} owner key(s) each made a valid signature")
        layout, ignored = parse_layout(document, prefix + "layout")
        if ignored:
            self.passed(prefix, "layout-fields", f"ignored in-toto-golang certificate fields {list(ignored)}")
        expires = _expiry(layout, prefix)
        if expires <= self.at:
            raise LayoutInvalid(
                f"{prefix}layout expired: it expired at {_rfc3339(expires)} (judged at {_rfc3339(self.at)})"
            )
        self.passed(prefix, "expiry", f"expires {_rfc3339(expires)}, after {_rfc3339(self.at)}")
        _refuse_clock_dependent_keys(layout, prefix)

        steps_metadata = _in_toto(prefix + "links", verifylib.load_links_for_layout, layout, str(links_dir))
        self.passed(prefix, "links", f"found links for {len(steps_metadata)} step(s) in {links_dir.name or links_dir}")
        steps_metadata = _in_toto(
            prefix + "link signature threshold", verifylib.verify_link_signature_thresholds, layout, steps_metadata
        )
        self.passed(prefix, "link-signatures", "every step has threshold links signed by authorized functionaries")

        chain = self._sublayouts(layout, steps_metadata, links_dir, prefix, depth)
        self._command_alignment(layout, chain, prefix)
        _in_toto(prefix + "threshold constraints", verifylib.verify_threshold_constraints, layout, chain)
        self.passed(prefix, "threshold-constraints", "links of each step agree on materials and products")
        reduced = verifylib.reduce_chain_links(chain)
        _in_toto(prefix + "artifact rule (steps)", verifylib.verify_all_item_rules, layout.steps, reduced)
        self.passed(prefix, "step-rules", f"material and product rules of {len(layout.steps)} step(s) hold")

        inspection_links = {}
        for inspection in layout.inspect:
            inspection_links[inspection.name] = run_inspection(inspection, self.workdir, self.timeout_s)
            self.passed(prefix, f"inspection {inspection.name}", f"ran {inspection.run[0]!r} in the workdir: status 0")
        combined = {**reduced, **inspection_links}
        _in_toto(prefix + "artifact rule (inspections)", verifylib.verify_all_item_rules, layout.inspect, combined)
        self.passed(
            prefix, "inspection-rules", f"material and product rules of {len(layout.inspect)} inspection(s) hold"
        )
        return layout, keyids, verifylib.get_summary_link(layout, reduced, step_name)

    def _sublayouts(
        self, layout: Any, steps_metadata: dict[str, dict[str, Any]], links_dir: Path, prefix: str, depth: int
    ) -> dict[str, dict[str, Any]]:
        # Mirrors verifylib.verify_sublayouts, which recurses into in_toto_verify (clock, process cwd).
        chain: dict[str, dict[str, Any]] = {}
        for step_name, by_keyid in steps_metadata.items():
            chain[step_name] = {}
            for keyid, metadata in by_keyid.items():
                payload = _in_toto(prefix + "links", metadata.get_payload)
                if payload.type_ == "layout":
                    if depth >= _MAX_SUBLAYOUT_DEPTH:
                        raise LayoutInvalid(f"{prefix}sublayout: nested deeper than {_MAX_SUBLAYOUT_DEPTH} levels")
                    payload = self._sublayout(layout, step_name, keyid, metadata, links_dir, prefix, depth)
                chain[step_name][keyid] = payload
        return chain

    def _sublayout(
        self, layout: Any, step_name: str, keyid: str, metadata: Any, links_dir: Path, prefix: str, depth: int
    ) -> Any:
        sub_prefix = f"{prefix}sublayout {step_name}: "
        try:
            owner = owner_key_from_layout(keyid, layout.keys.get(keyid))
        except TrustRootInvalid as exc:
            raise LayoutInvalid(f"{sub_prefix}{exc.message}") from exc
        document = document_from_metadata(metadata, f"{sub_prefix}layout")
        sub_dir = links_dir / SUBLAYOUT_LINK_DIR_FORMAT.format(name=step_name, keyid=keyid)
        _layout, _keyids, summary = self.verify(
            document, [owner], sub_dir, prefix=sub_prefix, depth=depth + 1, step_name=step_name
        )
        return summary

    def _command_alignment(self, layout: Any, chain: dict[str, dict[str, Any]], prefix: str) -> None:
        verifylib.verify_all_steps_command_alignment(layout, chain)  # logs mismatches, as the spec says
        differing = sorted(
            {
                step.name
                for step in layout.steps
                for link in chain[step.name].values()
                if link.command != step.expected_command
            }
        )
        detail = f"commands differ from expected (not fatal) for {differing}" if differing else "commands as expected"
        self.passed(prefix, "command-alignment", detail)


def _verify_signatures(document: LayoutDocument, owners: Sequence[OwnerKey], prefix: str) -> tuple[str, ...]:
    keyids: list[str] = []
    for owner in owners:
        signature = verified_by(owner, document.signatures, document.signed_bytes)
        if signature is None:
            raise LayoutInvalid(
                f"{prefix}layout signature: none of the {len(document.signatures)} signature(s) on the "
                f"{document.kind} layout verifies with owner key {owner.label}"
            )
        keyids.append(signature.keyid)
    return tuple(keyids)


def _expiry(layout: Any, prefix: str) -> datetime:
    try:
        expires = datetime.fromisoformat(layout.expires)
    except (TypeError, ValueError) as exc:
        raise LayoutInvalid(f"{prefix}layout expiry: 'expires' is not an ISO 8601 time") from exc
    if expires.tzinfo is None:
        raise LayoutInvalid(f"{prefix}layout expiry: 'expires' has no time zone")
    return expires


def _refuse_clock_dependent_keys(layout: Any, prefix: str) -> None:
    # securesystemslib checks an OpenPGP key's own expiry against the clock while verifying a link.
    for keyid, key in layout.keys.items():
        if isinstance(key, dict) and "method" in key:
            raise LayoutInvalid(
                f"{prefix}functionary keys: OpenPGP key {str(keyid)[:8]} is not supported (its expiry reads the clock)"
            )


def _in_toto(check: str, function: Callable[..., _T], *args: Any) -> _T:
    """Call an in-toto verification step, turning its failures into LayoutInvalid naming ``check``."""
    try:
        return function(*args)
    except (InTotoError, SslibError, ValueError, KeyError, TypeError, OSError) as exc:
        raise LayoutInvalid(f"{check}: {type(exc).__name__}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or "no detail"
    return text.splitlines()[0][:500]


@contextmanager
def _restore_cwd() -> Iterator[None]:
    saved = os.getcwd()
    try:
        yield
    finally:
        os.chdir(saved)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
