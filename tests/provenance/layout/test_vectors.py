"""The real in-toto layouts of MANIFEST §8a and §8b, verified in scratch copies."""

from __future__ import annotations

import json
import os
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from in_toto.exceptions import SignatureVerificationError
from in_toto.models.metadata import Metadata
from in_toto.verifylib import verify_metadata_signatures
from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

from ccdeploy.errors import LayoutInvalid
from ccdeploy.provenance._layout_keys import golang_keyid, load_owner_keys, python_keyid
from ccdeploy.provenance.layout import LayoutResult, verify_layout

GOLANG_ALICE_KEYID = "70ca5750c2eda80b18f41f4ec5f92146789b5d68dd09577be422a0159bd13680"
RS_EXPIRES = datetime(2022, 12, 2, 18, 41, 7, tzinfo=UTC)
NOW = datetime.now(UTC)  # the acceptance check is "at now"; the golang demo expires 2030-11-18


def _golang(demo: Path, layout: str, at: datetime = NOW) -> LayoutResult:
    return verify_layout(demo / layout, [demo / "alice.pub"], demo, at=at, workdir=demo)


def test_golang_dsse_layout_verifies_now(golang_demo: Path) -> None:
    cwd = os.getcwd()
    result = _golang(golang_demo, "demo.dsse.layout")
    assert os.getcwd() == cwd
    doc = result.to_dict()
    assert doc["verdict"] == "verified" and doc["error"] is None
    assert doc["layout"] == {
        "expires": "2030-11-18T16:06:36Z",
        "steps": ["write-code", "package"],
        "inspections": ["untar"],
        "keyids": [GOLANG_ALICE_KEYID],
    }
    names = [check["name"] for check in doc["checks"]]
    assert names == [
        "layout-signature",
        "expiry",
        "links",
        "link-signatures",
        "command-alignment",
        "threshold-constraints",
        "step-rules",
        "inspection untar",
        "inspection-rules",
    ]
    assert all(check["ok"] for check in doc["checks"])
    json.dumps(doc)
    # the inspection ran in the workdir (it untarred foo.py there), not in the process cwd
    assert (golang_demo / "foo.py").is_file()
    assert not (Path(cwd) / "foo.py").exists() or Path(cwd) == golang_demo


def test_golang_demo_expires_at_its_expiry(golang_demo: Path) -> None:
    expires = datetime(2030, 11, 18, 16, 6, 36, tzinfo=UTC)
    _golang(golang_demo, "demo.dsse.layout", at=expires - timedelta(seconds=1))
    with pytest.raises(LayoutInvalid, match="layout expired"):
        _golang(golang_demo, "demo.dsse.layout", at=expires)  # in-toto: expired when expires <= now


def test_golang_metablock_with_extension_fields(golang_demo: Path) -> None:
    """demo.layout carries in-toto-golang's rootcas/intermediatecas/cert_constraints in its signed body.

    in-toto-python re-serializes the body without them and calls the signature invalid; the signature
    is valid over the object as received, which is what ccdeploy checks. The extension fields only add
    X.509 ways to authorize functionaries, so they are ignored (fail closed) and reported.
    """
    key = load_owner_keys([golang_demo / "alice.pub"])[0].candidates[0]  # rsassa-pss-sha256
    relabelled = {**key.to_dict(), "keyid": GOLANG_ALICE_KEYID}
    with pytest.raises(SignatureVerificationError):
        verify_metadata_signatures(Metadata.load(str(golang_demo / "demo.layout")), {GOLANG_ALICE_KEYID: relabelled})

    doc = _golang(golang_demo, "demo.layout").to_dict()
    assert doc["verdict"] == "verified"
    fields = next(check for check in doc["checks"] if check["name"] == "layout-fields")
    assert "rootcas" in fields["detail"] and "cert_constraints" in fields["detail"]


def test_rs_demo_expired_now(rs_workdir: Path, rs_links: Path) -> None:
    with pytest.raises(LayoutInvalid, match=r"layout expired: it expired at 2022-12-02T18:41:07Z") as caught:
        verify_layout(rs_workdir / "root.layout", [rs_workdir / "alice.pub"], rs_links, at=NOW, workdir=rs_workdir)
    assert caught.value.exit_code == 1
    assert sorted(p.name for p in rs_workdir.iterdir()) == ["alice.pub", "demo-project.tar.gz", "root.layout"]


def test_rs_demo_verifies_before_expiry(rs_workdir: Path, rs_links: Path) -> None:
    at = RS_EXPIRES - timedelta(seconds=1)
    result = verify_layout(rs_workdir / "root.layout", [rs_workdir / "alice.pub"], rs_links, at=at, workdir=rs_workdir)
    assert result.steps == ("clone", "update-version", "package")
    assert result.inspections == ("untar",)
    assert result.keyids == ("556caebdc0877eed53d419b60eddb1e57fa773e4e31d70698b588f3e9cc48b35",)
    assert (rs_workdir / "demo-project" / "foo.py").is_file()
    # links are read in place and nothing is written next to them
    assert sorted(p.name for p in rs_links.iterdir()) == [
        "clone.776a00e2.link",
        "package.2f89b927.link",
        "update-version.776a00e2.link",
    ]


def test_rs_demo_inspection_refuses_extra_files(rs_workdir: Path, rs_links: Path) -> None:
    (rs_workdir / "planted.sh").write_text("echo hi\n")
    at = RS_EXPIRES - timedelta(days=1)
    with pytest.raises(LayoutInvalid, match=r"artifact rule \(inspections\)"):
        verify_layout(rs_workdir / "root.layout", [rs_workdir / "alice.pub"], rs_links, at=at, workdir=rs_workdir)


def test_golang_replaced_tarball_caught_by_inspection_rule(golang_demo: Path) -> None:
    # A well-formed tarball of another foo.py: the links still verify; only the inspection's
    # "MATCH foo.tar.gz WITH PRODUCTS FROM package" rule sees that the file on disk changed.
    evil = golang_demo / "src" / "foo.py"
    evil.parent.mkdir()
    evil.write_text("print('not the reviewed code')\n")
    with tarfile.open(golang_demo / "foo.tar.gz", "w:gz") as archive:
        archive.add(evil, arcname="foo.py")
    with pytest.raises(LayoutInvalid, match=r"artifact rule \(inspections\): RuleVerificationError"):
        _golang(golang_demo, "demo.dsse.layout")


def test_golang_corrupt_tarball_fails_the_inspection(golang_demo: Path) -> None:
    tarball = golang_demo / "foo.tar.gz"
    data = bytearray(tarball.read_bytes())
    data[-1] ^= 0x01  # the gzip trailer: tar exits non-zero
    tarball.write_bytes(bytes(data))
    with pytest.raises(LayoutInvalid, match=r"inspection 'untar': command 'tar' exited with status"):
        _golang(golang_demo, "demo.dsse.layout")


def test_keyid_conventions(vectors: Path) -> None:
    owner = load_owner_keys([vectors / "in-toto-slsa/intoto-golang-demo/alice.pub"])[0]
    pss256 = next(k for k in owner.candidates if k.scheme == "rsassa-pss-sha256")
    assert isinstance(pss256, SSlibKey)
    assert golang_keyid(pss256) == GOLANG_ALICE_KEYID
    assert python_keyid(pss256).startswith("84f7dd43")
    assert python_keyid(pss256) == pss256.keyid
