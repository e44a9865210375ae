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
"$ISIF" init --model convnet --in-channels 1 --seed 1 --out "$TMP/init.safetensors" >/dev/null
base=$("$ISIF" knn --dataset fashion-mnist --checkpoint "$TMP/init.safetensors" --train-subset 2000 | awk '{print $2}')
"$ISIF" train "${common[@]}" --epochs 3 --out "$TMP/learn" > "$TMP/learn.log" 2>&1
learned=$(awk '/^epoch +3 /{for(i=1;i<=NF;i++) if($i=="knn_top1") print $(i+1)}' "$TMP/learn.log" | tr -d %)
echo "    untrained knn_top1 $base, after 3 epochs ${learned}% (convnet, 2000 images)"
if [ -n "$learned" ] && awk -v b="$base" -v l="$learned" 'BEGIN{exit !(l/100 > b + 0.03)}'; then
	pass "train_learning_beats_untrained"
else
	fail "train_learning_beats_untrained" "untrained $base, trained $learned% ($(tail -2 "$TMP/learn.log" | tr '\n' ' '))"
fi
check "train_writes_metrics_csv" test "$(wc -l < "$TMP/learn/metrics.csv")" -eq 4
check "train_writes_embeddings" test -s "$TMP/learn/embeddings-test.npy"
check "embed_dataset_split" "$ISIF" embed --checkpoint "$TMP/learn/checkpoint-latest.safetensors" --dataset fashion-mnist --split test --out "$TMP/test-emb.npy"
# 10000 × 128 float32 after a 128-byte header; equal to what training exported
check "embed_dataset_split_shape" test "$(stat -c %s "$TMP/test-emb.npy")" -eq $((128 + 10000 * 128 * 4))
check "embed_dataset_matches_training_export" cmp "$TMP/test-emb.npy" "$TMP/learn/embeddings-test.npy"
check "train_checkpoint_loads" "$ISIF" knn --dataset fashion-mnist --checkpoint "$TMP/learn/checkpoint-latest.safetensors" --train-subset 2000 --k 20

# Resume: 2 epochs straight == 1 epoch, then resume for the second (threads 1).
small=(--dataset fashion-mnist --model convnet --train-subset 512 --batch-size 32 --threads 1 --eval-every 0 --quiet)
"$ISIF" train "${small[@]}" --epochs 2 --out "$TMP/straight" > "$TMP/s.log" 2>&1
"$ISIF" train "${small[@]}" --epochs 1 --out "$TMP/split" > "$TMP/r1.log" 2>&1
"$ISIF" train "${small[@]}" --epochs 2 --resume --out "$TMP/split" > "$TMP/r2.log" 2>&1
check "train_resume_says_so" grep -q "resumed from .* at epoch 1" "$TMP/r2.log"
check "train_resume_is_exact" cmp "$TMP/straight/checkpoint-latest.safetensors" "$TMP/split/checkpoint-latest.safetensors"

# Stop with SIGTERM part-way (a mid-epoch checkpoint), resume, and end with the
# same weights as the straight run above: the position inside the epoch, the
# momentum buffers and the loss sums all survive.
stop=(--dataset fashion-mnist --model convnet --train-subset 1024 --batch-size 32 --threads 1 --eval-every 0 --quiet)
"$ISIF" train "${stop[@]}" --epochs 2 --out "$TMP/stop-straight" > /dev/null 2>&1
"$ISIF" train "${stop[@]}" --epochs 2 --out "$TMP/stopped" > "$TMP/stop1.log" 2>&1 &
pid=$!
sleep 1.5
kill -TERM $pid 2>/dev/null
wait $pid
stop_rc=$?
echo "    $(grep -h stopped "$TMP/stop1.log" || echo 'finished before the signal')"
check "train_sigterm_exits_130_with_checkpoint" test $stop_rc -eq 130 -o $stop_rc -eq 0
"$ISIF" train "${stop[@]}" --epochs 2 --resume --out "$TMP/stopped" > "$TMP/stop2.log" 2>&1
check "train_resume_mid_epoch_is_exact" cmp "$TMP/stop-straight/checkpoint-latest.safetensors" "$TMP/stopped/checkpoint-latest.safetensors"
check "train_keeps_one_optimizer_file" test "$(ls "$TMP/stopped" | grep -c '^optim-')" -eq 1

# Refusals
check_fails "train_missing_dataset" "$ISIF" train --dataset /nonexistent --epochs 1 --out "$TMP/x" --quiet
check_fails "train_unknown_model" "$ISIF" train --dataset fashion-mnist --model vgg --out "$TMP/x" --quiet
check_fails "train_bad_lr" "$ISIF" train --dataset fashion-mnist --lr -1 --out "$TMP/x" --quiet
echo '{"dataset": "fashion-mnist", "bogus": 1}' > "$TMP/bad.json"
check "train_unknown_spec_field_named" bash -c "! '$ISIF' train --spec '$TMP/bad.json' --out '$TMP/x' 2> '$TMP/err' && grep -q bogus '$TMP/err'"
check_fails "train_subset_smaller_than_batch" "$ISIF" train --dataset fashion-mnist --train-subset 10 --batch-size 64 --out "$TMP/x" --quiet
finish
