"""`rsx token`: mint a development token for a user (specs/ws-api.md 1.1, 10)."""

from __future__ import annotations

import argparse

from ._common import add_config_args, add_json, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("token", help="mint a JWT for a user or an operator (development and tools)",
                       description="Print a bearer token for USER (the gateway, specs/ws-api.md 1.1) or for an "
                                   "operator NAME (the console's halt/resume, audience [console] "
                                   "operator_audience, specs/console.md 6), signed with the configured key: the "
                                   "HS256 secret file (created if missing), or --key with the EdDSA/RS256 private "
                                   "key. One token opens one connection or session (its jti is spent).")
    add_config_args(p)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", type=int, help="user id (1..4294967295)")
    who.add_argument("--operator", metavar="NAME", help="operator name (1..64 of A-Z a-z 0-9 . _ @ -)")
    p.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")
    p.add_argument("--key", metavar="FILE", help="PEM private key (EdDSA, RS256)")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..errors import ConfigError
    from ..gateway.auth import NAME_SUBJECT, mint_token, signing_key

    cfg = load_config(args.config, args.data)
    if args.user is not None and not 1 <= args.user <= 0xFFFFFFFF:
        raise ConfigError(f"--user {args.user}: a user id is 1..4294967295")
    if args.operator is not None and not NAME_SUBJECT.fullmatch(args.operator):
        raise ConfigError(f"--operator {args.operator!r}: a name is 1..64 of A-Z a-z 0-9 . _ @ -")
    if not 1 <= args.ttl <= cfg.gateway.token_max_lifetime_s:
        raise ConfigError(f"--ttl {args.ttl}: 1..{cfg.gateway.token_max_lifetime_s} s "
                          "(gateway.token_max_lifetime_s)")
    key = signing_key(cfg, args.key, create=True)
    a = cfg.auth
    operator = args.operator is not None
    token, jti, exp_ns = mint_token(key, a.algorithm, args.operator if operator else args.user,
                                    audience=cfg.console.operator_audience if operator else a.audience,
                                    issuer=a.issuer, ttl_s=args.ttl)
    if args.json:
        who = {"operator": args.operator} if operator else {"user_id": args.user}
        print_json({"token": token, **who, "expires_ns": exp_ns, "jti": jti})
    else:
        print(token)
    return 0
