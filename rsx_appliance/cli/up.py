"""`rsx up`: every process of the exchange under one supervisor (specs/operations.md 3)."""

from __future__ import annotations

import argparse

from ._common import add_config_args, add_json

DESCRIPTION = """\
Run the whole exchange on this box: every process of the configuration (the embedded demo without
--config: BTC-PERP and ETH-PERP, one risk shard, demo accounts 1..10 and the maker's 1000) as a child
of this command, started in order, each once the ones it consumes serve. Prints the WebSocket
endpoints, the data directory and a development token once everything is ready; restarts a process
that dies (1 s, doubling to 30 s: [supervisor] in the config; `rsx status` counts the restarts); Ctrl-C or SIGTERM stops every
process in reverse order, each keeping everything it acknowledged. One rsx up per data directory.

Logs: DIR/log/<process>.log. Status: DIR/run/<process>.json, DIR/run/up.json (rsx status).

Exit codes: 0 stopped by SIGTERM; 1 a process did not start (its reason and log are named);
2 bad configuration or usage; 3 the data directory is in use (another rsx up, or a process of the
exchange running on it) or cannot be written; 130 stopped by Ctrl-C."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="run the whole exchange on this box (one supervisor, every process)",
                       description=DESCRIPTION)
    add_config_args(p)
    p.add_argument("--ready-timeout", type=float, default=None, metavar="S",
                   help="seconds a process may take to become ready (default: [supervisor] ready_timeout_s, 120)")
    p.add_argument("--token-user", type=int, default=1, metavar="ID",
                   help="user of the development token printed at start (default 1)")
    add_json(p, "print the ready line and every later event as JSON lines")
    p.add_argument("-v", "--verbose", action="store_true", help="log each start and stop on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import sys
    import time

    from ..config import load_config
    from ..up import Supervisor
    from ._common import CliError, print_json_line, warn

    if args.ready_timeout is not None and args.ready_timeout <= 0:
        raise CliError("--ready-timeout must be > 0")
    if not 1 <= args.token_user <= 0xFFFFFFFF:
        raise CliError(f"--token-user {args.token_user}: a user id is 1..4294967295")
    if args.verbose:
        logging.getLogger("rsx.up").setLevel(logging.INFO)
    cfg = load_config(args.config, args.data)
    command = "rsx up"

    def on_event(e: dict) -> None:
        if args.json:
            print_json_line(e)
        kind = e["event"]
        if kind == "exited":
            how = f"signal {e['signal']}" if e["signal"] else f"code {e['code']}"
            warn(command, f"{e['process']} (pid {e['pid']}) exited ({how}) after {e['uptime_s']:.1f} s: "
                          f"{e['why']}; restarting in {e['restart_in_s']:g} s")
        elif kind == "restarted":
            print(f"{command}: {e['process']} restarted (pid {e['pid']}, restart {e['restarts']}, ready in "
                  f"{e['ready_s']:.1f} s)", file=sys.stderr, flush=True)
        elif kind == "failed":
            print(f"{command}: error: {e['process']} failed and is not restarted: {e['reason']}",
                  file=sys.stderr, flush=True)
        elif kind == "stopped":
            killed = f" ({', '.join(e['killed'])} killed after the stop timeout)" if e["killed"] else ""
            print(f"{command}: stopped {e['processes']} processes{killed}", file=sys.stderr, flush=True)

    sup = Supervisor(cfg, args.config, ready_timeout=args.ready_timeout, on_event=on_event)

    def ready() -> None:
        from ..gateway.auth import mint_token, signing_key
        from ..up.supervisor import endpoints

        ttl = min(86_400, cfg.gateway.token_max_lifetime_s)
        token = None
        if cfg.auth.algorithm == "HS256":
            a = cfg.auth
            token, _, exp_ns = mint_token(signing_key(cfg), a.algorithm, args.token_user, audience=a.audience,
                                          issuer=a.issuer, ttl_s=ttl)
        eps = endpoints(cfg)
        line = {"event": "ready", "pid": __import__("os").getpid(), "data_dir": str(cfg.data_dir),
                "config": sup.config_path, "processes": {c.name: c.pid for c in sup.children.values()},
                "ready_s": round(sup.ready_s, 3), "endpoints": eps, "token": token,
                "token_user_id": args.token_user if token else None, "token_ttl_s": ttl if token else None,
                "time": time.time()}
        if args.json:
            print_json_line(line)
            return
        gw = [(n, u) for n, u in eps.items() if n.startswith("gateway.")]
        md = [(n, u) for n, u in eps.items() if n.startswith("marketdata.")]
        other = [(n, u) for n, u in eps.items() if not n.startswith(("gateway.", "marketdata."))]
        data = f" --data {cfg.data_dir}"
        conf = f" --config {sup.config_path}" if sup.config_path else ""
        out = [f"rsx up: the exchange is running ({len(sup.children)} processes ready in {sup.ready_s:.1f} s)",
               f"  data        {cfg.data_dir}"]
        out += [f"  gateway     {u}   (orders; header  Authorization: Bearer <token>)" for _, u in gw]
        out += [f"  marketdata  {u}   (public: BBO, depth, trades)" for _, u in md]
        out += [f"  {n.split('.')[0]:<11} {u}" + ("   (web console: trade; operate at /operate)"
                                                  if n.startswith("console.") else "") for n, u in other]
        if token:
            out.append(f"  token       {token}")
            out.append(f"              (user {args.token_user}, one connection, valid {ttl // 3600} h; more: "
                       f"rsx token --user N{conf}{data})")
        out.append(f"  status      rsx status{conf}{data}")
        out.append(f"  logs        {cfg.data_dir / 'log'}/")
        out.append("Ctrl-C stops the exchange in order.")
        print("\n".join(out), flush=True)

    code = sup.run(ready)
    if code == 130:
        print(f"{command}: interrupted", file=sys.stderr)
    return code
