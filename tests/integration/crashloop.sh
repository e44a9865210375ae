#!/usr/bin/env bash
# tests/integration/crashloop.sh — the short crash loop of make test: isifd
# killed with SIGKILL 10 times (one in the migrations, the rest at start-up,
# on a checkpoint write or in training), the database and checkpoints
# checked after each kill, every job finishing with each epoch's row once;
# then one job killed 5 times ends bit-identical to an uninterrupted run.
# make test-slow runs the same with 200 kills (tests/slow/crashloop.py).
cd "$(dirname "$0")/../.." || exit 1
exec python3 tests/slow/crashloop.py --kills 10 --seed "${CRASHLOOP_SEED:-1}" --determinism
