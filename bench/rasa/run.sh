#!/usr/bin/env bash
# `make bench-rasa`: Rasa 3.6 as a peer on CLINC150, in its own Python 3.10 venv (.venv-rasa).
# Creates the venv if missing, installs bench/rasa/requirements.txt once (a stamp holds its hash,
# so an edited requirements file reinstalls), then runs bench/rasa/rasa_clinc.py.
# DATA=... overrides the data root (default ../shared/data, relative to the repository root);
# RASA_PYTHON=... names the Python 3.10 to build the venv from.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
venv="$root/.venv-rasa"
data="${DATA:-../shared/data}"
if [ ! -f "$data/clinc150/data_full.json" ]; then
  echo "bench-rasa: no CLINC150 data at $data/clinc150/data_full.json (relative to $root);" >&2
  echo "  pass the data root: make bench-rasa DATA=/path/to/data" >&2
  exit 1
fi
reqs="bench/rasa/requirements.txt"

is_310() { [ -x "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; }

if ! is_310 "$venv/bin/python"; then
  py=""
  for candidate in "${RASA_PYTHON:-}" /root/.pyenv/versions/3.10.13/bin/python "$(command -v python3.10 || true)"; do
    if [ -n "$candidate" ] && is_310 "$candidate"; then py="$candidate"; break; fi
  done
  if [ -z "$py" ]; then
    echo "bench-rasa: needs CPython 3.10 (Rasa 3.6 runs on 3.8-3.10 only) and found none:" >&2
    echo "  tried \$RASA_PYTHON, /root/.pyenv/versions/3.10.13/bin/python and python3.10 on PATH." >&2
    echo "  Install it (e.g. 'pyenv install 3.10.13') or run: make bench-rasa RASA_PYTHON=/path/to/python3.10" >&2
    exit 1
  fi
  rm -rf "$venv"
  echo "bench-rasa: creating $venv from $py"
  "$py" -m venv "$venv"
fi

stamp="$venv/.installed"
want="$(sha256sum "$reqs" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "bench-rasa: installing $reqs into $venv (Rasa, TensorFlow: a few minutes, once)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'pip==24.0'
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
  echo "$want" > "$stamp"
fi

export RASA_TELEMETRY_ENABLED=false
exec "$venv/bin/python" bench/rasa/rasa_clinc.py "$data"
