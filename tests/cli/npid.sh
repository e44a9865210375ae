#!/usr/bin/env bash
# `isif train` with method npid (the memory-bank baseline) and with
# eval.linear_probe, on real Fashion-MNIST: an npid job runs, keeps its
# memory bank beside the optimizer state and resumes exactly (exact softmax
# and NCE, at an epoch boundary and mid-epoch); the probe's top-1 lands in
# metrics.csv and `isif probe` reproduces it from the checkpoint.
. "$(dirname "$0")/../lib.sh"

FM=/usr/share/datasets/fashion-mnist
if [ ! -e "$FM/train-images-idx3-ubyte.gz" ]; then
	fail "npid_fashion_mnist_present" "install dataset-fashion-mnist (make deps)"
	finish
fi

# Resume at an epoch boundary: 2 epochs straight == 1 epoch, then resume.
small=(--dataset fashion-mnist --model convnet --method npid --train-subset 512 --batch-size 32 --threads 1 --eval-every 0 --quiet)
"$ISIF" train "${small[@]}" --epochs 2 --out "$T/straight" > "$T/s.log" 2>&1
check "npid_train_runs" test -s "$T/straight/npid-000002.safetensors"
"$ISIF" train "${small[@]}" --epochs 1 --out "$T/split" > "$T/r1.log" 2>&1
"$ISIF" train "${small[@]}" --epochs 2 --resume --out "$T/split" > "$T/r2.log" 2>&1
check "npid_resume_is_exact" cmp "$T/straight/checkpoint-latest.safetensors" "$T/split/checkpoint-latest.safetensors"
check "npid_resume_bank_is_exact" cmp "$T/straight/npid-000002.safetensors" "$T/split/npid-000002.safetensors"
check "npid_keeps_one_bank_file" test "$(ls "$T/split" | grep -c '^npid-')" -eq 1
# the loss falls from epoch 1 to 2 (the bank fills with the features)
check "npid_loss_in_metrics" awk -F, 'NR == 2 {a = $2} NR == 3 {b = $2} END {exit !(b < a)}' "$T/straight/metrics.csv"

# NCE (64 noise samples): its noise and Z survive a resume too.
nce=("${small[@]}" --npid-nce --npid-negatives 64)
"$ISIF" train "${nce[@]}" --epochs 2 --out "$T/nce-straight" > /dev/null 2>&1
"$ISIF" train "${nce[@]}" --epochs 1 --out "$T/nce-split" > /dev/null 2>&1
"$ISIF" train "${nce[@]}" --epochs 2 --resume --out "$T/nce-split" > /dev/null 2>&1
check "npid_nce_resume_is_exact" cmp "$T/nce-straight/npid-000002.safetensors" "$T/nce-split/npid-000002.safetensors"
check "npid_nce_differs_from_exact" bash -c "! cmp -s '$T/straight/npid-000002.safetensors' '$T/nce-straight/npid-000002.safetensors'"

# Mid-epoch stop (SIGTERM) and resume.
stop=(--dataset fashion-mnist --model convnet --method npid --train-subset 2048 --batch-size 32 --threads 1 --eval-every 0 --quiet)
"$ISIF" train "${stop[@]}" --epochs 2 --out "$T/stop-straight" > /dev/null 2>&1
"$ISIF" train "${stop[@]}" --epochs 2 --out "$T/stopped" > "$T/stop1.log" 2>&1 &
pid=$!
# stop inside epoch 2: once epoch 1's bank is on disk
for ((i = 0; i < 1200; i++)); do
	[ -e "$T/stopped/npid-000001.safetensors" ] && break
	kill -0 $pid 2>/dev/null || break
	sleep 0.05
done
kill -TERM $pid 2>/dev/null
wait $pid
echo "    $(grep -h stopped "$T/stop1.log" || echo 'finished before the signal')"
"$ISIF" train "${stop[@]}" --epochs 2 --resume --out "$T/stopped" > "$T/stop2.log" 2>&1
check "npid_resume_mid_epoch_is_exact" cmp "$T/stop-straight/npid-000002.safetensors" "$T/stopped/npid-000002.safetensors"

check_fails "npid_nce_more_negatives_than_bank" "$ISIF" train --dataset fashion-mnist --method npid --npid-nce --npid-negatives 4096 --train-subset 512 --out "$T/x" --quiet

# The linear probe at evaluation, and the same from `isif probe` on the checkpoint.
"$ISIF" train --dataset fashion-mnist --model convnet --train-subset 1000 --batch-size 50 --epochs 1 --seed 3 --linear-probe --out "$T/probe" > "$T/probe.log" 2>&1
check "probe_columns_in_metrics_csv" grep -q "probe_top1,probe_backbone_top1" "$T/probe/metrics.csv"
in_csv=$(awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "probe_top1") c = i} NR == 2 {print $c}' "$T/probe/metrics.csv")
"$ISIF" probe --dataset fashion-mnist --checkpoint "$T/probe/checkpoint-latest.safetensors" --train-subset 1000 > "$T/probe.out" 2>&1
from_cli=$(awk '/embedding/ {print $2; exit}' "$T/probe.out")
echo "    probe top-1 at evaluation $in_csv, from isif probe $from_cli"
check "probe_cli_matches_training" awk -v a="$in_csv" -v b="$from_cli" 'BEGIN {exit !(a != "" && a - b < 1e-4 && b - a < 1e-4 && a > 0.3)}'
check "probe_cli_reports_backbone" grep -q "backbone, 128 dims" "$T/probe.out"
finish
