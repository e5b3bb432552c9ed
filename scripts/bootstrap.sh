#!/usr/bin/env bash
# Installs everything the project needs into the work tree, idempotently and quickly when
# nothing changed: a virtual environment (.venv) with requirements-dev.txt, and Azurite from
# package-lock.json (node_modules). Sourced by scripts/run and scripts/test so that a fresh
# machine with only python3 (3.11+), node and npm needs no manual step.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
want="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
have="$(cat .venv/.requirements.sha256 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > .venv/.requirements.sha256
fi

want_js="$(sha256sum package-lock.json | cut -d' ' -f1)"
have_js="$(cat node_modules/.package-lock.sha256 2>/dev/null || true)"
if [ "$want_js" != "$have_js" ] || [ ! -x node_modules/.bin/azurite ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want_js" > node_modules/.package-lock.sha256
fi
export PATH="$ROOT/.venv/bin:$ROOT/node_modules/.bin:$PATH"
