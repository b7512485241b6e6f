#!/usr/bin/env bash
# Install the service into ./.venv and start it on 127.0.0.1:8000 (the SQLite session store
# in ./data): nothing else to set up. Extra arguments go to `autograd-service serve`
# (--host, --port, --workers); settings come from AUTOGRAD_* environment variables.
#
#   bash scripts/serve.sh                 # http://127.0.0.1:8000/docs
#   bash scripts/serve.sh --port 9000 --workers 2
#
# The first run creates the virtual environment and installs the package into it; later runs
# reinstall only when pyproject.toml changed (the install is editable: code changes need no
# reinstall). PYTHON picks the interpreter (default python3; 3.11 or newer).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv

if ! command -v "$PYTHON" >/dev/null; then
  echo "serve.sh: $PYTHON not found; install Python 3.11 or newer (or set PYTHON=...)" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "serve.sh: $("$PYTHON" -V 2>&1) is too old; Python 3.11 or newer is needed" >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    # Debian and Ubuntu ship venv (ensurepip) as a separate package.
    rm -rf "$VENV"
    if command -v apt-get >/dev/null; then
      SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
      version=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
      echo "serve.sh: installing python${version}-venv" >&2
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "python${version}-venv" \
        >/dev/null
      "$PYTHON" -m venv "$VENV"
    else
      echo "serve.sh: '$PYTHON -m venv' failed; install Python's venv module" >&2
      exit 1
    fi
  fi
fi

stamp="$VENV/.autograd-service-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "serve.sh: installing autograd-service into $VENV" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e .
  touch "$stamp"
fi

exec "$VENV/bin/autograd-service" serve "$@"
