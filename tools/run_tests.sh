#!/usr/bin/env bash
# Set up .venv (idempotent) and run the test suite. Extra args go to pytest,
# e.g. `bash tools/run_tests.sh -m "not slow"` or `... tests/test_losses.py`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash tools/setup_env.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
exec .venv/bin/python -m pytest tests -ra -p no:cacheprovider "$@"
