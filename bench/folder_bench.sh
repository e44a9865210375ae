#!/usr/bin/env bash
# bench/folder_bench.sh — an image folder of N generated JPEGs (32×32, 10
# classes, a sub-folder level per 1000 images; build/folder_bench gen, libjpeg)
# loaded as isif train loads it: decoded on 1 then 2 threads without a cache,
# then with the decoded cache: the first load (decode + store) and a second
# (a hit: the file mapped). Each load also reads every train row once, the
# figure in brackets, since a hit maps lazily. The page cache is not dropped
# (a shared machine): the JPEGs are warm in memory for every decode.
# Prints figures; never fails on speed.
#   BUILD=build N=100000 bash bench/folder_bench.sh
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${N:-100000}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
make -s "$BUILD/folder_bench" >/dev/null
uptime
"$BUILD/folder_bench" gen "$TMP/folder" "$N"
echo "folder: $(du -sh "$TMP/folder" | cut -f1) on disk"
"$BUILD/folder_bench" load "$TMP/folder" 1
"$BUILD/folder_bench" load "$TMP/folder" 2
"$BUILD/folder_bench" load "$TMP/folder" 2 "$TMP/cache"
"$BUILD/folder_bench" load "$TMP/folder" 2 "$TMP/cache"
"$BUILD/folder_bench" load "$TMP/folder" 1 "$TMP/cache"
echo "cache: $(du -sh "$TMP/cache" | cut -f1) ($(ls "$TMP/cache" | tr '\n' ' '))"
uptime
