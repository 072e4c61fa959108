#!/usr/bin/env bash
# Creates .venv-rasa (Rasa 3.6 in its own Python 3.10 venv, never a dependency of the hub) and
# installs bench/rasa/requirements.txt into it, the same way bench/rasa/run.sh does, without
# needing the CLINC150 data: `make rasa-venv`, for the load benchmark's Rasa peer
# (bench/rasa_peer.py). RASA_PYTHON=... names the Python 3.10 to build the venv from.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
venv="$root/.venv-rasa"
reqs="bench/rasa/requirements.txt"

is_310() { [ -x "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; }

if ! is_310 "$venv/bin/python"; then
  py=""
  for candidate in "${RASA_PYTHON:-}" /root/.pyenv/versions/3.10.13/bin/python "$(command -v python3.10 || true)"; do
    if [ -n "$candidate" ] && is_310 "$candidate"; then py="$candidate"; break; fi
  done
  if [ -z "$py" ]; then
    echo "rasa-venv: needs CPython 3.10 (Rasa 3.6 runs on 3.8-3.10 only) and found none;" >&2
    echo "  install it (e.g. 'pyenv install 3.10.13') or pass RASA_PYTHON=/path/to/python3.10" >&2
    exit 1
  fi
  rm -rf "$venv"
  echo "rasa-venv: creating $venv from $py"
  "$py" -m venv "$venv"
fi

stamp="$venv/.installed"
want="$(sha256sum "$reqs" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "rasa-venv: installing $reqs into $venv (Rasa, TensorFlow: a few minutes, once)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'pip==24.0'
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
  echo "$want" > "$stamp"
fi
