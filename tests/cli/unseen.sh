#!/usr/bin/env bash
# tests/cli/unseen.sh — the unseen-category protocol with `isif train` on a
# generated folder dataset (tests/cli/gen_shapes.py: 20 classes of shapes and
# textures, 32×32 PNG): trained on the first half of the classes by sorted
# name, Recall@1 and NMI on the held-out half rise above the untrained
# network's (`isif unseen` on `isif init`'s checkpoint of the same seed), and
# `isif unseen` on the trained checkpoint agrees with the last evaluation.
#
# Sanitized builds (SANITIZED=1) run the convnet many times slower, so there
# the run is 2 epochs on 30 images per class and the learning comparison is
# left to the release build; every other case runs in both.
. "$(dirname "$0")/../lib.sh"

PER=100 EPOCHS=10
[ -n "${SANITIZED:-}" ] && PER=30 EPOCHS=2
python3 "$(dirname "$0")/gen_shapes.py" "$T/shapes" --train $PER --test 20 --seed 1
check "unseen_dataset_generated" test "$(ls "$T/shapes/train" | wc -l)" -eq 20

"$ISIF" init --model convnet --in-channels 3 --seed 1 --out "$T/init.safetensors" >/dev/null
"$ISIF" unseen --dataset "$T/shapes" --checkpoint "$T/init.safetensors" --simhist "$T/sim0.json" > "$T/base.log" 2>&1
check "unseen_cli_untrained" grep -q "200 images of 10 held-out classes" "$T/base.log"
field() { awk -v k="$1" '{for(i=1;i<=NF;i++) if($i==k) print $(i+1)}' "$2" | tail -1; }
b_r1=$(field recall_at_1 "$T/base.log")
b_nmi=$(field nmi "$T/base.log")

"$ISIF" train --dataset "$T/shapes" --model convnet --epochs $EPOCHS --batch-size 64 --lr 0.05 \
	--crop-scale 0.5,1 --class-split first_half --seed 1 --quiet --out "$T/run" > "$T/train.log" 2>&1
check "unseen_train_logs_the_split" grep -q "classes.split first_half: training on 10 classes (" "$T/train.log"
csv="$T/run/metrics.csv"
col() { awk -F, -v k="$1" 'NR==1{for(i=1;i<=NF;i++) if($i==k) c=i} NR>1{v=$c} END{print v}' "$csv"; }
r1=$(col recall_at_1)
nmi=$(col nmi)
echo "    held-out classes: untrained R@1 $b_r1 NMI $b_nmi; after $EPOCHS epochs R@1 $r1 NMI $nmi"
if [ -n "${SANITIZED:-}" ]; then
	check "unseen_sanitized_metrics_in_range" awk -v l="$r1" -v n="$nmi" 'BEGIN{exit !(l > 0 && l <= 1 && n >= 0 && n <= 1)}'
elif [ -n "$r1" ] && awk -v b="$b_r1" -v l="$r1" -v bn="$b_nmi" -v n="$nmi" \
	'BEGIN{exit !(l > b + 0.08 && n > bn + 0.08)}'; then
	pass "unseen_learning_beats_untrained"
else
	fail "unseen_learning_beats_untrained" "untrained R@1 $b_r1 NMI $b_nmi, trained R@1 $r1 NMI $nmi ($(tail -2 "$T/train.log" | tr '\n' ' '))"
fi
check "unseen_csv_every_epoch" test "$(awk -F, 'NR>1 && $8 != "" && $15 != ""' "$csv" | wc -l)" -eq $EPOCHS
# the same embeddings, pairs and k-means seed as the trainer's last evaluation
"$ISIF" unseen --dataset "$T/shapes" --checkpoint "$T/run/checkpoint-latest.safetensors" \
	--simhist "$T/sim.json" > "$T/after.log" 2>&1
a_r1=$(field recall_at_1 "$T/after.log")
check "unseen_cli_matches_training" awk -v a="$a_r1" -v b="$r1" 'BEGIN{exit !(a - b < 0.00051 && b - a < 0.00051)}'
check "unseen_cli_simhist_json" python3 -c "
import json, sys
d = json.load(open('$T/sim.json'))
s, x = d['same'], d['different']
assert d['bins'] == 100 and len(s['counts']) == 100 and len(x['counts']) == 100
assert sum(s['counts']) == s['pairs'] == 10 * 20 * 19 // 2, s['pairs']
assert sum(x['counts']) == x['pairs'] == 200 * 199 // 2 - 1900, x['pairs']
assert s['mean'] > x['mean']
"
# isif train keeps each evaluated epoch's histograms, the last equal to isif unseen's
check "unseen_train_similarity_jsonl" python3 -c "
import json
rows = [json.loads(l) for l in open('$T/run/similarity.jsonl')]
assert [r['epoch'] for r in rows] == list(range(1, $EPOCHS + 1)), [r['epoch'] for r in rows]
last, cli = rows[-1], json.load(open('$T/sim.json'))
assert last['same']['counts'] == cli['same']['counts'] and last['different']['counts'] == cli['different']['counts']
assert abs(last['same']['mean'] - cli['same']['mean']) < 1e-6
"
check_fails "unseen_cli_bad_split" "$ISIF" unseen --dataset "$T/shapes" --checkpoint "$T/init.safetensors" --class-split middle
check_fails "unseen_train_bad_split" "$ISIF" train --dataset "$T/shapes" --class-split middle --out "$T/bad"
finish
