"""Who may have signed: a strict signer policy checked against the signing certificate, never the predicate.

A policy is YAML (``--policy FILE``) or built from the shorthand flags. Every field is optional, unknown keys
are refused, and an empty policy is refused for keyless bundles (fail closed: "any Fulcio identity" is never
a default).

How each field is matched against the Fulcio certificate:

* ``identity``: equals the certificate's SAN (URI or e-mail), exactly.
* ``issuer``: equals the OIDC issuer extension (v2 ``1.3.6.1.4.1.57264.1.8``, else v1 ``…1.1``).
  When a GitHub-specific field (``source_repository``, ``source_ref``, ``builder_id``, ``workflow``) is set
  and ``issuer`` is not, the issuer must be ``https://token.actions.githubusercontent.com``.
* ``source_repository``: ``github.com/owner/repo`` or a URL; equals the Source Repository URI extension.
* ``source_ref``: equals the Source Repository Ref extension (``refs/tags/v1.0.1``).
* ``builder_id``: the SLSA builder identity, taken from the certificate as slsa-verifier does: it matches
  the Build Signer URI (the workflow that held the signing identity, for a reusable workflow the reusable
  one) or, for a GitHub-hosted runner, ``https://github.com/actions/runner/<runner environment>``
  (the builder id of npm's GitHub Actions provenance; as it names every workflow on GitHub's hosted runners,
  it is refused unless ``source_repository`` is also set). Without ``@`` it matches any ref of that workflow.
  ``predicate.builder.id`` is never read.
* ``workflow``: the Build Config URI (the top-level workflow the repository ran); without ``@``, any ref.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from cryptography import x509
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ccdeploy.errors import TrustRootInvalid, UntrustedSigner, UsageError
from ccdeploy.provenance.verify._fulcio import certificate_claims, subject_identity
from ccdeploy.provenance.verify._report import Report

__all__ = ["GITHUB_ACTIONS_ISSUER", "SignerPolicy", "check_fulcio_certificate", "load_policy"]

GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
_RUNNER_BUILDER = "https://github.com/actions/runner"


class SignerPolicy(BaseModel):
    """Constraints on the signer of a bundle (all optional; see the module docstring for the matching rules)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    identity: str | None = None
    issuer: str | None = None
    source_repository: str | None = None
    source_ref: str | None = None
    builder_id: str | None = None
    workflow: str | None = None
    predicate_type: str | None = None
    """If set, the signed statement must have this predicate type."""

    @field_validator("*")
    @classmethod
    def _not_empty(cls, value: str | None) -> str | None:
        if value is not None and not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("source_repository")
    @classmethod
    def _repository_url(cls, value: str | None) -> str | None:
        if value is None or "://" in value:
            return value
        return f"https://{value}"

    def merged(self, other: SignerPolicy) -> SignerPolicy:
        """This policy with every field ``other`` sets taken from ``other`` (flags override a policy file)."""
        return self.model_copy(update=other.model_dump(exclude_none=True))

    @property
    def github_specific(self) -> bool:
        """Whether a field that only a GitHub Actions certificate can satisfy is set."""
        return any(v is not None for v in (self.source_repository, self.source_ref, self.builder_id, self.workflow))

    @property
    def constrains_signer(self) -> bool:
        """Whether the policy pins a signer at all (an identity, a builder or a workflow)."""
        return any(v is not None for v in (self.identity, self.builder_id, self.workflow))


def load_policy(path: Path) -> SignerPolicy:
    """Parse a policy YAML file.

    Raises:
        UsageError: unreadable file, not a mapping, unknown keys or bad values.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read policy {path}: {exc}") from None
    if not isinstance(document, dict):
        raise UsageError(f"policy {path} must be a YAML mapping")
    try:
        return SignerPolicy.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"policy {path} is invalid: {problems}") from None


def _matches_workflow(expected: str, actual: str | None) -> bool:
    if actual is None:
        return False
    if "@" in expected:
        return actual == expected
    return actual.split("@", 1)[0] == expected


def _require(report: Report, name: str, ok: bool, detail: str) -> None:
    if not ok:
        report.failed(name, detail)
        raise UntrustedSigner(detail)
    report.passed(name, detail)


def check_fulcio_certificate(certificate: x509.Certificate, policy: SignerPolicy, report: Report) -> None:
    """Check a (cryptographically verified) Fulcio certificate against ``policy``.

    Raises:
        TrustRootInvalid: the policy pins no signer (nothing to check a keyless bundle against).
        UntrustedSigner: a field of the policy does not match the certificate.
        SignatureInvalid: a Fulcio extension is malformed.
    """
    if not policy.constrains_signer:
        raise TrustRootInvalid(
            "a keyless (Fulcio) bundle needs a signer to check: give --identity and --issuer, --builder-id, "
            "--workflow, or a --policy that sets one"
        )
    claims = certificate_claims(certificate)
    identity = subject_identity(certificate)
    issuer = claims.get("issuer") or claims.get("issuer_v1")
    expected_issuer = policy.issuer or (GITHUB_ACTIONS_ISSUER if policy.github_specific else None)
    if expected_issuer is None:
        raise TrustRootInvalid("--identity needs --issuer (the OIDC issuer that vouched for it)")
    _require(
        report, "signer.issuer", issuer == expected_issuer, f"OIDC issuer {issuer!r}, required {expected_issuer!r}"
    )
    if policy.identity is not None:
        _require(
            report,
            "signer.identity",
            identity == policy.identity,
            f"identity {identity!r}, required {policy.identity!r}",
        )
    if policy.source_repository is not None:
        source = claims.get("source_repository_uri")
        if source is None and "github_workflow_repository" in claims:
            source = f"https://github.com/{claims['github_workflow_repository']}"
        _require(
            report,
            "signer.source_repository",
            source == policy.source_repository,
            f"source repository {source!r}, required {policy.source_repository!r}",
        )
    if policy.source_ref is not None:
        ref = claims.get("source_repository_ref") or claims.get("github_workflow_ref")
        _require(
            report, "signer.source_ref", ref == policy.source_ref, f"source ref {ref!r}, required {policy.source_ref!r}"
        )
    if policy.builder_id is not None:
        if policy.builder_id.startswith(_RUNNER_BUILDER) and policy.source_repository is None:
            # A runner builder id names every workflow on GitHub's hosted runners, not one builder.
            raise TrustRootInvalid(f"builder id {policy.builder_id!r} needs a source repository (--source) too")
        candidates = [claims.get("build_signer_uri") or identity]
        if issuer == GITHUB_ACTIONS_ISSUER and "runner_environment" in claims:
            candidates.append(f"{_RUNNER_BUILDER}/{claims['runner_environment']}")
        matched = any(_matches_workflow(policy.builder_id, c) for c in candidates)
        _require(
            report,
            "signer.builder_id",
            matched,
            f"builder (from the certificate) {' or '.join(map(repr, candidates))}, required {policy.builder_id!r}",
        )
    if policy.workflow is not None:
        config = claims.get("build_config_uri")
        _require(
            report,
            "signer.workflow",
            _matches_workflow(policy.workflow, config),
            f"build config {config!r}, required {policy.workflow!r}",
        )
