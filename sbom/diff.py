"""What changed between two CycloneDX BOMs of a model: files, datasets, dependencies, card, references."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sbom.errors import InputInvalid
from sbom.link import reference_kind
from sbom.validate import iter_components, validate_bom

__all__ = ["BomDiff", "FieldChange", "diff_boms"]

_SHORT = 12


@dataclass(frozen=True)
class FieldChange:
    """One value that differs: ``where`` names the component (or "model card"), ``field`` the path in it."""

    where: str
    field: str
    old: str | None
    new: str | None

    def render(self) -> str:
        """One line: ``model.onnx: sha256 abc… -> def…``."""
        return f"{self.where}: {self.field} {_short(self.old)} -> {_short(self.new)}"


def _short(value: str | None) -> str:
    if value is None:
        return "(none)"
    if len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:_SHORT] + "…"
    return value if len(value) <= 80 else value[:79] + "…"


@dataclass(frozen=True)
class BomDiff:
    """The differences between BOM ``a`` (old) and BOM ``b`` (new)."""

    components_added: tuple[str, ...]
    components_removed: tuple[str, ...]
    component_changes: tuple[FieldChange, ...]
    card_changes: tuple[FieldChange, ...]
    dependency_changes: tuple[FieldChange, ...]
    references_added: tuple[str, ...]
    references_removed: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """Whether anything differs."""
        return any(getattr(self, name) for name in self.__dataclass_fields__)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready rendering (``changed`` plus one list per kind of change)."""

        def changes(items: tuple[FieldChange, ...]) -> list[dict[str, str | None]]:
            return [{"where": c.where, "field": c.field, "old": c.old, "new": c.new} for c in items]

        return {
            "changed": self.changed,
            "components_added": list(self.components_added),
            "components_removed": list(self.components_removed),
            "component_changes": changes(self.component_changes),
            "card_changes": changes(self.card_changes),
            "dependency_changes": changes(self.dependency_changes),
            "references_added": list(self.references_added),
            "references_removed": list(self.references_removed),
        }

    def render_text(self) -> str:
        """A readable multi-line report ("no changes" when there are none)."""
        if not self.changed:
            return "no changes"
        lines: list[str] = []
        sections: list[tuple[str, list[str]]] = [
            ("components added", [f"+ {name}" for name in self.components_added]),
            ("components removed", [f"- {name}" for name in self.components_removed]),
            ("components changed", [c.render() for c in self.component_changes]),
            ("dependencies", [c.render() for c in self.dependency_changes]),
            ("model card", [c.render() for c in self.card_changes]),
            ("references added", [f"+ {r}" for r in self.references_added]),
            ("references removed", [f"- {r}" for r in self.references_removed]),
        ]
        for title, entries in sections:
            if entries:
                lines.append(f"{title}:")
                lines.extend(f"  {entry}" for entry in entries)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render_text()


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key in sorted(value):
            yield from _flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, value if isinstance(value, str) else repr(value)


def _compare(where: str, old: Mapping[str, str], new: Mapping[str, str]) -> list[FieldChange]:
    return [
        FieldChange(where, key, old.get(key), new.get(key))
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]


def _label(component: Mapping[str, Any]) -> str:
    version = component.get("version")
    return str(component.get("name", "?")) + (f" {version}" if version else "")


_SKIPPED = ("components", "hashes", "modelCard", "externalReferences", "bom-ref")


def _components(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    # Libraries are keyed by name (their bom-ref is a purl with the version, which is what changes).
    keyed: dict[str, Mapping[str, Any]] = {}
    for component in iter_components(document):
        if component.get("type") == "library":
            key = f"library:{component.get('name')}@{component.get('version')}"
        else:
            key = str(component.get("bom-ref") or f"{component.get('type')}:{component.get('name')}")
        keyed[key] = component
    return keyed


def _hashes(component: Mapping[str, Any]) -> dict[str, str]:
    return {str(h.get("alg", "?")).lower().replace("-", ""): str(h.get("content")) for h in component.get("hashes", [])}


def _references(document: Mapping[str, Any]) -> set[str]:
    found = set()
    owners: list[tuple[str, Mapping[str, Any]]] = [("bom", document)]
    owners += [(str(c.get("bom-ref", c.get("name"))), c) for c in iter_components(document)]
    for owner, item in owners:
        for ref in item.get("externalReferences", []):
            kind = reference_kind(ref) or ref.get("type")
            digests = ",".join(f"{h.get('alg')}:{_short(h.get('content'))}" for h in ref.get("hashes", []))
            found.add(f"{owner}: {kind} {ref.get('url')}" + (f" ({digests})" if digests else ""))
    return found


def _library_versions(components: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    versions: dict[str, list[str]] = {}
    for key, component in components.items():
        if key.startswith("library:"):
            versions.setdefault(str(component.get("name")), []).append(str(component.get("version")))
    return {name: ", ".join(sorted(v)) for name, v in versions.items()}


def diff_boms(a: bytes, b: bytes) -> BomDiff:
    """Compare two CycloneDX BOMs (old ``a``, new ``b``).

    Raises:
        BomInvalid: either document is not a valid BOM.
        InputInvalid: either is SPDX (diff compares CycloneDX documents).
    """
    old_bom, new_bom = validate_bom(a), validate_bom(b)
    if old_bom.format != "cyclonedx" or new_bom.format != "cyclonedx":
        raise InputInvalid("bom diff compares CycloneDX documents; write them with --format cyclonedx")
    old, new = old_bom.document, new_bom.document
    old_components, new_components = _components(old), _components(new)
    plain_old = {k: v for k, v in old_components.items() if not k.startswith("library:")}
    plain_new = {k: v for k, v in new_components.items() if not k.startswith("library:")}
    changes: list[FieldChange] = []
    for key in sorted(plain_old.keys() & plain_new.keys()):
        before, after = plain_old[key], plain_new[key]
        label = _label(after)
        for alg_change in _compare(label, _hashes(before), _hashes(after)):
            changes.append(alg_change)
        fields_old = dict(_flatten({k: v for k, v in before.items() if k not in _SKIPPED}))
        fields_new = dict(_flatten({k: v for k, v in after.items() if k not in _SKIPPED}))
        changes.extend(_compare(label, fields_old, fields_new))
    card_old = dict(_flatten(old.get("metadata", {}).get("component", {}).get("modelCard", {})))
    card_new = dict(_flatten(new.get("metadata", {}).get("component", {}).get("modelCard", {})))
    card_changes = _compare("model card", card_old, card_new)
    card_changes += _compare(
        "formulation", dict(_flatten(old.get("formulation", []))), dict(_flatten(new.get("formulation", [])))
    )
    versions_old, versions_new = _library_versions(old_components), _library_versions(new_components)
    dependency_changes = [
        FieldChange(name, "version", versions_old.get(name), versions_new.get(name))
        for name in sorted(versions_old.keys() | versions_new.keys())
        if versions_old.get(name) != versions_new.get(name)
    ]
    refs_old, refs_new = _references(old), _references(new)
    return BomDiff(
        components_added=tuple(sorted(_label(plain_new[k]) + f" [{k}]" for k in plain_new.keys() - plain_old.keys())),
        components_removed=tuple(sorted(_label(plain_old[k]) + f" [{k}]" for k in plain_old.keys() - plain_new.keys())),
        component_changes=tuple(changes),
        card_changes=tuple(card_changes),
        dependency_changes=tuple(dependency_changes),
        references_added=tuple(sorted(refs_new - refs_old)),
        references_removed=tuple(sorted(refs_old - refs_new)),
    )
