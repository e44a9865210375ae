#!/usr/bin/env bash
# tests/integration/server_unit.sh — the daemon's unit tests (store,
# scheduler with a stub job, flags, Prometheus text), built as
# $BUILD/server_tests from tests/server/.
set -u
exec "${BUILD:-build}/server_tests"
