#!/usr/bin/env bash
# `isif train` on an image folder with the decoded cache: the first load
# decodes and stores it, the second maps it ("dataset cache: hit", nothing
# decoded) and trains on the same bytes (the same step losses), --no-cache
# decodes again to the same losses, a touched image misses the cache, and a
# truncated cache file is rebuilt rather than trusted; with 2 MPI ranks on a
# cold cache one decodes and the other maps the file.
. "$(dirname "$0")/../lib.sh"

python3 "$(dirname "$0")/gen_shapes.py" "$T/shapes" --train 4 --test 1 --size 24 --seed 2 >/dev/null
common=(--dataset "$T/shapes" --model convnet --batch-size 32 --eval-every 0 --epochs 1
	--seed 1 --quiet --log-steps --threads 2 --image-size 24)
run() {   # run NAME [extra flags]: trains into $T/NAME, log in $T/NAME.log
	local name=$1; shift
	"$ISIF" train "${common[@]}" "$@" --out "$T/$name" > "$T/$name.log" 2>&1
}
run first --cache-dir "$T/cache"
run second --cache-dir "$T/cache"
run nocache --cache-dir "$T/cache" --no-cache
check "folder_cache_first_load_stores" grep -q "^dataset cache: stored $T/cache/folder-.*\.isifds (decoded on 2 threads)" "$T/first.log"
check "folder_cache_second_load_hits" grep -q "^dataset cache: hit $T/cache/folder-.*\.isifds (mapped, nothing decoded)" "$T/second.log"
check "folder_cache_one_file" test "$(ls "$T/cache"/*.isifds | wc -l)" -eq 1
check "folder_cache_no_cache_says_nothing" sh -c "! grep -q 'dataset cache' '$T/nocache.log'"
steps() { grep '^step ' "$T/$1.log"; }
if [ "$(steps first | wc -l)" -ge 2 ] && [ "$(steps first)" = "$(steps second)" ] &&
	[ "$(steps first)" = "$(steps nocache)" ]; then
	pass "folder_cache_same_losses_hit_or_decoded"
else
	fail "folder_cache_same_losses_hit_or_decoded" "$(paste -d' ' <(steps first) <(steps second) | tr '\n' ';')"
fi
check "folder_cache_same_dataset_line" test "$(grep '^dataset /' "$T/first.log")" = "$(grep '^dataset /' "$T/second.log")"

# a changed image (new mtime) misses; the cache then holds the new listing's file too
touch -d '2001-01-01' "$(find "$T/shapes/train" -name '*.png' | sort | head -1)"
run touched --cache-dir "$T/cache"
check "folder_cache_touched_file_misses" grep -q "^dataset cache: stored" "$T/touched.log"
run touched2 --cache-dir "$T/cache"
check "folder_cache_touched_then_hits" grep -q "^dataset cache: hit" "$T/touched2.log"

# a truncated cache file is rebuilt, and the run still trains on the right bytes
for f in "$T/cache"/*.isifds; do truncate -s 5000 "$f"; done
run truncated --cache-dir "$T/cache"
check "folder_cache_truncated_rebuilt" grep -q "^dataset cache: stored" "$T/truncated.log"
check "folder_cache_truncated_same_losses" test "$(steps truncated)" = "$(steps touched)"

# a FIFO planted under the cache file's name: not opened for reading (that
# blocks until a writer comes), removed and rebuilt
f=$(sed -n 's/^dataset cache: stored \(.*\) (decoded.*/\1/p' "$T/truncated.log")
rm -f "$f" && mkfifo "$f"
timeout 60 "$ISIF" train "${common[@]}" --cache-dir "$T/cache" --out "$T/fifo" > "$T/fifo.log" 2>&1
check "folder_cache_fifo_not_waited_on" grep -q "^dataset cache: stored $f" "$T/fifo.log"
check "folder_cache_fifo_replaced_by_file" test -f "$f"

# the default location: $XDG_CACHE_HOME/isif/datasets
XDG_CACHE_HOME="$T/xdg" "$ISIF" train "${common[@]}" --out "$T/xdg-run" > "$T/xdg.log" 2>&1
check "folder_cache_default_dir_xdg" grep -q "^dataset cache: stored $T/xdg/isif/datasets/folder-" "$T/xdg.log"
check "folder_cache_bad_bound_refused" sh -c "! '$ISIF' train ${common[*]} --cache-max-mib 0 --out '$T/bad' > '$T/bad.log' 2>&1 && grep -q 'cache-max-mib' '$T/bad.log'"

# MPI: two ranks load the folder at once with a cold cache; they serialise on
# the key's lock, so one decodes and stores and the other maps its file.
if command -v mpirun >/dev/null && ldd "$ISIF" | grep -q libmpi; then
	timeout 120 mpirun --allow-run-as-root --oversubscribe --mca btl tcp,self \
		--mca btl_tcp_if_include lo --mca oob_tcp_if_include lo -np 2 \
		"$ISIF" train "${common[@]}" --cache-dir "$T/cache-mpi" \
		--out "$T/mpi" > "$T/mpi.log" 2>&1
	check "folder_cache_mpi_one_rank_stores" test "$(grep -c 'dataset cache: stored' "$T/mpi.log")" -eq 1
	check "folder_cache_mpi_other_rank_maps" test "$(grep -c 'dataset cache: hit' "$T/mpi.log")" -eq 1
	check "folder_cache_mpi_one_file" test "$(ls "$T/cache-mpi"/*.isifds | wc -l)" -eq 1
fi
finish
