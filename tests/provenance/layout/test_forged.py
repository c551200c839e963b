"""Forged negatives: wrong or non-owner keys, tampered links and layouts, files changed after their link."""

from __future__ import annotations

import base64
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from in_toto.runlib import in_toto_run

from ccdeploy.errors import CouldNotCheck, LayoutInvalid, TrustRootInvalid, UsageError
from ccdeploy.provenance.layout import verify_layout
from tests.provenance.layout._build import AT, Party, inspection, party, step, write_layout

NOW = datetime.now(UTC)
pytestmark = pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning")  # in-toto's in_toto_run


def _golang(demo: Path, keys: list[Path], layout: str = "demo.dsse.layout") -> None:
    verify_layout(demo / layout, keys, demo, at=NOW, workdir=demo)


def test_wrong_layout_key(golang_demo: Path, vectors: Path) -> None:
    other_alice = vectors / "in-toto-slsa/intoto-rs-demo/alice.pub"  # RSA too, a different key
    with pytest.raises(LayoutInvalid, match=r"layout signature: .* owner key alice.pub") as caught:
        _golang(golang_demo, [other_alice])
    assert caught.value.exit_code == 1


def test_every_owner_key_must_have_signed(golang_demo: Path, tmp_path: Path) -> None:
    stranger = party(tmp_path, "stranger", "ed25519")
    with pytest.raises(LayoutInvalid, match=r"layout signature: .* stranger.pub"):
        _golang(golang_demo, [golang_demo / "alice.pub", stranger.pem])


def test_tampered_dsse_layout_payload(golang_demo: Path) -> None:
    path = golang_demo / "demo.dsse.layout"
    envelope = json.loads(path.read_text())
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["expires"] = "2099-11-18T16:06:36Z"
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    path.write_text(json.dumps(envelope))
    with pytest.raises(LayoutInvalid, match="layout signature"):
        _golang(golang_demo, [golang_demo / "alice.pub"])


def test_tampered_metablock_layout_body(golang_demo: Path) -> None:
    path = golang_demo / "demo.layout"
    metablock = json.loads(path.read_text())
    metablock["signed"]["inspect"][0]["run"] = ["true"]
    path.write_text(json.dumps(metablock))
    with pytest.raises(LayoutInvalid, match=r"layout signature: .* metablock"):
        _golang(golang_demo, [golang_demo / "alice.pub"], "demo.layout")


def test_tampered_link(golang_demo: Path) -> None:
    path = golang_demo / "package.d3ffd108.link"
    link = json.loads(path.read_text())
    if "payload" in link:  # DSSE link
        body = json.loads(base64.b64decode(link["payload"]))
        body["products"]["foo.tar.gz"]["sha256"] = "0" * 64
        link["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    else:
        link["signed"]["products"]["foo.tar.gz"]["sha256"] = "0" * 64
    path.write_text(json.dumps(link))
    with pytest.raises(LayoutInvalid, match="link signature threshold: ThresholdVerificationError"):
        _golang(golang_demo, [golang_demo / "alice.pub"])


def test_missing_link(golang_demo: Path) -> None:
    (golang_demo / "write-code.b7d643de.link").unlink()
    with pytest.raises(LayoutInvalid, match="links: LinkNotFoundError"):
        _golang(golang_demo, [golang_demo / "alice.pub"])


def test_garbage_link(golang_demo: Path) -> None:
    (golang_demo / "write-code.b7d643de.link").write_text("{not json")
    with pytest.raises(LayoutInvalid, match="links: "):
        _golang(golang_demo, [golang_demo / "alice.pub"])


# --- layouts built here -------------------------------------------------------------------------------


def _build_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Party, Party, Path, Path]:
    """A one-step chain: 'build' writes out.txt from in.txt; inspection 'check' re-checks out.txt on disk."""
    owner, builder = party(tmp_path, "owner"), party(tmp_path, "builder", "ed25519")
    work, links = tmp_path / "work", tmp_path / "links"
    work.mkdir()
    links.mkdir()
    (work / "in.txt").write_text("input\n")
    monkeypatch.chdir(work)  # in_toto_run runs its command in the process cwd
    copy = [sys.executable, "-c", "import shutil; shutil.copy('in.txt', 'out.txt')"]
    in_toto_run(
        "build", ["in.txt"], ["out.txt"], copy, signer=builder.signer, use_dsse=True, metadata_directory=str(links)
    )
    monkeypatch.chdir(tmp_path)
    build = step(
        "build",
        [builder],
        expected_command=copy,
        expected_materials=[["ALLOW", "in.txt"], ["DISALLOW", "*"]],
        expected_products=[["CREATE", "out.txt"], ["DISALLOW", "*"]],
    )
    check = inspection(
        "check",
        [sys.executable, "-c", "pass"],
        expected_materials=[
            ["MATCH", "out.txt", "WITH", "PRODUCTS", "FROM", "build"],
            ["MATCH", "in.txt", "WITH", "MATERIALS", "FROM", "build"],
            ["DISALLOW", "*"],
        ],
    )
    write_layout(tmp_path / "root.layout", [owner], [build], [check], [builder])
    return owner, builder, work, links


def test_built_chain_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    owner, _, work, links = _build_chain(tmp_path, monkeypatch)
    result = verify_layout(tmp_path / "root.layout", [owner.pem], links, at=AT, workdir=work)
    assert result.keyids == (owner.keyid,)
    assert result.inspections == ("check",)


def test_product_tampered_after_link_caught_by_inspection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    owner, _, work, links = _build_chain(tmp_path, monkeypatch)
    (work / "out.txt").write_text("swapped after the link was signed\n")
    with pytest.raises(LayoutInvalid, match=r"artifact rule \(inspections\): RuleVerificationError"):
        verify_layout(tmp_path / "root.layout", [owner.pem], links, at=AT, workdir=work)


def test_layout_signed_by_non_owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    owner, builder, work, links = _build_chain(tmp_path, monkeypatch)
    mallory = party(tmp_path, "mallory")
    forged = tmp_path / "forged.layout"
    write_layout(forged, [mallory], [step("build", [builder])], [], [builder])
    with pytest.raises(LayoutInvalid, match=r"layout signature: .* owner key owner\.pub"):
        verify_layout(forged, [owner.pem], links, at=AT, workdir=work)
    # the functionary's key cannot stand in for the owner's either
    with pytest.raises(LayoutInvalid, match="layout signature"):
        verify_layout(tmp_path / "root.layout", [builder.pem], links, at=AT, workdir=work)


def test_link_by_unauthorized_functionary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    owner, builder, work, links = _build_chain(tmp_path, monkeypatch)
    imposter = party(tmp_path, "imposter", "ed25519")
    write_layout(tmp_path / "root.layout", [owner], [step("build", [imposter])], [], [imposter])
    # the only link is builder's, named by builder's keyid: for imposter's keyid there is none
    with pytest.raises(LayoutInvalid, match="links: LinkNotFoundError"):
        verify_layout(tmp_path / "root.layout", [owner.pem], links, at=AT, workdir=work)
    # a link file renamed to the authorized keyid still carries builder's signature
    (links / f"build.{builder.keyid[:8]}.link").rename(links / f"build.{imposter.keyid[:8]}.link")
    with pytest.raises(LayoutInvalid, match="link signature threshold"):
        verify_layout(tmp_path / "root.layout", [owner.pem], links, at=AT, workdir=work)


def test_failing_inspection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    owner, builder, work, links = _build_chain(tmp_path, monkeypatch)
    fail = inspection("fail", [sys.executable, "-c", "raise SystemExit(3)"])
    write_layout(tmp_path / "root.layout", [owner], [step("build", [builder])], [fail], [builder])
    with pytest.raises(LayoutInvalid, match=r"inspection 'fail': command .* exited with status 3"):
        verify_layout(tmp_path / "root.layout", [owner.pem], links, at=AT, workdir=work)


def test_inspection_command_missing_is_could_not_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    owner, builder, work, links = _build_chain(tmp_path, monkeypatch)
    gone = inspection("gone", [str(tmp_path / "no-such-program")])
    write_layout(tmp_path / "root.layout", [owner], [step("build", [builder])], [gone], [builder])
    with pytest.raises(CouldNotCheck, match="inspection 'gone': cannot run"):
        verify_layout(tmp_path / "root.layout", [owner.pem], links, at=AT, workdir=work)


def test_inspection_runs_in_workdir_not_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    owner, builder, work, links = _build_chain(tmp_path, monkeypatch)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    mark = inspection("mark", [sys.executable, "-c", "open('marker', 'w').close()"])
    write_layout(tmp_path / "root.layout", [owner], [step("build", [builder])], [mark], [builder])
    verify_layout(tmp_path / "root.layout", [owner.pem], links, at=AT, workdir=work)
    assert (work / "marker").exists()
    assert not (elsewhere / "marker").exists()
    assert os.getcwd() == str(elsewhere)
    assert not list(elsewhere.iterdir())  # and no inspection link was persisted there


def test_unknown_signed_field_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    owner, builder, work, links = _build_chain(tmp_path, monkeypatch)
    path = write_layout(
        tmp_path / "odd.layout", [owner], [step("build", [builder])], [], [builder], dsse=False, extra={"policy": "x"}
    )
    with pytest.raises(LayoutInvalid, match=r"unsupported layout fields \['policy'\]"):
        verify_layout(path, [owner.pem], links, at=AT, workdir=work)


def test_metablock_with_several_owners(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    owner, builder, work, links = _build_chain(tmp_path, monkeypatch)
    second = party(tmp_path, "second", "rsa")
    path = write_layout(tmp_path / "two.layout", [owner, second], [step("build", [builder])], [], [builder], dsse=False)
    result = verify_layout(path, [owner.pem, second.pem], links, at=AT, workdir=work)
    assert set(result.keyids) == {owner.keyid, second.keyid}


# --- usage errors ---------------------------------------------------------------------------------------


def test_naive_time_is_refused(golang_demo: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_layout(
            golang_demo / "demo.dsse.layout",
            [golang_demo / "alice.pub"],
            golang_demo,
            at=datetime(2026, 1, 1),
            workdir=golang_demo,
        )


@pytest.mark.parametrize(
    "content", [b"", b"not a key", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"]
)
def test_unreadable_key(golang_demo: Path, tmp_path: Path, content: bytes) -> None:
    key = tmp_path / "bad.pub"
    key.write_bytes(content)
    with pytest.raises(TrustRootInvalid) as caught:
        _golang(golang_demo, [key])
    assert caught.value.exit_code == 2


def test_missing_and_no_keys(golang_demo: Path, tmp_path: Path) -> None:
    with pytest.raises(TrustRootInvalid, match="cannot read"):
        _golang(golang_demo, [tmp_path / "absent.pub"])
    with pytest.raises(TrustRootInvalid, match="at least one"):
        _golang(golang_demo, [])


@pytest.mark.parametrize("content", ["", "[]", "{}", '{"payload": "", "payloadType": "text/plain", "signatures": []}'])
def test_not_a_layout(golang_demo: Path, content: str) -> None:
    (golang_demo / "bogus.layout").write_text(content)
    with pytest.raises(UsageError) as caught:
        _golang(golang_demo, [golang_demo / "alice.pub"], "bogus.layout")
    assert caught.value.exit_code == 2


def test_workdir_must_be_a_directory(golang_demo: Path) -> None:
    with pytest.raises(UsageError, match="workdir"):
        verify_layout(
            golang_demo / "demo.dsse.layout",
            [golang_demo / "alice.pub"],
            golang_demo,
            at=NOW,
            workdir=golang_demo / "foo.tar.gz",
        )


def test_sublayout_verified_with_injected_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    owner, builder, work, links = _build_chain(tmp_path, monkeypatch)
    delegate = party(tmp_path, "delegate")
    sub_dir = links / f"sub.{delegate.keyid[:8]}"
    sub_dir.mkdir()
    (links / f"build.{builder.keyid[:8]}.link").rename(sub_dir / f"build.{builder.keyid[:8]}.link")
    sub_steps = [step("build", [builder], expected_products=[["CREATE", "out.txt"], ["DISALLOW", "*"]])]
    sub_link = links / f"sub.{delegate.keyid[:8]}.link"
    write_layout(sub_link, [delegate], sub_steps, [], [builder], expires="2026-06-01T00:00:00Z")
    top = step("sub", [delegate], expected_products=[["ALLOW", "out.txt"], ["DISALLOW", "*"]])
    write_layout(tmp_path / "root.layout", [owner], [top], [], [delegate])

    result = verify_layout(tmp_path / "root.layout", [owner.pem], links, at=AT, workdir=work)
    assert "sublayout sub: layout-signature" in [check.name for check in result.checks]
    late = datetime(2026, 6, 1, tzinfo=UTC)  # the top layout is still valid, the sublayout is not
    with pytest.raises(LayoutInvalid, match="sublayout sub: layout expired"):
        verify_layout(tmp_path / "root.layout", [owner.pem], links, at=late, workdir=work)
