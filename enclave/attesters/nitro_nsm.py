"""AWS Nitro Enclaves: attestation documents from the Nitro Secure Module through ``/dev/nsm``.

The NSM driver (Linux ``drivers/misc/nsm.c``, ``include/uapi/linux/nsm.h``) takes one ioctl,
``NSM_IOCTL_RAW = _IOWR(0x0A, 0, struct nsm_raw)``, whose argument holds two ``{__u64 addr; __u64 len;}`` buffers:
the CBOR request (at most 4 KiB) and room for the CBOR response (12 KiB). The kernel writes the response and its
length back. The request ``{"Attestation": {"user_data", "nonce", "public_key"}}`` is answered by
``{"Attestation": {"document": bytes}}`` or ``{"Error": "<ErrorCode>"}``.

This path has not run on Nitro hardware: it is tested against a fake ioctl that plays the driver.
"""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Any

import cbor2

from enclave.attesters.base import IoctlFunction, Opener, check_report_data, iowr, system_ioctl
from enclave.errors import AttestationFailed, AttesterUnavailable

__all__ = [
    "NSM_DEVICE",
    "NSM_IOCTL_RAW",
    "NSM_REQUEST_MAX_SIZE",
    "NSM_RESPONSE_MAX_SIZE",
    "NitroNsmAttester",
    "NsmDevice",
    "NsmIovec",
    "NsmMessage",
]

NSM_DEVICE = "/dev/nsm"
NSM_MAGIC = 0x0A
NSM_REQUEST_MAX_SIZE = 0x1000
NSM_RESPONSE_MAX_SIZE = 0x3000
_MAX_FIELD = 1024  # the NSM refuses user_data, nonce or public_key over 1 KiB


class NsmIovec(ctypes.Structure):
    """``struct nsm_iovec { __u64 addr; __u64 len; }`` (the layout of ``struct iovec`` on 64-bit Linux)."""

    _fields_ = (("addr", ctypes.c_uint64), ("len", ctypes.c_uint64))


class NsmMessage(ctypes.Structure):
    """``struct nsm_raw { struct nsm_iovec request; struct nsm_iovec response; }``."""

    _fields_ = (("request", NsmIovec), ("response", NsmIovec))


NSM_IOCTL_RAW = iowr(NSM_MAGIC, 0, ctypes.sizeof(NsmMessage))


class NsmDevice:
    """One request/response exchange with the NSM.

    Args:
        path: The device node.
        ioctl: The ioctl system call (tests pass a fake that plays the driver).
        opener: ``os.open``-like (tests may pass their own).
    """

    def __init__(self, path: str = NSM_DEVICE, *, ioctl: IoctlFunction | None = None, opener: Opener | None = None):
        self._path = path
        self._ioctl = ioctl or system_ioctl
        self._open = opener or os.open

    def request(self, message: bytes) -> bytes:
        """Send one CBOR request and return the CBOR response bytes.

        Raises:
            AttesterUnavailable: The device cannot be opened.
            AttestationFailed: The request is too large, the ioctl fails, or the response length is impossible.
        """
        if len(message) > NSM_REQUEST_MAX_SIZE:
            raise AttestationFailed(f"NSM request of {len(message)} bytes exceeds {NSM_REQUEST_MAX_SIZE}")
        try:
            descriptor = self._open(self._path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise AttesterUnavailable(f"cannot open {self._path}: {os.strerror(exc.errno or 0)}") from None
        try:
            request = ctypes.create_string_buffer(bytes(message), len(message))
            response = ctypes.create_string_buffer(NSM_RESPONSE_MAX_SIZE)
            raw = NsmMessage(
                NsmIovec(ctypes.addressof(request), len(message)),
                NsmIovec(ctypes.addressof(response), NSM_RESPONSE_MAX_SIZE),
            )
            try:
                self._ioctl(descriptor, NSM_IOCTL_RAW, raw)
            except OSError as exc:
                name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
                raise AttestationFailed(f"the NSM ioctl on {self._path} failed: {name}") from None
            length = raw.response.len
            if not 0 < length <= NSM_RESPONSE_MAX_SIZE:
                raise AttestationFailed(f"the NSM returned an impossible response length {length}")
            return response.raw[:length]
        finally:
            os.close(descriptor)


class NitroNsmAttester:
    """Nitro attestation documents from ``/dev/nsm``, with ``user_data`` = report data and ``nonce`` = nonce.

    Args:
        device: The device node.
        ioctl: The ioctl system call (injectable for tests).
        opener: ``os.open``-like (injectable for tests).
    """

    name = "nitro"
    evidence_type = "nitro"

    def __init__(
        self, device: str = NSM_DEVICE, *, ioctl: IoctlFunction | None = None, opener: Opener | None = None
    ) -> None:
        self._device = NsmDevice(device, ioctl=ioctl, opener=opener)

    def attest(self, report_data: bytes, nonce: bytes) -> bytes:
        """The NSM's COSE_Sign1 attestation document binding ``report_data`` and ``nonce``.

        The document is checked to carry exactly the user data and nonce asked for, so a confused device or
        driver fails here rather than at the broker.

        Raises:
            ValueError: ``report_data`` is not 64 bytes or ``nonce`` is empty or over 1024 bytes.
            AttesterUnavailable: ``/dev/nsm`` cannot be opened.
            AttestationFailed: The NSM answered an error, or a document that is malformed or binds other data.
        """
        user_data = check_report_data(report_data)
        if not 0 < len(nonce) <= _MAX_FIELD:
            raise ValueError(f"the nonce must be 1 to {_MAX_FIELD} bytes, got {len(nonce)}")
        request = cbor2.dumps({"Attestation": {"user_data": user_data, "nonce": bytes(nonce), "public_key": None}})
        answer = _decode(self._device.request(request), "NSM response")
        document = _document(answer)
        _check_document(document, user_data, bytes(nonce))
        return document


def _decode(data: bytes, what: str) -> Any:
    try:
        return cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as exc:
        raise AttestationFailed(f"the {what} is not valid CBOR: {exc}") from None


def _document(answer: Any) -> bytes:
    if isinstance(answer, dict) and "Error" in answer:
        raise AttestationFailed(f"the NSM answered an error: {answer['Error']!s:.100}")
    body = answer.get("Attestation") if isinstance(answer, dict) else None
    document = body.get("document") if isinstance(body, dict) else None
    if not isinstance(document, bytes) or not document:
        raise AttestationFailed("the NSM response is neither an Attestation with a document nor an Error")
    return document


def _check_document(document: bytes, user_data: bytes, nonce: bytes) -> None:
    cose = _decode(document, "attestation document")
    if isinstance(cose, cbor2.CBORTag) and cose.tag == 18:  # COSE_Sign1 may come tagged
        cose = cose.value
    if not (isinstance(cose, list | tuple) and len(cose) == 4 and isinstance(cose[2], bytes)):
        raise AttestationFailed("the attestation document is not a COSE_Sign1 structure")
    payload = _decode(cose[2], "attestation document payload")
    if not isinstance(payload, dict):
        raise AttestationFailed("the attestation document payload is not a map")
    if payload.get("user_data") != user_data or payload.get("nonce") != nonce:
        raise AttestationFailed("the NSM returned a document for other user data or another nonce")
