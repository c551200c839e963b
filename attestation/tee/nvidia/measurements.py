"""Comparison of a report's SPDM measurement blocks with the reference values of verified RIMs.

An active RIM measurement at index ``i`` must equal one of its alternatives at SPDM block ``i + 1``; inactive
ones are not compared. The RIM must also describe the firmware the report states (driver or VBIOS version).
Measurement differences are reported before version differences, with every differing index, because they are
what decides: a RIM for another version differs in exactly the measurements that changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from attestation.errors import EvidenceInvalid, ReferenceValueViolation
from attestation.tee.nvidia.rim import Rim, RimKind
from attestation.tee.nvidia.spdm import MeasurementBlock


class MeasurementMismatch(ReferenceValueViolation):
    """Active RIM measurements differ from the report's measurement blocks."""

    check = "measurements"


class RimVersionMismatch(EvidenceInvalid):
    """A RIM describes another driver or VBIOS version than the report states."""

    check = "rim-version"


class DuplicateRim(EvidenceInvalid):
    """Two RIMs of the same kind were given, so which one applies is ambiguous."""

    check = "rim"


@dataclass(frozen=True, slots=True)
class Comparison:
    """One RIM compared with a report.

    Attributes:
        rim: The RIM.
        compared: How many active measurements were compared.
        differing: RIM indices (0-based) whose SPDM block matched none of the alternatives (or is missing).
        reported_version: The version the report states for this RIM's kind, or ``None``.
    """

    rim: Rim
    compared: int
    differing: tuple[int, ...]
    reported_version: str | None

    @property
    def matched(self) -> int:
        """How many active measurements matched."""
        return self.compared - len(self.differing)

    @property
    def version_matches(self) -> bool:
        """Whether the RIM's version is the one the report states (case-insensitive, as NVIDIA compares)."""
        return self.reported_version is not None and self.reported_version.lower() == self.rim.version.lower()

    def summary(self) -> dict[str, str | int]:
        """The claims' view: ``{"id", "version", "compared", "matched"}``."""
        return {"id": self.rim.tag_id, "version": self.rim.version, "compared": self.compared, "matched": self.matched}

    def describe(self) -> str:
        """E.g. ``driver RIM 545.00: 15 of 21 active measurements differ (indices 3, 4, ...)``."""
        indices = ", ".join(str(index) for index in self.differing)
        return (
            f"{self.rim.kind.label} RIM {self.rim.version}: {len(self.differing)} of {self.compared} active "
            f"measurements differ (RIM indices {indices}; SPDM blocks are index + 1)"
        )


def compare(rim: Rim, blocks: Mapping[int, MeasurementBlock], reported_version: str | None) -> Comparison:
    """Compare every active measurement of ``rim`` with the report's blocks."""
    compared = 0
    differing: list[int] = []
    for index, measurement in rim.measurements.items():
        if not measurement.active:
            continue
        compared += 1
        block = blocks.get(index + 1)
        if block is None or block.value not in measurement.alternatives:
            differing.append(index)
    return Comparison(rim=rim, compared=compared, differing=tuple(differing), reported_version=reported_version)


def _version_problem(comparison: Comparison) -> str:
    reported = comparison.reported_version or "no version"
    return f"the {comparison.rim.kind.label} RIM is for {comparison.rim.version}, the report states {reported}"


def check_comparisons(comparisons: Sequence[Comparison]) -> None:
    """Raise if any comparison failed.

    :class:`MeasurementMismatch` names every differing RIM (and any version difference besides); otherwise
    :class:`RimVersionMismatch` is raised if a RIM is for another version.
    """
    empty = [c for c in comparisons if c.compared == 0]
    if empty:
        # A RIM that pins nothing would let any firmware pass as "every measurement matches".
        kinds = ", ".join(f"{c.rim.kind.label} RIM {c.rim.version}" for c in empty)
        raise MeasurementMismatch(f"{kinds}: no active measurement to compare, so it vouches for nothing")
    mismatched = [c for c in comparisons if c.differing]
    wrong_version = [c for c in comparisons if not c.version_matches]
    if mismatched:
        message = "; ".join(c.describe() for c in mismatched)
        if wrong_version:
            message += "; besides, " + "; ".join(_version_problem(c) for c in wrong_version)
        raise MeasurementMismatch(message)
    if wrong_version:
        raise RimVersionMismatch("; ".join(_version_problem(c) for c in wrong_version))


def rims_by_kind(rims: Sequence[Rim]) -> dict[RimKind, Rim]:
    """At most one RIM per kind; a second of the same kind is refused as ambiguous."""
    found: dict[RimKind, Rim] = {}
    for rim in rims:
        if rim.kind in found:
            raise DuplicateRim(f"two {rim.kind.label} RIMs were given ({found[rim.kind].version}, {rim.version})")
        found[rim.kind] = rim
    return found
