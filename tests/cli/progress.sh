#!/usr/bin/env bash
# `isif train`'s progress line on a terminal (script(1) gives it one): it
# names the phase, training and then evaluating, with the evaluation's own
# progress over the gallery and test images and an ETA that counts the
# evaluations still to come (it used to sit at 100% with "ETA 5s" while kNN
# ran). Without a terminal there is no progress line.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh

if ! command -v script >/dev/null; then
	fail progress_script_present "script(1) (util-linux) is needed to give isif a terminal"
	finish
fi
python3 -c "import sys; sys.path.insert(0, 'tests/slow'); import crashloop; crashloop.make_dataset('$T/tiny')"
# 512 train + 64 test images; 2 epochs, evaluation after each
args="--dataset $T/tiny --model convnet --epochs 2 --batch-size 64 --train-subset 256 --out $T/run"
script -qec "$ISIF train $args" /dev/null > "$T/tty.out" 2>&1
rc=$?
check progress_run_succeeds [ "$rc" = 0 ]
tr '\r' '\n' < "$T/tty.out" | sed 's/\x1b\[K//g' | grep '^epoch [0-9]*/2 ' > "$T/lines"
echo "    $(grep -m1 evaluating "$T/lines")"
check progress_names_training grep -q '^epoch 1/2 training \[' "$T/lines"
check progress_names_evaluating grep -q '^epoch 1/2 evaluating \[' "$T/lines"
# the evaluation counts its images: 256 gallery + 64 test
check progress_evaluation_counts_images grep -q '^epoch 1/2 evaluating \[=*\] 320/320 ' "$T/lines"
# within epoch 1, every training line comes before the first evaluating one
check progress_phases_in_order awk '
	/^epoch 1\/2 evaluating/ { ev = 1 }
	/^epoch 1\/2 training/ && ev { bad = 1 }
	END { exit bad || !ev }' "$T/lines"
# (trainer_reports_the_evaluation_phase checks the ETA's value)
check progress_eta_numbers_or_unknown bash -c "! grep -v 'ETA [0-9?]' '$T/lines' | grep -q ."
# no terminal, no progress line
"$ISIF" train $args --epochs 1 > "$T/plain.out" 2>&1
check progress_none_without_a_terminal bash -c "! grep -q 'training \[' '$T/plain.out'"
finish
