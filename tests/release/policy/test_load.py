"""Loading release policies: valid documents, every kind of invalid one, and lint findings."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestation.simulator.nitro import default_pcrs
from ccdeploy.errors import PolicyInvalid
from ccdeploy.release.policy import lint, load_policy, load_policy_file, policy_digest
from tests.release.policy.conftest import PolicyDoc, dump

EXAMPLE = Path(__file__).parents[3] / "examples" / "release-policy.yaml"
PCR0 = default_pcrs()[0].hex()
KEY = (
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEjriz/UbaWDhSXAdV1zhHbXXNjyzG\n"
    "AU15T9Ud5EHpImwJ23kj2fBiPVNbfZb7Yvu54+XYWt5wn4ZkIbKGrspnOA==\n-----END PUBLIC KEY-----\n"
)
KEY_JSON = json.dumps(KEY).encode()
MINIMAL = f"version: 1\nplatforms:\n  nitro:\n    pcrs: {{0: '{PCR0}'}}\n".encode()


def test_minimal_policy_has_defaults() -> None:
    policy = load_policy(MINIMAL)
    assert policy.platforms.names() == ["nitro"]
    assert policy.max_evidence_age == 300
    assert policy.allow_debug is False
    assert policy.unsafe_accept_simulator_roots is False
    assert policy.gpu.required is False
    assert policy.provenance is None and policy.bom is None and policy.cel == ()
    refs = policy.reference_values()
    assert refs.nitro is not None and refs.nitro.pcrs[0] == (bytes.fromhex(PCR0),)


def test_full_policy(base_policy: PolicyDoc) -> None:
    key = KEY
    document = base_policy | {
        "allow_debug": True,
        "max_evidence_age": 60,
        "gpu": {"required": True, "drivers": ["550.90.07"], "vbios": ["96.00.9F.00.04"]},
        "provenance": {"key": key, "builder_id": "https://ccdeploy.dev/builders/local/v1"},
        "bom": {"required": True, "digest": "sha256:" + "ab" * 32},
        "cel": ["claims.debug == false", "model.name != ''"],
    }
    document["platforms"]["sev-snp"] = {"measurement": "00" * 48, "minimum_tcb": {"snp": 5}}
    policy = load_policy(dump(document))
    assert policy.platforms.names() == ["nitro", "sev-snp"]
    assert policy.trust_roots is not None and len(policy.trust_roots.nitro or ()) == 1
    assert policy.provenance is not None and policy.provenance.key is not None
    assert policy.bom is not None and policy.bom.expected_hex == "ab" * 32
    assert [e.text for e in policy.cel] == ["claims.debug == false", "model.name != ''"]


def test_keyless_provenance() -> None:
    policy = load_policy(
        MINIMAL + b"provenance: {identity: 'https://github.com/o/r/.github/workflows/r.yml@refs/tags/v1', "
        b"issuer: 'https://token.actions.githubusercontent.com'}\n"
    )
    assert policy.provenance is not None and policy.provenance.key is None


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "empty"),
        (b"# only a comment\n", "empty"),
        (b"- a\n- b\n", "mapping"),
        (b"just text", "mapping"),
        (b"version: 1\nplatforms: [\n", "not valid YAML"),
        (b"\xff\xfe\x00garbage", "YAML"),
        (MINIMAL.replace(b"version: 1", b"version: 2"), "unknown release policy version 2"),
        (MINIMAL.replace(b"version: 1", b"version: '1'"), "unknown release policy version"),
        (MINIMAL.replace(b"version: 1\n", b""), "version"),
        (b"version: 1\n", "platforms"),
        (b"version: 1\nplatforms: {}\n", "no platform is accepted"),
        (b"version: 1\nplatforms: {nitro: {}}\n", "pcrs"),
        (b"version: 1\nplatforms: {tdx: {mrtd: '00'}}\n", "tdx"),
        (MINIMAL + b"surprise: true\n", "surprise"),
        (MINIMAL + b"1: x\n", "not names"),
        (MINIMAL + b"max_evidence_age: 0\n", "max_evidence_age"),
        (MINIMAL + b"max_evidence_age: '300'\n", "max_evidence_age"),
        (MINIMAL + b"max_evidence_age: 1.5\n", "max_evidence_age"),
        (MINIMAL + b"allow_debug: 'no'\n", "allow_debug"),
        (MINIMAL + b"trust_roots: {nitro: ['not a pem']}\n", "PEM"),
        (MINIMAL + b"trust_roots: {sev-snp: []}\n", "trust_roots"),
        (MINIMAL + b"provenance: {}\n", "name the signer"),
        (MINIMAL + b"provenance: {identity: me}\n", "identity and issuer"),
        (MINIMAL + b"provenance: {key: 'nope'}\n", "PEM"),
        (MINIMAL + b"provenance: {key: " + KEY_JSON + b", identity: a, issuer: b}\n", "not both"),
        (MINIMAL + b"bom: {}\n", "checks nothing"),
        (MINIMAL + b"bom: {digest: 'md5:00'}\n", "bom.digest"),
        (MINIMAL + b"bom: {digest: 'sha256:" + b"AB" * 32 + b"'}\n", "bom.digest"),
        (MINIMAL + b"cel: ['claims.(']\n", "not a valid CEL expression"),
        (MINIMAL + b"cel: ['']\n", "empty expression"),
        (MINIMAL + b"cel: [1]\n", "text"),
        (MINIMAL + b"cel: 'claims.debug'\n", "list"),
        (MINIMAL + b"gpu: {required: true, extra: 1}\n", "gpu.extra"),
        (b"a: &a [*a]\n", "a"),
        # weak policies: they would look like they check something and check nothing
        (MINIMAL + b"gpu: {required: false, drivers: ['550.90.07']}\n", "only checked when required"),
        (MINIMAL + b"gpu: {vbios: ['96.00']}\n", "only checked when required"),
        (MINIMAL.replace(b"version: 1", b"version: true"), "version"),
        (MINIMAL.replace(b"version: 1", b"version: 1.0"), "version"),
        (f"version: 1\nplatforms:\n  nitro:\n    pcrs: {{4: '{PCR0}'}}\n".encode(), "no PCR0"),
        (b"version: 1\nplatforms:\n  sev-snp: {maximum_vmpl: 0}\n", "no measurement"),
        (b"version: 1\nplatforms:\n  nitro:\n    pcrs: {0: 'aa'}\n", "1-byte value (expected 48 bytes"),
        (f"version: 1\nplatforms:\n  nitro:\n    pcrs: {{0: ['{PCR0}', '{PCR0}00']}}\n".encode(), "49-byte"),
        (b"version: 1\nplatforms:\n  sev-snp: {measurement: '" + b"00" * 32 + b"'}\n", "sev-snp.measurement: a 32"),
        (
            b"version: 1\nplatforms:\n  sev-snp: {measurement: '" + b"00" * 48 + b"', host_data: '00'}\n",
            "sev-snp.host_data",
        ),
        (
            b"version: 1\nunsafe_no_code_identity: true\nplatforms:\n  nitro:\n    pcrs: {4: 'aa'}\n",
            "nitro.pcrs.4: a 1-byte",
        ),
    ],
)
def test_invalid_policies_fail_closed(data: bytes, says: str) -> None:
    with pytest.raises(PolicyInvalid) as caught:
        load_policy(data)
    assert says in caught.value.message
    assert caught.value.exit_code == 2


def test_every_problem_is_listed() -> None:
    with pytest.raises(PolicyInvalid) as caught:
        load_policy(MINIMAL + b"max_evidence_age: -1\nallow_debug: 3\nbogus: 1\n")
    message = caught.value.message
    assert "max_evidence_age" in message and "allow_debug" in message and "bogus" in message


@pytest.mark.parametrize(
    "data",
    [
        MINIMAL + b"allow_debug: false\nallow_debug: true\n",
        f"version: 1\nplatforms:\n  nitro:\n    pcrs: {{0: '{PCR0}', 0: '{PCR0}'}}\n".encode(),
        MINIMAL + b"gpu: {required: false, required: true}\n",
    ],
)
def test_duplicate_keys_are_refused(data: bytes) -> None:
    with pytest.raises(PolicyInvalid, match="duplicate"):
        load_policy(data)


def test_oversized_policy() -> None:
    with pytest.raises(PolicyInvalid, match="larger"):
        load_policy(MINIMAL + b"#" * (1 << 20))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyInvalid, match="cannot read"):
        load_policy_file(tmp_path / "missing.yaml")


def test_policy_digest() -> None:
    assert policy_digest(MINIMAL) == "sha256:" + hashlib.sha256(MINIMAL).hexdigest()


def test_frozen() -> None:
    policy = load_policy(MINIMAL)
    with pytest.raises(ValueError, match="frozen"):
        policy.allow_debug = True  # type: ignore[misc]


def test_lint_warnings(base_policy: PolicyDoc) -> None:
    document = base_policy | {"allow_debug": True, "max_evidence_age": 86400, "gpu": {"required": True}}
    messages = [f.message for f in lint(load_policy(dump(document))) if f.level == "warn"]
    for expected in ("simulator", "allow_debug", "no provenance", "no bom", "max_evidence_age"):
        assert any(expected in m for m in messages), expected
    assert not any("gpu" in m for m in messages)  # GPU evidence is verifiable now: no longer a warning
    infos = [f.message for f in lint(load_policy(dump(document))) if f.level == "info"]
    assert any("RIMs" in m for m in infos)


@pytest.mark.parametrize(
    "platforms",
    [
        f"nitro:\n    pcrs: {{4: '{PCR0}'}}\n",
        "sev-snp: {maximum_vmpl: 0}\n",
    ],
)
def test_no_code_identity_needs_the_loud_opt_out(platforms: str) -> None:
    data = f"version: 1\nplatforms:\n  {platforms}".encode()
    with pytest.raises(PolicyInvalid, match="unsafe_no_code_identity"):
        load_policy(data)
    policy = load_policy(data + b"unsafe_no_code_identity: true\n")
    warnings = [f.message for f in lint(policy) if f.level == "warn"]
    assert any(m.startswith("unsafe_no_code_identity is true") for m in warnings)


def test_code_identity_pinned_needs_no_opt_out() -> None:
    data = b"version: 1\nplatforms:\n  sev-snp: {measurement: '" + b"ab" * 48 + b"'}\n"
    assert load_policy(data).platforms.code_identity_gaps() == []
    with pytest.raises(PolicyInvalid, match="unsafe_no_code_identity"):
        load_policy(data + b"unsafe_no_code_identity: 1\n")  # strict bool


def test_review_weak_policies_are_refused() -> None:
    """The security review's weak policies (PCR4 only + unchecked GPU values; SNP without measurement; version: true)."""
    weak_nitro = (
        b"version: 1\nplatforms:\n  nitro:\n    pcrs:\n      4: '" + b"00" * 48 + b"'\n"
        b"provenance: {identity: x, issuer: y}\nbom: {required: true}\n"
    )
    for data in (
        weak_nitro,
        weak_nitro + b"gpu:\n  drivers: ['535.1']\n  vbios: ['96.00']\n",
        b"version: 1\nplatforms:\n  sev-snp:\n    maximum_vmpl: 3\n",
        b"version: true\nplatforms:\n  nitro:\n    pcrs: {0: '" + b"aa" * 48 + b"'}\n",
    ):
        with pytest.raises(PolicyInvalid):
            load_policy(data)


def test_lint_simulator_root_without_flag(base_policy: PolicyDoc) -> None:
    document = base_policy | {"unsafe_accept_simulator_roots": False}
    messages = [f.message for f in lint(load_policy(dump(document)))]
    assert any("will be refused" in m for m in messages)


def test_lint_quiet_on_a_strict_policy() -> None:
    policy = load_policy(MINIMAL + b"bom: {required: true}\nprovenance: {identity: a, issuer: b}\n")
    assert [f for f in lint(policy) if f.level == "warn"] == []


def test_example_policy_is_valid() -> None:
    policy = load_policy_file(EXAMPLE)
    assert policy.unsafe_accept_simulator_roots
    assert policy.platforms.nitro is not None
    assert policy.platforms.nitro.pcrs[0] == (default_pcrs()[0],)


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20), st.binary(max_size=8)
)
_keys = st.one_of(
    st.sampled_from(
        [
            "version",
            "platforms",
            "nitro",
            "sev-snp",
            "pcrs",
            "trust_roots",
            "allow_debug",
            "max_evidence_age",
            "gpu",
            "required",
            "provenance",
            "key",
            "identity",
            "issuer",
            "bom",
            "digest",
            "cel",
            "measurement",
            "minimum_tcb",
        ]
    ),
    st.integers(0, 20),
    st.text(max_size=8),
)
_documents = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5), max_leaves=25
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_documents)
def test_random_documents_only_raise_policy_invalid(document: object) -> None:
    import yaml

    try:
        data = yaml.safe_dump(document).encode()
    except yaml.YAMLError:
        return
    with contextlib.suppress(PolicyInvalid):
        load_policy(data)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_random_bytes_only_raise_policy_invalid(data: bytes) -> None:
    with contextlib.suppress(PolicyInvalid):
        load_policy(data)
