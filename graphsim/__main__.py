"""`python -m graphsim`: run the simulator as a process, for the local stack and manual testing.

Why: the local run (devhost + Azurite + graphsim) needs a Graph endpoint with demo mailboxes and a
tenant/app whose credentials a runner script can read. The secret is never printed unless
`--print-credentials` is given: it comes from $GRAPHSIM_CLIENT_SECRET or is generated, and is
written (with everything else a client needs) to `--credentials-file` as JSON, mode 0600.

Stdout, one line each, once listening:
    GRAPHSIM_URL=https://127.0.0.1:PORT
    REQUESTS_CA_BUNDLE=/tmp/graphsim-tls-.../graphsim-ca.pem
    TENANT_ID=...
    OUTLOOK_CLIENT_ID=...
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from .state import parse_mailbox_spec
from .testing import GraphSim


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m graphsim", description="Microsoft Graph mail + Entra ID simulator")
    p.add_argument("--host", default="127.0.0.1", help="listen address (loopback only is sensible)")
    p.add_argument("--port", type=int, default=0, help="listen port (0 = pick a free one; it is printed)")
    p.add_argument("--mailboxes", default=None,
                   help="upn=count,... e.g. alice@contoso.com=500,bob@contoso.com=200k (default: demo mailboxes)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated mailboxes")
    p.add_argument("--tenant-id", default=os.environ.get("GRAPHSIM_TENANT_ID"))
    p.add_argument("--client-id", default=os.environ.get("GRAPHSIM_CLIENT_ID"))
    p.add_argument("--credentials-file", default=None,
                   help="write tenant_id, client_id, client_secret, authority_host, graph_endpoint, ca_bundle here")
    p.add_argument("--print-credentials", action="store_true", help="also print the client secret (never logged otherwise)")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--concurrency-limit", type=int, default=4)
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--token-lifetime-s", type=int, default=3600)
    p.add_argument("--log-level", default="WARNING")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        mailboxes = parse_mailbox_spec(args.mailboxes)
    except ValueError as e:
        print(f"graphsim: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sim = GraphSim.start(mailboxes, args.seed, host=args.host, port=args.port, tenant_id=args.tenant_id,
                         client_id=args.client_id, client_secret=os.environ.get("GRAPHSIM_CLIENT_SECRET") or None,
                         latency_ms=args.latency_ms, concurrency_limit=args.concurrency_limit,
                         error_rate=args.error_rate, token_lifetime_s=args.token_lifetime_s)
    try:
        if args.credentials_file:
            sim.write_credentials(args.credentials_file)
        lines = [f"GRAPHSIM_URL={sim.url}", f"REQUESTS_CA_BUNDLE={sim.ca_bundle}", f"TENANT_ID={sim.tenant_id}",
                 f"OUTLOOK_CLIENT_ID={sim.client_id}"]
        if args.print_credentials:
            lines.append(f"OUTLOOK_CLIENT_SECRET={sim.client_secret}")
        print("\n".join(lines), flush=True)
        logging.getLogger("graphsim").info("serving %d mailboxes: %s", len(mailboxes), ", ".join(mailboxes))
        stop.wait()
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
