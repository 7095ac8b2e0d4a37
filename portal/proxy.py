"""Behind a reverse proxy: the client's real address, scheme and host.

Behind a proxy every request arrives from the proxy's address, so the sign-in
limits per client address, the evidence of a signature (IP) and the loopback
check of ``/metrics`` would all see the proxy. With ``TRUSTED_PROXIES`` and/or
``PROXY_FIX_X_*`` configured, werkzeug's ``ProxyFix`` takes the client from the
``X-Forwarded-*`` headers the proxies added, trusting exactly the configured
number of hops, and only for requests that really come from a listed proxy (a
client that reaches Herald directly cannot forge its address). The app resolves
this itself, the same way under gunicorn and under ``herald serve``; waitress is
only told to hand the headers over (:func:`waitress_options`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

# Set in the WSGI environ when the client was taken from a trusted proxy's headers.
RESOLVED_KEY = "herald.proxy_resolved"
HEADERS = ("for", "proto", "host", "port", "prefix")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyConfigError(ValueError):
    """``TRUSTED_PROXIES`` or a ``PROXY_FIX_X_*`` setting is malformed."""


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """How many proxies set each ``X-Forwarded-*`` header, and which peers are proxies."""

    x_for: int = 0
    x_proto: int = 0
    x_host: int = 0
    x_port: int = 0
    x_prefix: int = 0
    trusted: tuple[Network, ...] = ()  # empty: every direct peer is a proxy

    @property
    def enabled(self) -> bool:
        """True when any forwarding header is to be believed."""
        return any(getattr(self, f"x_{name}") for name in HEADERS)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProxySettings:
        """Read ``TRUSTED_PROXIES`` and ``PROXY_FIX_X_FOR`` (``_PROTO``, ``_HOST``, ``_PORT``,
        ``_PREFIX``). Listing proxies alone believes one hop of ``X-Forwarded-For`` and
        ``X-Forwarded-Proto``, what a single nginx or Caddy in front sends."""
        raw = (env.get("TRUSTED_PROXIES") or "").strip()
        trusted = tuple(_network(item.strip()) for item in raw.split(",") if item.strip())
        default = 1 if trusted else 0
        counts = {name: _hops(env, f"PROXY_FIX_X_{name.upper()}",
                              default if name in ("for", "proto") else 0) for name in HEADERS}
        return cls(**{f"x_{name}": count for name, count in counts.items()}, trusted=trusted)

    def is_trusted(self, address: str | None) -> bool:
        """True when ``address`` (the direct peer) is one of the configured proxies."""
        if not self.trusted:
            return True
        try:
            peer = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped:
            peer = peer.ipv4_mapped
        return any(peer in network for network in self.trusted)


def _network(item: str) -> Network:
    try:
        return ipaddress.ip_network(item, strict=False)
    except ValueError:
        raise ProxyConfigError(
            f"TRUSTED_PROXIES: {item!r} is not an IP address or network; list the proxies' "
            "addresses, comma-separated, e.g. TRUSTED_PROXIES=127.0.0.1,10.0.0.0/24") from None


def _hops(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) > 10:
        raise ProxyConfigError(f"{name}={raw!r} must be the number of proxies in front of "
                               f"Herald that set this header (0 to 10), e.g. {name}=1")
    return int(raw)


class TrustedProxyFix:
    """``ProxyFix`` applied to requests from a trusted proxy only; others pass untouched."""

    def __init__(self, app: Callable[..., Iterable[bytes]], settings: ProxySettings) -> None:
        self.app = app
        self.settings = settings
        self.fixed = ProxyFix(app, x_for=settings.x_for, x_proto=settings.x_proto,
                              x_host=settings.x_host, x_port=settings.x_port,
                              x_prefix=settings.x_prefix)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if not self.settings.is_trusted(environ.get("REMOTE_ADDR")):
            return self.app(environ, start_response)
        # True: the proxies named the client; False: a proxy sent too few X-Forwarded-For
        # entries, so REMOTE_ADDR is still a proxy's, not the client's.
        hops = [h for h in environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        environ[RESOLVED_KEY] = self.settings.x_for > 0 and len(hops) >= self.settings.x_for
        return self.fixed(environ, start_response)


def client_resolved(environ: Mapping[str, Any]) -> bool | None:
    """None: the request did not come through a trusted proxy; True: its client address
    is the one the proxies named; False: it came from a proxy that did not name it."""
    return environ.get(RESOLVED_KEY)


def init_app(app: Any, settings: ProxySettings) -> None:
    """Wrap the app's WSGI callable when a proxy is configured."""
    if settings.enabled:
        app.wsgi_app = TrustedProxyFix(app.wsgi_app, settings)


def waitress_options(settings: ProxySettings) -> dict[str, Any]:
    """Options for waitress under ``herald serve``.

    With a proxy configured, waitress hands the ``X-Forwarded-*`` headers to the app
    unchanged, and the app resolves them (:class:`TrustedProxyFix`, which checks the
    peer against a list of networks; waitress's own ``trusted_proxy`` takes one
    address only). Without one, waitress's default stands: it drops those headers,
    so no client can pass itself off as another.
    """
    if not settings.enabled:
        return {}
    return {"clear_untrusted_proxy_headers": False}
