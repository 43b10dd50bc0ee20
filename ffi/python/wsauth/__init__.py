"""wsauth: Django / SimpleJWT / Channels WebSocket authentication, decided by
the wsauth Rust core through its C ABI.

- :class:`TokenVerifier` — SimpleJWT's ``AccessToken(token)`` decision.
- :class:`SessionVerifier` — Django's ``get_user()`` decision for a session cookie.
- :mod:`wsauth.channels` — ``WsAuthMiddlewareStack`` (a drop-in for Channels'
  ``AuthMiddlewareStack``) and the consumer helper enforcing route requirements.
"""

from ._core import (
    Authenticator,
    Connection,
    EdgeVerifier,
    Handshake,
    MemoryRateStore,
    SessionVerifier,
    SettingsError,
    TokenVerifier,
    WsauthError,
    revocation,
    revoke_jti,
    revoke_user,
)
from ._core import ffi as _ffi, lib as _lib

__all__ = [
    "TokenVerifier",
    "SessionVerifier",
    "Authenticator",
    "Handshake",
    "Connection",
    "EdgeVerifier",
    "MemoryRateStore",
    "WsauthError",
    "SettingsError",
    "revocation",
    "revoke_jti",
    "revoke_user",
    "__version__",
    "library_version",
]

__version__ = "0.1.0"


def library_version() -> str:
    """The version of the loaded libwsauth."""
    return _ffi.string(_lib.wsauth_version()).decode("ascii")
