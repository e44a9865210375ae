#!/usr/bin/env bash
# tests/integration/faults.sh — isifd against broken surroundings:
#  - a full disk (the state directory on a 1.5 MiB tmpfs): the job fails
#    with a message saying so, the database passes integrity_check, the
#    daemon keeps answering, deleting the job frees the space;
#  - unreadable dataset files (no permission, a dangling link, a directory
#    where a file should be): each job fails naming the file, the daemon
#    stays up and later jobs run;
#  - a corrupt checkpoint or optimizer file under a job that resumes: that
#    job fails naming the file, the daemon stays up, the next job succeeds;
#  - a corrupt database: start-up refuses with a message and status 1;
#  - a job the daemon keeps dying under ends failed after --max-attempts.
# Needs root for the tmpfs and for dropping to `nobody` (SKIP lines
# otherwise); everything is undone in the EXIT trap.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
require_isifd faults

MNT=
faults_cleanup() {
	cleanup
	if [ -n "$MNT" ]; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	rm -rf "$T"
}
trap faults_cleanup EXIT
skip() { echo "SKIP $1 ($2)"; }

mkdata() {
	python3 -c "import sys; sys.path.insert(0, 'tests/slow'); import crashloop; crashloop.make_dataset('$1')"
}
# register STATE NAME PATH: a dataset row (POST /datasets is another part's work).
register() {
	python3 -c "import sys; sys.path.insert(0, 'tests/slow'); import crashloop; crashloop.register_dataset('$1/isifd.db', '$2', '$3')"
}
sql() { sqlite3 -cmd '.timeout 5000' "$1/isifd.db" "$2"; }
spec() { # spec DATASET EPOCHS [TRAIN_SUBSET]
	echo "{\"dataset\": \"$1\", \"model\": \"convnet\", \"epochs\": $2, \"batch_size\": 32,
	       \"train_subset\": ${3:-128}, \"threads\": 1, \"eval\": {\"every\": 0}}"
}
# submit SPEC: POST /jobs; prints the new id.
submit() {
	[ "$(post_json /jobs "$1")" = 201 ] && json "d['id']"
}
error_of() { job_field "$1" "d['error'] or ''"; }

DATA="$T/tiny"
mkdata "$DATA"

# ---- corrupt database: start-up refuses ------------------------------------------
S="$T/db-garbage"
mkdir -p "$S"
head -c 8192 /dev/urandom > "$S/isifd.db"
# Bounded: a daemon that wrongly starts must not hang the suite.
timeout $((20 * SLOW)) "$ISIFD" --listen 127.0.0.1:0 --state-dir "$S" >"$S.log" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "isifd.db: .*not a database" "$S.log"; is faults_garbage_database_refused
S="$T/db-damaged"
start_isifd "$S" || { fail faults_damaged_start; exit 1; }
stop_isifd TERM
sql "$S" "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300)
	  INSERT INTO jobs (spec, dataset, epochs, created_at, status)
	  SELECT '{\"pad\": \"' || hex(randomblob(150)) || '\"}', 'd', 1, 'now', 'succeeded' FROM c;
	  PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
# A b-tree page header in the middle of the file (4 KiB pages). The page is
# picked from the file's real size: a page past the end would only extend
# the file, which SQLite ignores.
pages=$(($(stat -c %s "$S/isifd.db") / 4096))
printf '\377%.0s' $(seq 24) | dd of="$S/isifd.db" bs=1 seek=$((pages / 2 * 4096)) conv=notrunc 2>/dev/null
t0=$(date +%s)
# Bounded: a daemon that wrongly starts must not hang the suite.
timeout $((20 * SLOW)) "$ISIFD" --listen 127.0.0.1:0 --state-dir "$S" >"$S.log" 2>&1
rc=$?
[ "$rc" = 1 ] && [ $(($(date +%s) - t0)) -lt $((10 * SLOW)) ] &&
	grep -q "database is damaged (quick_check: .*); isifd will not use it" "$S.log"; is faults_damaged_database_refused
grep -q "listening" "$S.log" && fail faults_damaged_database_never_listened || pass faults_damaged_database_never_listened

# ---- a corrupt checkpoint or optimizer file under a resuming job ----------------
S="$T/ckpt"
start_isifd "$S" --workers 1 || { fail faults_ckpt_start; exit 1; }
register "$S" tiny "$DATA"
for what in checkpoint optimizer; do
	# 30 short epochs: still running when killed after its first.
	id=$(submit "$(spec tiny 30)")
	check "faults_${what}_job_epoch_1" wait_epoch "$id" 1 60
	kill -KILL "$PID"
	wait "$PID" 2>/dev/null
	PID=
	check "faults_${what}_job_was_running" [ "$(sql "$S" "SELECT status FROM jobs WHERE id = $id")" = running ]
	rel=$(sql "$S" "SELECT checkpoint FROM jobs WHERE id = $id")
	file="$S/$rel"
	if [ "$what" = optimizer ]; then
		file="$(dirname "$file")/$(python3 -c "import sys; sys.path.insert(0, 'tests/slow'); import crashloop; print(crashloop.read_safetensors('$file')[0]['__metadata__']['optim'])")"
	fi
	# Scribble over the JSON header: the file no longer parses.
	printf 'garbage!%.0s' $(seq 8) | dd of="$file" bs=1 seek=8 conv=notrunc 2>/dev/null
	start_isifd "$S" --workers 1 || { fail "faults_${what}_restart"; exit 1; }
	check "faults_corrupt_${what}_job_fails" wait_status "$id" failed 60
	err=$(error_of "$id")
	echo "    job $id: $err"
	case $err in *"$(basename "$file")"*) pass "faults_corrupt_${what}_named" ;;
	*) fail "faults_corrupt_${what}_named" "$err" ;; esac
	check "faults_corrupt_${what}_daemon_up" healthy
done
id=$(submit "$(spec tiny 2)")
check faults_next_job_after_corrupt_files_succeeds wait_status "$id" succeeded 60
check faults_ckpt_integrity [ "$(sql "$S" "PRAGMA integrity_check")" = ok ]
stop_isifd TERM
check faults_ckpt_exit_0 [ $? = 0 ]

# ---- unreadable dataset files ------------------------------------------------------
S="$T/unreadable"
for kind in dangling isdir noperm; do
	cp -r "$DATA" "$T/ds-$kind"
done
ln -sf "$T/nowhere" "$T/ds-dangling/train-images-idx3-ubyte"
rm "$T/ds-isdir/t10k-labels-idx1-ubyte" && mkdir "$T/ds-isdir/t10k-labels-idx1-ubyte"
chmod 000 "$T/ds-noperm/train-images-idx3-ubyte"
as_nobody=()
if [ "$(id -u)" = 0 ]; then
	# Root reads anything: run the daemon as nobody for this part.
	if command -v setpriv >/dev/null; then
		as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
		mkdir -p "$S" && chown 65534:65534 "$S"
		chmod 755 "$T" "$T"/ds-* 2>/dev/null
		chmod 644 "$T"/ds-{dangling,isdir}/*-ubyte 2>/dev/null
		chmod 644 "$T"/ds-noperm/{train-labels,t10k-images,t10k-labels}-idx*-ubyte
	fi
fi
ISIFD_SAVED=$ISIFD
if [ "$(id -u)" != 0 ] || [ ${#as_nobody[@]} -gt 0 ]; then
	printf '#!/bin/sh\nexec %s "%s" "$@"\n' "${as_nobody[*]}" "$PWD/$ISIFD_SAVED" > "$T/isifd-as"
	chmod 755 "$T/isifd-as"
	ISIFD="$T/isifd-as"
	start_isifd "$S" --workers 1 || { fail faults_unreadable_start; exit 1; }
	for kind in dangling isdir noperm; do
		register "$S" "$kind" "$T/ds-$kind"
	done
	register "$S" tiny "$DATA"
	for kind in dangling isdir noperm; do
		id=$(submit "$(spec "$kind" 2)")
		check "faults_unreadable_${kind}_fails" wait_status "$id" failed 30
		err=$(error_of "$id")
		case $kind in
		dangling) want="train-images-idx3-ubyte" ;;
		isdir) want="t10k-labels-idx1-ubyte" ;;
		noperm) want="train-images-idx3-ubyte: Permission denied" ;;
		esac
		echo "    job $id: $err"
		case $err in *"$want"*) pass "faults_unreadable_${kind}_named" ;;
		*) fail "faults_unreadable_${kind}_named" "$err" ;; esac
		check "faults_unreadable_${kind}_failed_once" [ "$(sql "$S" "SELECT attempts FROM jobs WHERE id = $id")" = 1 ]
	done
	check faults_unreadable_daemon_up healthy
	id=$(submit "$(spec tiny 1)")
	check faults_unreadable_then_good_job_succeeds wait_status "$id" succeeded 60
	stop_isifd TERM
else
	skip faults_unreadable "root without setpriv cannot make a file unreadable"
fi
ISIFD=$ISIFD_SAVED

# ---- a job the daemon keeps dying under ----------------------------------------------
S="$T/attempts"
check faults_max_attempts_in_help bash -c "'$ISIFD' --help | grep -q -- '--max-attempts N'"
start_isifd "$S" --workers 1 --max-attempts 2 || { fail faults_attempts_start; exit 1; }
register "$S" tiny "$DATA"
# Fashion-MNIST, 4096 images: an epoch lasts seconds, so the kill lands in it.
id=$(submit "$(spec fashion-mnist 2 4096)")
for run in 1 2; do
	# Killed in its first epoch each time (128 batches; killed after 1).
	for ((i = 0; i < 600 * SLOW; i++)); do
		[ "$(job_field "$id" "(d['progress'] or {}).get('images_done', 0) >= 32")" = True ] && break
		sleep 0.02
	done
	kill -KILL "$PID"
	wait "$PID" 2>/dev/null
	PID=
	check "faults_attempts_run_${run}_no_epoch" [ "$(sql "$S" "SELECT epoch, attempts FROM jobs WHERE id = $id")" = "0|$run" ]
	start_isifd "$S" --workers 1 --max-attempts 2 || { fail faults_attempts_restart; exit 1; }
	[ "$run" = 1 ] && check faults_attempts_resumed_after_1 wait_status "$id" running 30
done
check faults_attempts_job_failed [ "$(job_field "$id" "d['status']")" = failed ]
err=$(error_of "$id")
echo "    job $id: $err"
case $err in *"during 2 runs of this job in a row"*"--max-attempts 2"*) pass faults_attempts_message ;;
*) fail faults_attempts_message "$err" ;; esac
check faults_attempts_logged grep -q "job $id: failed: the daemon stopped during 2 runs" "$LOG"
check faults_attempts_daemon_up healthy
stop_isifd TERM

# ---- disk full -------------------------------------------------------------------------
S="$T/full"
if [ "$(id -u)" = 0 ] && mkdir -p "$S" && mount -t tmpfs -o size=1536k,mode=0750 isifd-faults "$S"; then
	MNT=$S
	start_isifd "$S" --workers 1 || { fail faults_full_start; exit 1; }
	register "$S" tiny "$DATA"
	# One epoch's checkpoint and optimizer state take ~0.9 MB: the second
	# epoch's files (written beside the first's) do not fit.
	id=$(submit "$(spec tiny 5)")
	check faults_disk_full_job_fails wait_status "$id" failed 60
	err=$(error_of "$id")
	echo "    job $id: $err"
	case $err in *"No space left on device"* | *"disk is full"*) pass faults_disk_full_error_says_so ;;
	*) fail faults_disk_full_error_says_so "$err" ;; esac
	check faults_disk_full_daemon_up healthy
	check faults_disk_full_integrity [ "$(sql "$S" "PRAGMA integrity_check")" = ok ]
	[ "$(sql "$S" "SELECT group_concat(epoch) FROM metrics WHERE job_id = $id")" = \
	  "$(sql "$S" "SELECT epoch FROM jobs WHERE id = $id")" ]; is faults_disk_full_rows_match_epoch
	code=$(req DELETE "/jobs/$id")
	[ "$code" = 204 ] && [ ! -e "$S/jobs/$id" ]; is faults_disk_full_delete_frees_space
	id=$(submit "$(spec tiny 1)")
	check faults_disk_full_then_job_succeeds wait_status "$id" succeeded 60
	stop_isifd TERM
	check faults_disk_full_exit_0 [ $? = 0 ]
	umount "$S" && MNT=
else
	skip faults_disk_full "cannot mount a tmpfs (needs root)"
fi
finish
