#!/usr/bin/env bash
# `isif train` on real Fashion-MNIST (Debian's dataset-fashion-mnist):
# learning lifts kNN accuracy above the untrained network's, resume is exact,
# and bad datasets or specs are refused with a message.
. "$(dirname "$0")/../lib.sh"

FM=/usr/share/datasets/fashion-mnist
if [ ! -e "$FM/train-images-idx3-ubyte.gz" ]; then
	fail "train_fashion_mnist_present" "install dataset-fashion-mnist (make deps)"
	finish
fi

# Learning: convnet, 2,000-image subset, 3 epochs, versus the same network untrained
# (same seed, so the same initial weights) under the same kNN protocol and gallery.
common=(--dataset fashion-mnist --model convnet --train-subset 2000 --batch-size 64 --seed 1 --quiet)
"$ISIF" init --model convnet --in-channels 1 --seed 1 --out "$T/init.safetensors" >/dev/null
base=$("$ISIF" knn --dataset fashion-mnist --checkpoint "$T/init.safetensors" --train-subset 2000 | awk '{print $2}')
"$ISIF" train "${common[@]}" --epochs 3 --out "$T/learn" > "$T/learn.log" 2>&1
learned=$(awk '/^epoch +3 /{for(i=1;i<=NF;i++) if($i=="knn_top1") print $(i+1)}' "$T/learn.log" | tr -d %)
echo "    untrained knn_top1 $base, after 3 epochs ${learned}% (convnet, 2000 images)"
if [ -n "$learned" ] && awk -v b="$base" -v l="$learned" 'BEGIN{exit !(l/100 > b + 0.03)}'; then
	pass "train_learning_beats_untrained"
else
	fail "train_learning_beats_untrained" "untrained $base, trained $learned% ($(tail -2 "$T/learn.log" | tr '\n' ' '))"
fi
check "train_writes_metrics_csv" test "$(wc -l < "$T/learn/metrics.csv")" -eq 4
check "train_writes_embeddings" test -s "$T/learn/embeddings-test.npy"
check "embed_dataset_split" "$ISIF" embed --checkpoint "$T/learn/checkpoint-latest.safetensors" --dataset fashion-mnist --split test --out "$T/test-emb.npy"
# 10000 × 128 float32 after a 128-byte header; equal to what training exported
check "embed_dataset_split_shape" test "$(stat -c %s "$T/test-emb.npy")" -eq $((128 + 10000 * 128 * 4))
check "embed_dataset_matches_training_export" cmp "$T/test-emb.npy" "$T/learn/embeddings-test.npy"
check "train_checkpoint_loads" "$ISIF" knn --dataset fashion-mnist --checkpoint "$T/learn/checkpoint-latest.safetensors" --train-subset 2000 --k 20

# Resume: 2 epochs straight == 1 epoch, then resume for the second (threads 1).
small=(--dataset fashion-mnist --model convnet --train-subset 512 --batch-size 32 --threads 1 --eval-every 0 --quiet)
"$ISIF" train "${small[@]}" --epochs 2 --out "$T/straight" > "$T/s.log" 2>&1
"$ISIF" train "${small[@]}" --epochs 1 --out "$T/split" > "$T/r1.log" 2>&1
"$ISIF" train "${small[@]}" --epochs 2 --resume --out "$T/split" > "$T/r2.log" 2>&1
check "train_resume_says_so" grep -q "resumed from .* at epoch 1" "$T/r2.log"
check "train_resume_is_exact" cmp "$T/straight/checkpoint-latest.safetensors" "$T/split/checkpoint-latest.safetensors"
# the resumed run's metrics.csv keeps epoch 1 (epoch, loss, lr as the straight run's)
check "train_resume_keeps_earlier_epochs" bash -c "diff <(cut -d, -f1,2,5 '$T/straight/metrics.csv') <(cut -d, -f1,2,5 '$T/split/metrics.csv') && test \$(wc -l < '$T/split/metrics.csv') -eq 3"

# Stop with SIGTERM part-way (a mid-epoch checkpoint), resume, and end with the
# same weights as the straight run above: the position inside the epoch, the
# momentum buffers and the loss sums all survive.
stop=(--dataset fashion-mnist --model convnet --train-subset 1024 --batch-size 32 --threads 1 --eval-every 0 --quiet)
"$ISIF" train "${stop[@]}" --epochs 2 --out "$T/stop-straight" > /dev/null 2>&1
"$ISIF" train "${stop[@]}" --epochs 2 --out "$T/stopped" > "$T/stop1.log" 2>&1 &
pid=$!
sleep 1.5
kill -TERM $pid 2>/dev/null
wait $pid
stop_rc=$?
echo "    $(grep -h stopped "$T/stop1.log" || echo 'finished before the signal')"
check "train_sigterm_exits_130_with_checkpoint" test $stop_rc -eq 130 -o $stop_rc -eq 0
"$ISIF" train "${stop[@]}" --epochs 2 --resume --out "$T/stopped" > "$T/stop2.log" 2>&1
check "train_resume_mid_epoch_is_exact" cmp "$T/stop-straight/checkpoint-latest.safetensors" "$T/stopped/checkpoint-latest.safetensors"
check "train_keeps_one_optimizer_file" test "$(ls "$T/stopped" | grep -c '^optim-')" -eq 1

# Refusals
check_fails "train_missing_dataset" "$ISIF" train --dataset /nonexistent --epochs 1 --out "$T/x" --quiet
check_fails "train_unknown_model" "$ISIF" train --dataset fashion-mnist --model vgg --out "$T/x" --quiet
check_fails "train_bad_lr" "$ISIF" train --dataset fashion-mnist --lr -1 --out "$T/x" --quiet
echo '{"dataset": "fashion-mnist", "bogus": 1}' > "$T/bad.json"
check "train_unknown_spec_field_named" bash -c "! '$ISIF' train --spec '$T/bad.json' --out '$T/x' 2> '$T/err' && grep -q bogus '$T/err'"
check_fails "train_subset_smaller_than_batch" "$ISIF" train --dataset fashion-mnist --train-subset 10 --batch-size 64 --out "$T/x" --quiet
finish
