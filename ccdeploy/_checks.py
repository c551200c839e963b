"""One named check of a verification or a decision, as ``--json`` documents and receipts report it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Check"]


@dataclass(frozen=True)
class Check:
    """One check that ran: its name, whether it held, and a short detail (never key material)."""

    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{name, ok, detail}``."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}
