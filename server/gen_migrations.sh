#!/bin/sh
# server/gen_migrations.sh — writes a C file holding every migrations/NNN_*.sql
# given on the command line (in that order) as the isifd_migrations table
# declared in server/migrations.h. Run by the Makefile; output on stdout.
set -eu
echo '/* Generated from migrations/NNN_*.sql by server/gen_migrations.sh; do not edit. */'
echo '#include "migrations.h"'
echo 'const struct migration isifd_migrations[] = {'
n=0
for f in "$@"; do
	printf '\t{"%s",\n' "$(basename "$f")"
	# Each line becomes a C string literal ending in \n; \ and " escaped, ? too
	# (no trigraphs under -std=c11).
	sed -e 's/\\/\\\\/g' -e 's/?/\\?/g' -e 's/"/\\"/g' -e 's/\t/\\t/g' -e 's/^/\t "/' -e 's/$/\\n"/' "$f"
	printf '\t},\n'
	n=$((n + 1))
done
echo '};'
echo "const int isifd_n_migrations = $n;"
