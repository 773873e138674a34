#!/usr/bin/env bash
# The longer load test of herd serve: 64 concurrent streaming clients (about 10% hang up midway)
# against a real server on the tiny test model, then a full queue (429 with Retry-After). Every
# complete stream must have its full token count, no slot may leak (/metrics), and the server must
# stay healthy. It is tests/python/test_server.py's load test with more clients; not part of CI.
#   bench/serve_stress.sh [CLIENTS]      (default 64)
set -euo pipefail
cd "$(dirname "$0")/.."
HERD_LOAD_CLIENTS=${1:-64} .venv/bin/python -m pytest tests/python/test_server.py -q \
  -k "test_load_32_streams_with_disconnects or full_queue" "${@:2}"
