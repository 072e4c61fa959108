#!/usr/bin/env bash
# `make bench-rasa`: Rasa 3.6 as a peer on CLINC150, in its own Python 3.10 venv (.venv-rasa).
# bench/rasa/venv.sh creates the venv if missing and installs bench/rasa/requirements.txt once;
# then this runs bench/rasa/rasa_clinc.py.
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
bash bench/rasa/venv.sh  # creates .venv-rasa and installs the requirements, once

export RASA_TELEMETRY_ENABLED=false
exec "$venv/bin/python" bench/rasa/rasa_clinc.py "$data"
