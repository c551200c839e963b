"""Parsing hash-pinned requirements locks into the runtime's dependency set."""

from __future__ import annotations

import pytest

from sbom import InputInvalid, lock_dependencies
from tests.sbom.conftest import REPO


def test_project_lock() -> None:
    text = (REPO / "requirements" / "dev.lock").read_text()
    dependencies = lock_dependencies(text)
    by_purl = {d.purl: d for d in dependencies}
    names = {d.name for d in dependencies}
    pinned = [
        line.split("==")[0].split("[")[0] for line in text.splitlines() if "==" in line and not line.startswith(" ")
    ]
    assert len(dependencies) == len(pinned)
    assert {"cryptography", "cyclonedx-python-lib", "spdx-python-model", "pydantic"} <= names
    assert all(d.hashes and all(len(h) == 64 for h in d.hashes) for d in dependencies)
    numpy = [d for d in dependencies if d.name == "numpy"]
    assert len(numpy) == 2 and all(d.marker for d in numpy)
    assert by_purl["pkg:pypi/sigstore@4.5.1"].version == "4.5.1"


def test_lines_comments_extras_and_normalisation() -> None:
    text = (
        "# header\n--index-url https://pypi.org/simple\n"
        "Foo_Bar[extra]==1.0 \\\n    --hash=sha256:" + "A" * 64 + " \\\n    --hash=sha256:" + "b" * 64 + "\n"
        "    # via x\nbaz==2 ; python_version < '3.12'\n"
    )
    baz, foo = lock_dependencies(text)
    assert (foo.purl, foo.hashes) == ("pkg:pypi/foo-bar@1.0", ("a" * 64, "b" * 64))
    assert (baz.purl, baz.marker, baz.hashes) == ("pkg:pypi/baz@2", "python_version < '3.12'", ())


@pytest.mark.parametrize(
    "text",
    [
        "foo>=1.0\n",
        "-e ./local\n",
        "foo==1.0 \\\n    --hash=md5:" + "a" * 32 + "\n",
        "foo==1.0 \\\n    --hash=sha256:abc\n",
        "foo==1.0\nFoo==1.0\n",
        "https://example.com/foo.whl\n",
    ],
)
def test_bad_locks_are_refused(text: str) -> None:
    with pytest.raises(InputInvalid):
        lock_dependencies(text)
