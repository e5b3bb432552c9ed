"""`python -m devhost [--app DIR] [--port N] [--settings FILE] [--require-keys]`"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from devhost.config import ConfigError
from devhost.host import Options, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    parser.add_argument("--app", default=".", help="folder with function_app.py and host.json")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--settings", default=None, help="settings file (default APP/local.settings.json)")
    parser.add_argument("--require-keys", action="store_true",
                        help="enforce function keys on FUNCTION and ADMIN routes, as in Azure")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    for noisy in ("azure", "aiohttp.access", "urllib3", "msal"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    options = Options(app_dir=Path(args.app).resolve(), port=args.port,
                      settings_file=Path(args.settings).resolve() if args.settings else None,
                      require_keys=args.require_keys)
    try:
        asyncio.run(serve(options, os.environ))
    except ConfigError as exc:
        print(f"devhost: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
