"""`python -m devhost [--app DIR] [--port N] [--settings FILE] [--require-keys] [--workers N]`"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

# Light imports only until the workers are started: they import the app meanwhile.
from devhost.config import ConfigError, Options, prepare_environment


def _worker_count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {value!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return count


async def _run(options: Options, environ) -> None:
    config = prepare_environment(options.app_dir, options.settings_file, environ)
    from devhost.workers import WorkerPool
    workers = WorkerPool.for_host(options, config, environ)
    await workers.start()
    try:
        from devhost.host import serve  # aiohttp, the storage SDK...: while the workers import the app
        await serve(options, environ, config=config, workers=workers)
    finally:
        await workers.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    parser.add_argument("--app", default=".", help="folder with function_app.py and host.json")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--settings", default=None, help="settings file (default APP/local.settings.json)")
    parser.add_argument("--require-keys", action="store_true",
                        help="enforce function keys on FUNCTION and ADMIN routes, as in Azure")
    parser.add_argument("--workers", type=_worker_count, default=1,
                        help="worker processes running the app, like instances of a scaled-out app "
                             "(default 1); host.json concurrency limits apply per worker")
    args = parser.parse_args(argv)
    # One line per write, so devhost's lines and the workers' (relayed) never mix mid-line.
    sys.stdout.reconfigure(line_buffering=True)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    for noisy in ("azure", "aiohttp.access", "urllib3", "msal"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    options = Options(app_dir=Path(args.app).resolve(), port=args.port,
                      settings_file=Path(args.settings).resolve() if args.settings else None,
                      require_keys=args.require_keys, workers=args.workers)
    try:
        asyncio.run(_run(options, os.environ))
    except ConfigError as exc:
        print(f"devhost: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
