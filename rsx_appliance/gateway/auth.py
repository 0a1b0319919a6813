"""JWT authentication at the WebSocket upgrade (specs/ws-api.md 1.1).

One :class:`TokenVerifier` per gateway process: the algorithm and key come from
the configuration and are pinned (a token's header never chooses them), the
claims are checked with PyJWT, and every ``jti`` is spent once
(:class:`ReplayStore`). Tokens are checked once per connection, never per frame.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt

from ..errors import ConfigError

__all__ = ["AuthError", "Identity", "TokenVerifier", "ReplayStore", "mint_token", "ensure_secret",
           "load_verifier", "credential", "select_subprotocol", "MIN_SECRET_BYTES", "SUBPROTOCOL",
           "BEARER_PREFIX", "USER_SUBJECT", "NAME_SUBJECT"]

MIN_SECRET_BYTES = 32
MIN_RSA_BITS = 2048
#: ``sub`` of a trading token: a user id, 1..4294967295 (checked for the upper bound after the match)
USER_SUBJECT = re.compile(r"[1-9][0-9]{0,9}")
#: ``sub`` of an operator token (specs/console.md 6): a name
NAME_SUBJECT = re.compile(r"[A-Za-z0-9._@-]{1,64}")
#: the subprotocol a browser offers beside its token (specs/ws-api.md 1.2)
SUBPROTOCOL = "rsx.v1"
BEARER_PREFIX = "bearer."
# PyJWT's own name for each pinned algorithm
_ALGORITHMS = {"HS256": "HS256", "EdDSA": "EdDSA", "RS256": "RS256"}


class AuthError(Exception):
    """A refused token: ``http`` status and ``code`` (the E code of the 401 body)."""

    def __init__(self, http: int, code: int, message: str) -> None:
        super().__init__(message)
        self.http, self.code, self.message = http, code, message


@dataclass(frozen=True)
class Identity:
    user_id: int      # 0 for a name subject (an operator)
    jti: str
    expires_ns: int
    subject: str = ""  # the token's ``sub`` as written


def credential(headers) -> str | None:
    """The bearer credential of an upgrade request, as an ``Authorization`` value (or None).

    Programs send ``Authorization: Bearer <JWT>``; browsers, which cannot set
    that header on a WebSocket, offer the subprotocols ``rsx.v1`` and
    ``bearer.<JWT>`` (specs/ws-api.md 1.2). Exactly one credential: both
    kinds, two of one kind, or a token offered without ``rsx.v1`` raise
    :class:`AuthError` (401 / 1101).
    """
    from websockets.exceptions import InvalidHeader
    from websockets.headers import parse_subprotocol

    auth = headers.get_all("Authorization")
    try:
        offers = [o for value in headers.get_all("Sec-WebSocket-Protocol") for o in parse_subprotocol(value)]
    except InvalidHeader:
        raise AuthError(401, 1101, "malformed Sec-WebSocket-Protocol header") from None
    tokens = [o[len(BEARER_PREFIX):] for o in offers if o.startswith(BEARER_PREFIX)]
    if len(auth) > 1:
        raise AuthError(401, 1101, "more than one Authorization header")
    if not tokens:
        return auth[0] if auth else None
    if auth:
        raise AuthError(401, 1101, "two credentials: an Authorization header and a bearer. subprotocol")
    if len(tokens) > 1:
        raise AuthError(401, 1101, "more than one bearer. subprotocol")
    if SUBPROTOCOL not in offers:
        raise AuthError(401, 1101, f"offer the {SUBPROTOCOL} subprotocol with the bearer. token")
    return "Bearer " + tokens[0]


def select_subprotocol(_conn, offered) -> str | None:
    """websockets' hook: ``rsx.v1`` when offered, else no subprotocol (never a token)."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


class ReplayStore:
    """Spent token ids until their tokens expire; never evicts a live one.

    ``reserve`` is atomic within the event loop: check and insert in one call.
    A reservation is ``release``d if the upgrade does not complete. When the
    store holds ``capacity`` live ids it refuses (503) rather than forget one.
    """

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.capacity = capacity
        self._exp: dict[str, float] = {}
        self._next_prune = 0.0

    def __len__(self) -> int:
        return len(self._exp)

    def _prune(self, now: float) -> None:
        self._exp = {j: e for j, e in self._exp.items() if e > now}
        self._next_prune = now + 1.0

    def reserve(self, jti: str, exp: float, now: float) -> None:
        if now >= self._next_prune or len(self._exp) >= self.capacity:
            self._prune(now)
        old = self._exp.get(jti)
        if old is not None and old > now:
            raise AuthError(401, 1102, "token already used (jti replay)")
        if len(self._exp) >= self.capacity:
            raise AuthError(503, 1104, "replay store full, retry later")
        self._exp[jti] = exp

    def release(self, jti: str) -> None:
        self._exp.pop(jti, None)


class TokenVerifier:
    """Verifies bearer tokens for one algorithm and key (pinned by configuration)."""

    def __init__(self, algorithm: str, key, audience: str, issuer: str, *, leeway_s: int = 5,
                 max_lifetime_s: int = 86_400, replay: ReplayStore | None = None,
                 subject: re.Pattern = USER_SUBJECT) -> None:
        if algorithm not in _ALGORITHMS:
            raise ConfigError(f"auth.algorithm: {algorithm!r} is not HS256, EdDSA or RS256")
        self.subject = subject
        self.algorithm = algorithm
        self.key = key
        self.audience, self.issuer = audience, issuer
        self.leeway_s, self.max_lifetime_s = leeway_s, max_lifetime_s
        self.replay = replay if replay is not None else ReplayStore()

    def verify(self, header_value: str | None, now: float | None = None, *, spend: bool = True) -> Identity:
        """Check an ``Authorization`` header value; reserve the jti; return who it is.

        ``spend=False`` checks everything but the jti and reserves nothing (the
        console's token check, specs/console.md 4.2).
        """
        if not header_value:
            raise AuthError(401, 1101, "missing Authorization: Bearer token")
        scheme, _, token = header_value.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError(401, 1101, "Authorization must be 'Bearer <token>'")
        now = time.time() if now is None else now
        try:
            claims = jwt.decode(
                token, self.key, algorithms=[_ALGORITHMS[self.algorithm]], audience=self.audience,
                issuer=self.issuer, leeway=self.leeway_s,
                options={"require": ["exp", "sub", "jti", "aud", "iss"], "verify_sub": False,
                         "verify_jti": False})
        except jwt.ExpiredSignatureError:
            raise AuthError(401, 1101, "token expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError(401, 1101, "token not valid yet (nbf or iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise AuthError(401, 1101, "token audience is not this venue's") from None
        except jwt.InvalidIssuerError:
            raise AuthError(401, 1101, "token issuer is not this venue's") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(401, 1101, f"token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidAlgorithmError:
            raise AuthError(401, 1101, f"token algorithm is not {self.algorithm}") from None
        except jwt.InvalidSignatureError:
            raise AuthError(401, 1101, "token signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise AuthError(401, 1101, f"invalid token: {exc}") from None
        sub, jti, exp = claims.get("sub"), claims.get("jti"), claims.get("exp")
        users = self.subject is USER_SUBJECT
        if not isinstance(sub, str) or not self.subject.fullmatch(sub) or (users and int(sub) > 0xFFFFFFFF):
            raise AuthError(401, 1101, "token subject is not a user id (decimal string 1..4294967295)" if users
                            else f"token subject is not a name ({self.subject.pattern})")
        if not isinstance(jti, str) or not 1 <= len(jti) <= 128:
            raise AuthError(401, 1101, "token jti must be a string of 1..128 characters")
        if isinstance(exp, bool) or not isinstance(exp, (int, float)) or exp - now > self.max_lifetime_s:
            raise AuthError(401, 1101, f"token lives longer than {self.max_lifetime_s} s")
        if spend:
            self.replay.reserve(jti, float(exp) + self.leeway_s, now)
        return Identity(int(sub) if users else 0, jti, int(exp * 1e9), sub)


def ensure_secret(path: Path) -> bool:
    """Create a 32-byte random HS256 secret (mode 0600) if ``path`` is absent; True if created."""
    from ..fsutil import atomic_write

    if path.exists():
        return False
    atomic_write(path, secrets.token_bytes(MIN_SECRET_BYTES), mode=0o600, make_parents=True)
    return True


def _read_secret(path: Path) -> bytes:
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"auth.secret_file: {path} does not exist (rsx gateway or rsx up creates it)") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(f"auth.secret_file: {path} holds {len(secret)} bytes; HS256 needs at least "
                          f"{MIN_SECRET_BYTES}")
    return secret


def _public_key(algorithm: str, path: Path):
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"auth.public_key_file: {path} does not exist") from None
    except ValueError as exc:
        raise ConfigError(f"auth.public_key_file: {path} is not a PEM public key ({exc})") from None
    if algorithm == "EdDSA" and not isinstance(key, ed25519.Ed25519PublicKey):
        raise ConfigError(f"auth.public_key_file: {path} is not an Ed25519 key (algorithm EdDSA)")
    if algorithm == "RS256":
        if not isinstance(key, rsa.RSAPublicKey):
            raise ConfigError(f"auth.public_key_file: {path} is not an RSA key (algorithm RS256)")
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(f"auth.public_key_file: RSA key of {key.key_size} bits; at least {MIN_RSA_BITS}")
    return key


def signing_key(cfg, private_key_file: str | None = None, *, create: bool = False):
    """The key that signs tokens: the HS256 secret, or a private key file for EdDSA/RS256."""
    a = cfg.auth
    if a.algorithm == "HS256":
        path = cfg.resolve(a.secret_file)
        if create:
            ensure_secret(path)
        return _read_secret(path)
    if private_key_file is None:
        raise ConfigError(f"algorithm {a.algorithm} signs with a private key: pass --key FILE")
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        return load_pem_private_key(Path(private_key_file).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"--key {private_key_file}: not a readable unencrypted PEM private key ({exc})") from None


def load_verifier(cfg, *, create_secret: bool = False, audience: str | None = None,
                  subject: re.Pattern = USER_SUBJECT) -> TokenVerifier:
    """The verifier of a configuration (specs/config.md 4, [gateway] token keys).

    ``audience`` and ``subject`` default to trading tokens (``auth.audience``, a
    user id); the console passes its operator audience and NAME_SUBJECT.
    """
    a, g = cfg.auth, cfg.gateway
    if a.algorithm == "HS256":
        path = cfg.resolve(a.secret_file)
        if create_secret:
            ensure_secret(path)
        key = _read_secret(path)
    else:
        key = _public_key(a.algorithm, cfg.resolve(a.public_key_file))
    return TokenVerifier(a.algorithm, key, audience or a.audience, a.issuer, leeway_s=g.token_leeway_s,
                         max_lifetime_s=g.token_max_lifetime_s, subject=subject)


def mint_token(key, algorithm: str, user_id: int | str, *, audience: str = "rsx", issuer: str = "rsx",
               ttl_s: int = 3600, now: float | None = None, **extra) -> tuple[str, str, int]:
    """A fresh token for ``user_id`` (or an operator's name): (token, jti, exp in ns). Development and tests."""
    now = time.time() if now is None else now
    jti = uuid.uuid4().hex
    exp = int(now) + ttl_s
    claims = {"sub": str(user_id), "iat": int(now), "nbf": int(now), "exp": exp, "aud": audience,
              "iss": issuer, "jti": jti}
    claims.update(extra)
    return jwt.encode(claims, key, algorithm=algorithm), jti, exp * 1_000_000_000
