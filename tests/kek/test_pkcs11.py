"""The ``pkcs11:`` KEK backend, against a real SoftHSM2 token, and its RFC 7512 URI parser."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding, aes_key_wrap_with_padding
from hypothesis import given, settings
from hypothesis import strategies as st

from ccdeploy.errors import KekError, KekUnavailable, WrongKek
from ccdeploy.kek.base import WrappedKey, kek_from_uri
from tests.softhsm import SoftHsm

pkcs11 = pytest.importorskip("pkcs11", reason="python-pkcs11 is not installed (pip install ccdeploy[pkcs11])")

from ccdeploy.kek import pkcs11 as backend  # noqa: E402
from ccdeploy.kek.pkcs11 import Pkcs11Kek, create_pkcs11_kek, parse_pkcs11_uri  # noqa: E402

Attribute = pkcs11.Attribute
ObjectClass = pkcs11.ObjectClass
KeyType = pkcs11.KeyType


@contextmanager
def token_session(hsm: SoftHsm) -> Iterator[Any]:
    token = pkcs11.lib(str(hsm.module)).get_token(token_label=hsm.label)
    with token.open(rw=True, user_pin=hsm.pin) as session:
        yield session


def import_aes_key(hsm: SoftHsm, value: bytes, *, extractable: bool) -> str:
    """Put an AES key with a known value on the token; return its URI (by label only)."""
    label = f"known-{uuid.uuid4().hex[:12]}"
    with token_session(hsm) as session:
        session.create_object(
            {
                Attribute.CLASS: ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: KeyType.AES,
                Attribute.VALUE: value,
                Attribute.LABEL: label,
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: not extractable,
                Attribute.EXTRACTABLE: extractable,
                Attribute.WRAP: True,
                Attribute.UNWRAP: True,
            }
        )
    return hsm.uri(object=label)


# --- against the token -------------------------------------------------------------------------


def test_round_trip(pkcs11_kek_uri: str) -> None:
    kek = Pkcs11Kek.from_uri(pkcs11_kek_uri)
    dek = os.urandom(32)
    wrapped = kek.wrap(dek, {"artifact": "model.onnx"})
    assert wrapped.algorithm == "AES-KWP"
    assert len(wrapped.blob) == 40
    assert wrapped.kek == kek.uri
    assert wrapped.key_id == kek.key_id
    assert wrapped.context == {"artifact": "model.onnx"}
    assert kek.matches(wrapped)
    assert kek.unwrap(wrapped) == dek
    # A second handle on the same key (a new process, say) unwraps it too.
    assert Pkcs11Kek.from_uri(pkcs11_kek_uri).unwrap(wrapped) == dek


def test_key_id_is_serial_and_cka_id(softhsm: SoftHsm, pkcs11_kek_uri: str) -> None:
    kek = Pkcs11Kek.from_uri(pkcs11_kek_uri)
    token = pkcs11.lib(str(softhsm.module)).get_token(token_label=softhsm.label)
    serial = token.serial.decode().strip()
    cka_id = parse_pkcs11_uri(pkcs11_kek_uri).id
    assert cka_id
    assert kek.key_id == f"{serial}:id={cka_id.hex()}"
    # Found by id alone or by label alone, it is the same key id.
    label = parse_pkcs11_uri(pkcs11_kek_uri).text("object")
    assert Pkcs11Kek.from_uri(softhsm.uri(object=str(label))).key_id == kek.key_id


def test_key_id_falls_back_to_label(softhsm: SoftHsm) -> None:
    label = f"noid-{uuid.uuid4().hex[:8]}"
    create_pkcs11_kek(softhsm.uri(object=label))
    assert Pkcs11Kek.from_uri(softhsm.uri(object=label)).key_id.endswith(f":label={label}")


@pytest.mark.parametrize("size", [8, 16, 24, 32, 40, 64])
def test_token_wrap_is_rfc5649_byte_for_byte(softhsm: SoftHsm, size: int) -> None:
    known = os.urandom(32)
    kek = Pkcs11Kek.from_uri(import_aes_key(softhsm, known, extractable=False))
    dek = os.urandom(size)
    # Token -> software.
    wrapped = kek.wrap(dek, {})
    assert wrapped.blob == aes_key_wrap_with_padding(known, dek)
    assert aes_key_unwrap_with_padding(known, wrapped.blob) == dek
    # Software -> token.
    software = WrappedKey(kek.uri, kek.key_id, "AES-KWP", aes_key_wrap_with_padding(known, dek))
    assert kek.unwrap(software) == dek


@pytest.mark.parametrize("size", [0, 1, 7, 31, 33])
def test_dek_length_must_be_a_multiple_of_8(pkcs11_kek_uri: str, size: int) -> None:
    # SoftHSM 2.6 zero-pads such keys before RFC 5649, which breaks interop; refuse them.
    with pytest.raises(KekError, match="multiple of 8"):
        Pkcs11Kek.from_uri(pkcs11_kek_uri).wrap(os.urandom(size), {})


def test_kek_is_not_extractable(softhsm: SoftHsm, pkcs11_kek_uri: str) -> None:
    label = parse_pkcs11_uri(pkcs11_kek_uri).text("object")
    with token_session(softhsm) as session:
        key = session.get_key(ObjectClass.SECRET_KEY, KeyType.AES, label=label)
        assert key.key_length == 256
        assert key[Attribute.TOKEN] is True
        assert key[Attribute.EXTRACTABLE] is False
        assert key[Attribute.SENSITIVE] is True
        assert key[Attribute.WRAP] is True
        assert key[Attribute.UNWRAP] is True
        assert key[Attribute.ENCRYPT] is False
        assert key[Attribute.DECRYPT] is False
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[Attribute.VALUE]


def test_extractable_key_is_refused(softhsm: SoftHsm) -> None:
    uri = import_aes_key(softhsm, os.urandom(32), extractable=True)
    with pytest.raises(KekError, match="extractable"):
        Pkcs11Kek.from_uri(uri)


def test_public_uri_has_no_pin(softhsm: SoftHsm, pkcs11_kek_uri: str, tmp_path: Path) -> None:
    kek = Pkcs11Kek.from_uri(pkcs11_kek_uri)
    assert "pin" not in kek.uri
    assert softhsm.pin not in kek.uri.partition("?")[2]
    assert kek.uri == pkcs11_kek_uri.replace(f"&pin-value={softhsm.pin}", "")
    assert "pin" not in kek.wrap(os.urandom(32), {}).kek
    assert softhsm.pin not in repr(kek)
    pin_file = tmp_path / "pin"
    pin_file.write_text(softhsm.pin + "\n")
    by_file = pkcs11_kek_uri.replace(f"pin-value={softhsm.pin}", f"pin-source=file:{pin_file}&x-vendor=1")
    kek2 = Pkcs11Kek.from_uri(by_file)
    assert kek2.uri == kek.uri + "&x-vendor=1"
    assert kek2.key_id == kek.key_id


def test_pin_from_environment(softhsm: SoftHsm, pkcs11_kek_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCDEPLOY_PKCS11_PIN", softhsm.pin)
    no_pin = pkcs11_kek_uri.replace(f"&pin-value={softhsm.pin}", "")
    kek = Pkcs11Kek.from_uri(no_pin)
    assert kek.unwrap(kek.wrap(b"k" * 32, {})) == b"k" * 32


def test_no_pin_hides_private_keys(softhsm: SoftHsm, pkcs11_kek_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CCDEPLOY_PKCS11_PIN", raising=False)
    with pytest.raises(KekError, match="no PIN given"):
        Pkcs11Kek.from_uri(pkcs11_kek_uri.replace(f"&pin-value={softhsm.pin}", ""))


def test_module_from_environment(softhsm: SoftHsm, pkcs11_kek_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = pkcs11_kek_uri.replace(f"module-path={softhsm.module}&", "")
    assert "module-path" not in uri
    monkeypatch.delenv("PKCS11_MODULE", raising=False)
    with pytest.raises(KekError, match="PKCS11_MODULE"):
        Pkcs11Kek.from_uri(uri)
    monkeypatch.setenv("PKCS11_MODULE", str(softhsm.module))
    assert Pkcs11Kek.from_uri(uri).key_id == Pkcs11Kek.from_uri(pkcs11_kek_uri).key_id


def test_wrong_pin(softhsm: SoftHsm, pkcs11_kek_uri: str, tmp_path: Path) -> None:
    secret = "Wr0ngPin-8812"
    with pytest.raises(KekError, match="rejected the user PIN") as info:
        Pkcs11Kek.from_uri(pkcs11_kek_uri.replace(f"pin-value={softhsm.pin}", f"pin-value={secret}"))
    assert secret not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    pin_file = tmp_path / "pin"
    pin_file.write_text(secret)
    with pytest.raises(KekError) as info:
        Pkcs11Kek.from_uri(pkcs11_kek_uri.replace(f"pin-value={softhsm.pin}", f"pin-source={pin_file}"))
    assert secret not in str(info.value)


def test_refuses_to_share_another_login(softhsm: SoftHsm, pkcs11_kek_uri: str) -> None:
    with token_session(softhsm), pytest.raises(KekUnavailable, match="already logged in"):
        Pkcs11Kek.from_uri(pkcs11_kek_uri)
    Pkcs11Kek.from_uri(pkcs11_kek_uri)  # once that session is closed, fine


def test_missing_object(softhsm: SoftHsm) -> None:
    with pytest.raises(KekError, match="no secret key"):
        Pkcs11Kek.from_uri(softhsm.uri(object="no-such-key"))
    with pytest.raises(KekError, match="no secret key"):
        Pkcs11Kek.from_uri(softhsm.uri(id="%ff%ee%dd"))
    with pytest.raises(KekError, match="names no key"):
        Pkcs11Kek.from_uri(softhsm.uri())


def test_missing_token_and_module(softhsm: SoftHsm, tmp_path: Path) -> None:
    with pytest.raises(KekUnavailable, match="no initialised PKCS#11 token"):
        Pkcs11Kek.from_uri(softhsm.uri(object="kek").replace("token=ccdeploy-test", "token=absent"))
    missing = str(tmp_path / "libnope.so")
    with pytest.raises(KekUnavailable, match="does not exist"):
        Pkcs11Kek.from_uri(softhsm.uri(object="kek").replace(str(softhsm.module), missing))
    not_a_module = tmp_path / "libjunk.so"
    not_a_module.write_bytes(b"not an ELF file")
    with pytest.raises(KekUnavailable, match="cannot load"):
        Pkcs11Kek.from_uri(softhsm.uri(object="kek").replace(str(softhsm.module), str(not_a_module)))


def test_token_without_kwp(pkcs11_kek_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "_supports_kwp", lambda token: False)
    with pytest.raises(KekUnavailable, match="CKM_AES_KEY_WRAP_PAD"):
        Pkcs11Kek.from_uri(pkcs11_kek_uri)


def test_tampered_and_foreign_blobs(softhsm: SoftHsm, pkcs11_kek_uri: str) -> None:
    kek = Pkcs11Kek.from_uri(pkcs11_kek_uri)
    wrapped = kek.wrap(os.urandom(32), {})
    flipped = bytearray(wrapped.blob)
    flipped[7] ^= 0x01
    other = Pkcs11Kek.from_uri(import_aes_key(softhsm, os.urandom(32), extractable=False))
    for bad in (
        WrappedKey(kek.uri, kek.key_id, "AES-KWP", bytes(flipped)),
        WrappedKey(kek.uri, kek.key_id, "AES-KWP", wrapped.blob[:-8]),
        WrappedKey(kek.uri, kek.key_id, "AES-KWP", b""),
        WrappedKey(kek.uri, kek.key_id, "AES-KW", wrapped.blob),
        other.wrap(os.urandom(32), {}),
    ):
        with pytest.raises(WrongKek):
            kek.unwrap(bad)
    assert not kek.matches(other.wrap(os.urandom(32), {}))


def test_create_refuses_an_existing_label(pkcs11_kek_uri: str) -> None:
    with pytest.raises(KekError, match="already exists"):
        create_pkcs11_kek(pkcs11_kek_uri)


def test_create_returns_public_uri(softhsm: SoftHsm) -> None:
    uri = softhsm.uri(object=f"new-{uuid.uuid4().hex[:8]}", type="secret-key")
    public = create_pkcs11_kek(uri)
    assert public == uri.replace(f"&pin-value={softhsm.pin}", "")


def test_registry_opens_pkcs11_uris(pkcs11_kek_uri: str) -> None:
    kek = kek_from_uri(pkcs11_kek_uri)
    assert isinstance(kek, Pkcs11Kek)
    assert kek.scheme == "pkcs11"
    assert kek.unwrap(kek.wrap(b"\x00" * 32, {})) == b"\x00" * 32


# --- the URI parser (no token needed) ----------------------------------------------------------


def test_parse_full_uri() -> None:
    uri = parse_pkcs11_uri(
        "pkcs11:token=My%20Token;object=kek;id=%01%02%ff;type=secret-key;serial=abc;x-vendor=v"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=12%2634&x-q=1&x-q=2"
    )
    assert uri.text("token") == "My Token"
    assert uri.text("object") == "kek"
    assert uri.id == b"\x01\x02\xff"
    assert uri.text("type") == "secret-key"
    assert uri.path["x-vendor"] == b"v"
    assert uri.text("module-path") == "/usr/lib/softhsm/libsofthsm2.so"
    assert uri.text("pin-value") == "12&34"
    assert uri.public == (
        "pkcs11:token=My%20Token;object=kek;id=%01%02%ff;type=secret-key;serial=abc;x-vendor=v"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&x-q=1&x-q=2"
    )


def test_parse_minimal_and_case() -> None:
    assert parse_pkcs11_uri("pkcs11:").path == {}
    assert parse_pkcs11_uri("PKCS11:Object=k").text("object") == "k"
    assert parse_pkcs11_uri("pkcs11:object=k?pin-value=1").public == "pkcs11:object=k"
    assert parse_pkcs11_uri("pkcs11:object=k?pin-source=file:/p").public == "pkcs11:object=k"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("file:/x", "not a pkcs11: URI"),
        ("pkcs11:object", "no '='"),
        ("pkcs11:=x", "malformed name"),
        ("pkcs11:object=a;;id=%01", "no '='"),
        ("pkcs11:object=a;object=b", "more than once"),
        ("pkcs11:object=a?module-path=/a&module-path=/b", "more than once"),
        ("pkcs11:object=a b", "percent-encoded"),
        ("pkcs11:object=a/b", "percent-encoded"),
        ("pkcs11:id=%0", "malformed percent"),
        ("pkcs11:id=%zz", "malformed percent"),
        ("pkcs11:object=k#frag", "fragment"),
        ("pkcs11:object=%ff%fe", "UTF-8"),
        ("pkcs11:type=banana", "type must be"),
        ("pkcs11:slot-id=x1", "slot-id"),
        ("pkcs11:library-version=1.x", "library-version"),
        ("pkcs11:object=k;pin-value=1234", "belongs in the query"),
        ("pkcs11:object=k?token=t", "belongs in the path"),
    ],
)
def test_parse_rejects(uri: str, message: str) -> None:
    with pytest.raises(KekError, match=message):
        parse_pkcs11_uri(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "pkcs11:object=k?pin-value=S3cr3t PIN!",
        "pkcs11:object=k?pin-value=S3cr3t%zz",
        "pkcs11:object=k?pin-value=S3cr3t%ff",
        "pkcs11:object=k?pin-value=1&pin-value=S3cr3t",
        "pkcs11:object=k;pin-value=S3cr3t",
        "pkcs11:object=k;S3cr3t",
        "pkcs11:object=k?S3cr3t",
        "pkcs11:object=k?pin-value=S3cr3t#x",
    ],
)
def test_parse_errors_never_echo_values(uri: str) -> None:
    with pytest.raises(KekError) as info:
        parse_pkcs11_uri(uri)
    assert "S3cr3t" not in str(info.value)


def test_pin_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCDEPLOY_PKCS11_PIN", "from-env")
    pin_file = tmp_path / "pin"
    pin_file.write_bytes(b"from-file\r\n")
    read = backend._read_pin
    assert read(parse_pkcs11_uri("pkcs11:?pin-value=v")) == "v"
    assert read(parse_pkcs11_uri(f"pkcs11:?pin-source=file:{pin_file}")) == "from-file"
    assert read(parse_pkcs11_uri(f"pkcs11:?pin-source=file://{pin_file}")) == "from-file"
    assert read(parse_pkcs11_uri(f"pkcs11:?pin-source={pin_file}")) == "from-file"
    assert read(parse_pkcs11_uri("pkcs11:")) == "from-env"
    with pytest.raises(KekError, match="both"):
        read(parse_pkcs11_uri(f"pkcs11:?pin-value=v&pin-source={pin_file}"))
    with pytest.raises(KekError, match="cannot read"):
        read(parse_pkcs11_uri(f"pkcs11:?pin-source={tmp_path / 'absent'}"))
    with pytest.raises(KekError, match="absolute path"):
        read(parse_pkcs11_uri("pkcs11:?pin-source=|/bin/echo"))
    with pytest.raises(KekError, match="remote host"):
        read(parse_pkcs11_uri("pkcs11:?pin-source=file://host/pin"))


_NAMES = ["token", "object", "id", "type", "serial", "pin-value", "x-a", "", "slot-id", "TOKEN"]
_URI_CHARS = "pkcs11:;?&=%#/|0123456789abcdefABCDEF-_.~ \x00éobjectidtokenpin-value"


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.text(alphabet=_URI_CHARS).map(lambda s: "pkcs11:" + s),
        st.lists(
            st.tuples(
                st.sampled_from(_NAMES),
                st.text(alphabet=_URI_CHARS, max_size=8),
            ),
            max_size=5,
        ).map(lambda attrs: "pkcs11:" + ";".join(f"{n}={v}" for n, v in attrs)),
    )
)
def test_parse_arbitrary_text_returns_or_raises_kek_error(text: str) -> None:
    try:
        uri = parse_pkcs11_uri(text)
    except KekError:
        return
    assert "pin-value" not in uri.public.partition("?")[2]
    assert "pin-source" not in uri.public.partition("?")[2]


@given(st.binary(max_size=40))
def test_id_percent_decoding(raw: bytes) -> None:
    encoded = "".join(f"%{byte:02X}" for byte in raw)
    assert parse_pkcs11_uri(f"pkcs11:id={encoded}").id == raw
    assert parse_pkcs11_uri(f"pkcs11:id={encoded.lower()}").id == raw


def test_parsed_uri_repr_never_shows_the_pin() -> None:
    from ccdeploy.kek.pkcs11 import parse_pkcs11_uri

    parsed = parse_pkcs11_uri("pkcs11:token=t;object=k?module-path=/x.so&pin-value=S3CRETPIN")
    assert "S3CRETPIN" not in repr(parsed)
    assert "S3CRETPIN" not in parsed.public
