"""Key-encryption-key providers, selected by URI scheme (see :mod:`ccdeploy.kek.base`)."""

from ccdeploy.kek.base import KEK_FOR_URI_SCHEME, KeyWrapper, WrappedKey, kek_from_uri

__all__ = ["KEK_FOR_URI_SCHEME", "KeyWrapper", "WrappedKey", "kek_from_uri"]
