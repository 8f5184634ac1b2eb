#!/usr/bin/env bash
# Installs the Python packages of the integration tests, listed in
# tests/python/requirements.txt: pycapnp for tests/pycapnp.rs and icalendar
# for tests/ical.rs. pycapnp's wheels for CPython 3.11 on x86_64 Linux
# bundle the Cap'n Proto C++ library, so nothing is compiled. ALMANAC_PYTHON names another interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${ALMANAC_PYTHON:-python3}"
requirements=tests/python/requirements.txt

echo "== installing the Python packages in $requirements"
if ! command -v "$python" >/dev/null; then
  echo "error: $python not found; install CPython 3 with pip, or set ALMANAC_PYTHON" >&2
  exit 1
fi
"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  --requirement "$requirements"
"$python" -c 'import capnp; print("pycapnp", capnp.__version__)'
"$python" -c 'import icalendar; print("icalendar", icalendar.__version__)'
