"""Who may call the server: ``AccessConfig`` (token file, TLS, exposure),
``BearerToken`` (checks ``Authorization: Bearer <token>`` headers in
constant time) and ``Access`` (both loaded, for the HTTP and gRPC sides).

The token never appears in a log line, an error message or a ``repr``.
"""

import dataclasses
import hmac
import ipaddress
import ssl

# Open without a token, so load balancers and orchestrators can probe them.
OPEN_PATHS = frozenset({"/v1/health"})
REALM = "keras-attention"


def is_loopback(host):
    """``host`` only accepts local connections: ``localhost``, 127.0.0.0/8 or ``::1``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


@dataclasses.dataclass(frozen=True)
class AccessConfig:
    """Who may call the server.

    Args:
        token_file: a file holding the bearer token every request must send
            (``Authorization: Bearer <token>``); ``None``: no token.
        tls_cert: a PEM certificate (chain) to serve HTTPS with; with ``tls_key``.
        tls_key: the certificate's unencrypted PEM private key.
        allow_unauthenticated: listen on a non-loopback address without a token
            (a proxy or firewall in front guards the server).
    """

    token_file: str = None
    tls_cert: str = None
    tls_key: str = None
    allow_unauthenticated: bool = False

    def __post_init__(self):
        for field in ("token_file", "tls_cert", "tls_key"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{field} must be a file path or None, got {value!r}.")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("give both --tls-cert and --tls-key (the certificate and its private "
                             "key) or neither.")
        if not isinstance(self.allow_unauthenticated, bool):
            raise ValueError("allow_unauthenticated must be True or False, got "
                             f"{self.allow_unauthenticated!r}.")

    def check_host(self, host):
        """Refuse a non-loopback ``host`` without a token, unless allowed."""
        if self.token_file is None and not self.allow_unauthenticated and not is_loopback(host):
            raise ValueError(f"refusing to listen on {host} without a token: anyone who reaches "
                             "it could call the model; pass --token-file FILE, or "
                             "--allow-unauthenticated when a proxy or firewall guards it.")

    def load(self):
        """The ``Access`` these settings describe (reads the token and TLS files)."""
        token = None if self.token_file is None else BearerToken.from_file(self.token_file)
        tls = None if self.tls_cert is None else tls_context(self.tls_cert, self.tls_key)
        return Access(token, tls)


class BearerToken:
    """A secret that ``Authorization: Bearer <token>`` headers must carry.

    ``accepts(header)`` compares in constant time (``hmac.compare_digest``);
    the HTTP handler and a gRPC interceptor (metadata ``authorization``)
    share it. ``repr`` and ``str`` never show the token.
    """

    def __init__(self, secret, path=None):
        where = "the token" if path is None else f"token file '{path}'"
        fix = "" if path is None else f"; write one with e.g. 'openssl rand -hex 32 > {path}'"
        if not isinstance(secret, str) or not secret:
            raise ValueError(f"{where} is empty{fix}.")
        if not all("!" <= c <= "~" for c in secret):
            raise ValueError(f"{where} holds spaces, control or non-ASCII characters, which an "
                             f"Authorization header cannot carry{fix}.")
        self._secret = secret.encode("ascii")
        self.path = path

    @classmethod
    def from_file(cls, path):
        """The token in ``path``: its whole text, less one trailing newline."""
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"token file '{path}' not found; write one with e.g. "
                                    f"'openssl rand -hex 32 > {path}'.") from None
        except UnicodeDecodeError:
            raise ValueError(f"token file '{path}' is not text; write one with e.g. "
                             f"'openssl rand -hex 32 > {path}'.") from None
        except OSError as error:
            raise OSError(f"cannot read token file '{path}' ({error.strerror}); check its "
                          "permissions.") from None
        if text.endswith("\n"):  # read with universal newlines: "\r\n" is "\n" here
            text = text[:-1]
        return cls(text, path=path)

    def accepts(self, header):
        """``header`` (an ``Authorization`` value, or ``None``) carries this token."""
        credentials = bearer_credentials(header)
        if credentials is None:
            return False
        try:
            offered = credentials.encode("latin-1")  # http.server decodes headers as latin-1
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(offered, self._secret)

    def __repr__(self):
        return f"BearerToken(<hidden>, path={self.path!r})"

    __str__ = __repr__


def bearer_credentials(header):
    """The credentials of an ``Authorization: Bearer <credentials>`` value, else ``None``."""
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


def unauthorized(header):
    """``(message, WWW-Authenticate value)`` refusing a request with this
    ``Authorization`` ``header`` (RFC 6750); neither repeats the header."""
    if bearer_credentials(header) is None:
        return ("this server needs a token: send 'Authorization: Bearer <token>' with the token "
                "in the server's --token-file.", f'Bearer realm="{REALM}"')
    return ("the bearer token is not accepted; send the token in the server's --token-file.",
            f'Bearer realm="{REALM}", error="invalid_token"')


def tls_context(cert, key):
    """A server ``ssl.SSLContext`` (TLS 1.2 or later) for ``cert`` and ``key``."""
    for what, path, flag, marker in (
            ("certificate", cert, "--tls-cert", b"-----BEGIN CERTIFICATE-----"),
            ("key", key, "--tls-key", b"PRIVATE KEY-----")):
        try:
            with open(path, "rb") as file:
                text = file.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"TLS {what} '{path}' not found; pass a PEM file with "
                                    f"{flag}.") from None
        except OSError as error:
            raise OSError(f"cannot read TLS {what} '{path}' ({error.strerror}); check its "
                          "permissions.") from None
        if marker not in text:
            raise ValueError(f"TLS {what} '{path}' is not a PEM {what} (no '{marker.decode()}' "
                             f"line); pass one with {flag}.")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2

    def no_password():
        raise ValueError(f"TLS key '{key}' is encrypted; pass an unencrypted key "
                         f"('openssl pkey -in {key} -out plain.key').")

    try:
        context.load_cert_chain(cert, key, password=no_password)
    except ssl.SSLError as error:
        if "KEY_VALUES_MISMATCH" in str(error):
            raise ValueError(f"TLS key '{key}' does not match certificate '{cert}'; pass the "
                             "private key the certificate was made for.") from None
        detail = error.reason or str(error).split(" (_ssl.c", 1)[0]
        raise ValueError(f"cannot load TLS certificate '{cert}' with key '{key}' ({detail}); "
                         "check both PEM files.") from None
    return context


@dataclasses.dataclass(frozen=True)
class Access:
    """Loaded ``AccessConfig``: the ``BearerToken`` (or ``None``) and the
    ``ssl.SSLContext`` (or ``None``)."""

    token: BearerToken = None
    tls: ssl.SSLContext = None

    def wrap(self, listening_socket):
        """``listening_socket`` serving TLS when configured. The handshake is
        left to each connection's thread (``handshake``), so a client that
        never sends one stalls only itself, not the accept loop."""
        if self.tls is None:
            return listening_socket
        return self.tls.wrap_socket(listening_socket, server_side=True,
                                    do_handshake_on_connect=False)

    def authorized(self, path, header):
        """A request for ``path`` with this ``Authorization`` ``header`` may proceed."""
        return self.token is None or path in OPEN_PATHS or self.token.accepts(header)


def handshake(connection):
    """Finish the TLS handshake of an accepted connection (no-op for plain TCP)."""
    if isinstance(connection, ssl.SSLSocket):
        connection.do_handshake()
