#!/usr/bin/env bash
# Data-parallel `isif train` over Open MPI (2 ranks × 1 thread on loopback,
# TCP forced): the 2-rank run computes what one process computes with
# bn_groups = 2 — the loss of each of 5 steps and every tensor of the
# checkpoint after them agree to 1e-5 relative — and a checkpoint written at
# one process count resumes at the other; with sync_bn it computes what one
# process with bn_groups = 1 computes. Fashion-MNIST, convnet, 320 images.
. "$(dirname "$0")/../lib.sh"

PY=/usr/bin/python3
# Under make sanitize: Open MPI never frees what its plugins allocate (the
# stacks end in unloaded modules, so no suppression can name them), so leak
# detection is off for this suite; ASan's and UBSan's other checks stay on.
[ -n "${SANITIZED:-}" ] && export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
CMP="$(dirname "$0")/st_compare.py"
if ! command -v mpirun >/dev/null; then
	fail "mpi_mpirun_present" "install openmpi-bin and libopenmpi-dev (make deps)"
	finish
fi
if ! ldd "$ISIF" | grep -q libmpi; then
	fail "mpi_isif_built_with_mpi" "$ISIF has no MPI: pkg-config found neither ompi-c nor mpi-c at build time"
	finish
fi
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --mca btl tcp,self
	--mca btl_tcp_if_include lo --mca oob_tcp_if_include lo -np 2)

# The baseline is one process with 2 threads: the engine splits a batch's
# rows among its team members as the ranks split them, so both add the same
# partial sums (one thread adds them in another order: its weights drift
# from these by up to 1e-3 of a small BN bias over 5 steps, rounding alone).
common=(--dataset fashion-mnist --model convnet --train-subset 320 --batch-size 64
	--eval-every 0 --seed 3 --quiet --log-steps)
"$ISIF" train "${common[@]}" --threads 2 --bn-groups 2 --epochs 1 --out "$T/one" > "$T/one.log" 2>&1
timeout 120 "${MPIRUN[@]}" "$ISIF" train "${common[@]}" --threads 1 --epochs 1 --out "$T/two" \
	> "$T/two.log" 2>&1
check "mpi_two_ranks_run" grep -q "^processes: 2 (MPI), BN as one process with bn_groups 2" "$T/two.log"
check "mpi_reports_collective_time" grep -q "per step: allgather .* ms, allreduce .* ms (5 steps)" "$T/two.log"
grep '^step ' "$T/one.log" > "$T/one.steps"
grep '^step ' "$T/two.log" > "$T/two.steps"
if [ "$(wc -l < "$T/one.steps")" -eq 5 ] && [ "$(wc -l < "$T/two.steps")" -eq 5 ] &&
	paste -d' ' "$T/one.steps" "$T/two.steps" |
	awk '{d = $4 - $8; if (d < 0) d = -d; if (d > 1e-5 * $4) exit 1}'; then
	pass "mpi_step_losses_match_bn_groups_2"
else
	fail "mpi_step_losses_match_bn_groups_2" "$(paste -d' ' "$T/one.steps" "$T/two.steps" | tr '\n' ';')"
fi
check "mpi_parameters_match_bn_groups_2" $PY "$CMP" "$T/one/checkpoint-latest.safetensors" \
	"$T/two/checkpoint-latest.safetensors" 1e-5
check "mpi_momentum_matches_bn_groups_2" $PY "$CMP" "$T/one/optim-000001.safetensors" \
	"$T/two/optim-000001.safetensors" 1e-5
check "mpi_rank0_alone_writes" test "$(grep -c '^epoch ' "$T/two.log")" -eq 1

# sync_bn: statistics summed over the ranks, as one process with bn_groups 1.
"$ISIF" train "${common[@]}" --threads 2 --epochs 1 --out "$T/one-g1" > "$T/one-g1.log" 2>&1
timeout 120 "${MPIRUN[@]}" "$ISIF" train "${common[@]}" --threads 1 --sync-bn --epochs 1 \
	--out "$T/sync" > "$T/sync.log" 2>&1
check "mpi_sync_bn_says_so" grep -q "BN as one process with bn_groups 1" "$T/sync.log"
if paste -d' ' <(grep '^step ' "$T/one-g1.log") <(grep '^step ' "$T/sync.log") |
	awk '{n++; d = $4 - $8; if (d < 0) d = -d; if (d > 1e-5 * $4) exit 1} END {exit n != 5}'; then
	pass "mpi_sync_bn_step_losses_match_bn_groups_1"
else
	fail "mpi_sync_bn_step_losses_match_bn_groups_1" "$(grep -h '^step ' "$T/one-g1.log" "$T/sync.log" | tr '\n' ';')"
fi
check "mpi_sync_bn_parameters_match_bn_groups_1" $PY "$CMP" "$T/one-g1/checkpoint-latest.safetensors" \
	"$T/sync/checkpoint-latest.safetensors" 1e-5

# The kNN evaluation split across ranks (each embeds its share, rank 0
# gathers and searches) gives one process's embeddings and accuracy.
ev=(--dataset fashion-mnist --model convnet --train-subset 128 --batch-size 64 --seed 5
	--knn-k 20 --epochs 1 --quiet)
"$ISIF" train "${ev[@]}" --threads 2 --bn-groups 2 --out "$T/eval1" > "$T/eval1.log" 2>&1
timeout 120 "${MPIRUN[@]}" "$ISIF" train "${ev[@]}" --threads 1 --out "$T/eval2" > "$T/eval2.log" 2>&1
top1() { awk '/^epoch +1 /{for(i=1;i<=NF;i++) if($i=="knn_top1") print $(i+1)}' "$1"; }
if [ -n "$(top1 "$T/eval1.log")" ] && [ "$(top1 "$T/eval1.log")" = "$(top1 "$T/eval2.log")" ]; then
	pass "mpi_knn_eval_split_matches"
else
	fail "mpi_knn_eval_split_matches" "one process $(top1 "$T/eval1.log"), 2 ranks $(top1 "$T/eval2.log")"
fi
check "mpi_knn_embeddings_gathered" $PY -c "
import numpy as np, sys
for s in ('train', 'test'):
    a = np.load('$T/eval1/embeddings-%s.npy' % s); b = np.load('$T/eval2/embeddings-%s.npy' % s)
    assert a.shape == b.shape, (a.shape, b.shape)
    d = np.abs(a - b).max(); print(s, a.shape, d)
    assert d <= 1e-5, d
"

# Resume across process counts: 2 epochs straight in one process, against
# 1 epoch at one count and the second resumed at the other. Two steps an
# epoch: rounding differences grow about tenfold a step at this lr (the
# losses of steps 6–10 agree to 4e-6), and a wrong state would be far off.
res=(--dataset fashion-mnist --model convnet --train-subset 128 --batch-size 64
	--eval-every 0 --seed 3 --quiet)
"$ISIF" train "${res[@]}" --threads 2 --bn-groups 2 --epochs 2 --out "$T/straight" > /dev/null 2>&1
"$ISIF" train "${res[@]}" --threads 2 --bn-groups 2 --epochs 1 --out "$T/one-then-two" > /dev/null 2>&1
timeout 120 "${MPIRUN[@]}" "$ISIF" train "${res[@]}" --threads 1 --epochs 2 --resume \
	--out "$T/one-then-two" > "$T/r12.log" 2>&1
check "mpi_resume_at_2_says_so" grep -q "resumed from .* at epoch 1" "$T/r12.log"
check "mpi_resume_at_2_from_1" $PY "$CMP" "$T/straight/checkpoint-latest.safetensors" \
	"$T/one-then-two/checkpoint-latest.safetensors" 1e-5
timeout 120 "${MPIRUN[@]}" "$ISIF" train "${res[@]}" --threads 1 --epochs 1 \
	--out "$T/two-then-one" > /dev/null 2>&1
"$ISIF" train "${res[@]}" --threads 2 --bn-groups 2 --epochs 2 --resume \
	--out "$T/two-then-one" > "$T/r21.log" 2>&1
check "mpi_resume_at_1_says_so" grep -q "resumed from .* at epoch 1" "$T/r21.log"
check "mpi_resume_at_1_from_2" $PY "$CMP" "$T/straight/checkpoint-latest.safetensors" \
	"$T/two-then-one/checkpoint-latest.safetensors" 1e-5

# Refusals: processes without mpirun, a count mpirun did not start, BN groups
# that straddle ranks.
check_fails "mpi_processes_needs_mpirun" "$ISIF" train "${common[@]}" --processes 2 --epochs 1 --out "$T/x"
cp "$T/last.log" "$T/refused.log"
check "mpi_processes_needs_mpirun_says_so" grep -q "needs mpirun -np 2" "$T/refused.log"
check_fails "mpi_processes_must_match" timeout 60 "${MPIRUN[@]}" "$ISIF" train "${common[@]}" \
	--processes 3 --epochs 1 --out "$T/x"
cp "$T/last.log" "$T/refused.log"
check "mpi_processes_must_match_says_so" grep -q "processes is 3, but mpirun started 2" "$T/refused.log"
check_fails "mpi_bn_groups_straddle_ranks" timeout 60 "${MPIRUN[@]}" "$ISIF" train \
	--dataset fashion-mnist --model convnet --train-subset 96 --batch-size 48 --bn-groups 3 \
	--epochs 1 --quiet --out "$T/x"
cp "$T/last.log" "$T/refused.log"
check "mpi_bn_groups_straddle_ranks_says_so" grep -q "processes: 2 processes do not split the 96 rows" "$T/refused.log"
finish
