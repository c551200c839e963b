"""Property tests: mutations of good bundles never verify, and every failure is a typed CcdError."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccdeploy.errors import CcdError
from ccdeploy.provenance.verify import (
    SignerPolicy,
    TrustInputs,
    load_key,
    load_policy,
    open_target,
    pinned_trusted_root,
    verify_document,
)

# Fields that are hints by definition: changing them does not change what was signed.
UNAUTHENTICATED = frozenset({"hint", "keyid"})
# Optional fields whose absence the spec allows: emptying them removes evidence, it cannot forge any.
# (messageDigest only restates the digest the signature is verified over; a key bundle may have no tlog entry.)
OPTIONAL = frozenset(
    {
        "messageDigest",
        "timestampVerificationData",
        "rfc3161Timestamps",
        "tlogEntries",
        "inclusionPromise",
        "integratedTime",
    }
)

TRICKY = st.sampled_from(["", "AAAA", "MEUCIQ==", "-1", "0", 2**70, -1])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | TRICKY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() if k not in UNAUTHENTICATED for p in _leaves(v, (*path, k))] + [path]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaves(v, (*path, i))] + [path]
    return [path]


def _replace(node: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(node))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return copy


@pytest.fixture(scope="module")
def key_case(vectors: Path) -> tuple[dict[str, Any], Path, TrustInputs]:
    model = vectors / "model-signing" / "v1.1.0-elliptic-key"
    bundle = json.loads((model / "model.sig").read_text())
    trust = TrustInputs(
        trusted_root=pinned_trusted_root(),
        at=datetime(2026, 1, 1, tzinfo=UTC),
        keys=(load_key(vectors / "model-signing" / "keys" / "signing-key-pub.pem"),),
    )
    return bundle, model, trust


@pytest.fixture(scope="module")
def keyless_case(vectors: Path) -> tuple[dict[str, Any], Path, TrustInputs]:
    case = vectors / "sigstore" / "conformance" / "happy-path-v0.3"
    bundle = json.loads((case / "bundle.sigstore.json").read_text())
    trust = TrustInputs(trusted_root=pinned_trusted_root(), at=datetime(2026, 1, 1, tzinfo=UTC))
    return bundle, vectors / "sigstore" / "conformance" / "a.txt", trust


CONFORMANCE_POLICY = SignerPolicy(
    identity="https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
    issuer="https://token.actions.githubusercontent.com",
)


def _never_verifies(case: tuple[dict[str, Any], Path, TrustInputs], policy: SignerPolicy, data: st.DataObject) -> None:
    bundle, target, trust = case
    path = data.draw(st.sampled_from(_leaves(bundle)))
    value = data.draw(json_values)
    current: Any = bundle
    for step in path:
        current = current[step]
    if value == current or (path and path[-1] in OPTIONAL and value in (None, {}, [])):
        return
    mutated = json.dumps(_replace(bundle, path, value)).encode()
    with pytest.raises(CcdError):
        verify_document(mutated, open_target(target), trust, policy)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_key_bundle_never_verifies(
    key_case: tuple[dict[str, Any], Path, TrustInputs], data: st.DataObject
) -> None:
    _never_verifies(key_case, SignerPolicy(), data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_keyless_bundle_never_verifies(
    keyless_case: tuple[dict[str, Any], Path, TrustInputs], data: st.DataObject
) -> None:
    _never_verifies(keyless_case, CONFORMANCE_POLICY, data)


def test_unmutated_bundles_verify(
    key_case: tuple[dict[str, Any], Path, TrustInputs], keyless_case: tuple[dict[str, Any], Path, TrustInputs]
) -> None:
    for (bundle, target, trust), policy in ((key_case, SignerPolicy()), (keyless_case, CONFORMANCE_POLICY)):
        verify_document(json.dumps(bundle).encode(), open_target(target), trust, policy)


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_arbitrary_bytes_raise_only_typed_errors(raw: bytes) -> None:
    target = Path(__file__)
    trust = TrustInputs(trusted_root=_ROOT, at=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(CcdError):
        verify_document(raw, open_target(target), trust, CONFORMANCE_POLICY)


_ROOT = pinned_trusted_root()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=st.dictionaries(st.text(max_size=12), json_values, max_size=5))
def test_policy_parser_rejects_or_returns_a_policy(tmp_path: Path, document: dict[str, Any]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(json.dumps(document))  # JSON is YAML
    try:
        policy = load_policy(path)
    except CcdError as error:
        assert error.exit_code == 2
    else:
        assert set(document) <= set(SignerPolicy.model_fields)
        assert isinstance(policy, SignerPolicy)
