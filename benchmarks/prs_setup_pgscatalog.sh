#!/usr/bin/env bash
# Create the separate virtualenv with the PGS Catalog Python tools (pgscatalog-utils) that
# benchmarks/prs_benchmark.py compares pmed's variant matching against.
#
# Usage:  bash benchmarks/prs_setup_pgscatalog.sh [VENV_DIR]
#   VENV_DIR defaults to $PGSCATALOG_VENV, else /tmp/prsbench/venv-pgscatalog (outside the repo,
#   so nothing has to be git-ignored). The benchmark's --pgscatalog-venv must point to the same.
#   PYTHON picks the interpreter (default: python3.11, else python3); PGSCATALOG_UTILS_VERSION the
#   pgscatalog-utils version (default 2.0.4, the one the benchmark was written against).
#
# Installs from the package index pip is configured with; downloads nothing else. Idempotent: an
# existing venv that already runs pgscatalog-match is kept.
set -euo pipefail

VENV="${1:-${PGSCATALOG_VENV:-/tmp/prsbench/venv-pgscatalog}}"
VERSION="${PGSCATALOG_UTILS_VERSION:-2.0.4}"
if [[ -z "${PYTHON:-}" ]]; then
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi

if [[ -x "$VENV/bin/pgscatalog-match" ]] && "$VENV/bin/pgscatalog-match" --help >/dev/null 2>&1; then
  echo "pgscatalog venv ready: $VENV ($("$VENV/bin/pip" show pgscatalog-utils 2>/dev/null \
    | sed -n 's/^Version: /pgscatalog-utils /p'))"
  exit 0
fi

echo "creating $VENV with $PYTHON ($("$PYTHON" -V 2>&1))"
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "pgscatalog-utils==${VERSION}"

for tool in pgscatalog-format pgscatalog-match; do
  if ! "$VENV/bin/$tool" --help >/dev/null 2>&1; then
    echo "error: $VENV/bin/$tool does not run after the install" >&2
    exit 1
  fi
done
echo "pgscatalog venv ready: $VENV ($("$VENV/bin/pip" show pgscatalog-utils \
  | sed -n 's/^Version: /pgscatalog-utils /p'))"
