#!/usr/bin/env bash
# docs/API.md's job-spec table is the one `isif spec-doc` prints from the
# spec's field table (core/train/spec.c), so the docs cannot drift from
# the parser; `isif train --help` lists the same fields as flags.
. "$(dirname "$0")/../lib.sh"
API=$(dirname "$0")/../../docs/API.md

# The table rows between the spec-table markers of a markdown file.
doc_table() { sed -n '/^<!-- spec-table/,/^<!-- end spec-table/p' "$1" | grep '^|'; }

"$ISIF" spec-doc > "$T/generated.md"
check spec_doc_prints_a_table test "$(grep -c '^| `' "$T/generated.md")" -ge 38
if doc_table "$API" | diff -u - "$T/generated.md" > "$T/drift.diff"; then
	pass spec_doc_api_md_matches_the_table
else
	fail spec_doc_api_md_matches_the_table "docs/API.md differs from $ISIF spec-doc (paste its output between the spec-table markers)"
	sed 's/^/    /' "$T/drift.diff"
fi
# The comparison itself catches a changed row (a checker that is checked).
sed 's/^| `epochs` | `20` |/| `epochs` | `30` |/' "$API" > "$T/planted.md"
if doc_table "$T/planted.md" | cmp -s - "$T/generated.md"; then
	fail spec_doc_check_catches_drift "a planted change went unnoticed"
else
	pass spec_doc_check_catches_drift
fi

# --help: a flag for every field but the objects and the dataset (isif
# train's own --dataset), each with its default and bounds.
"$ISIF" train --help > "$T/help.txt"
fields=$(grep -c '^| `' "$T/generated.md")
objects=$(grep -cE '^\| `[a-z_.]+` \| [^|]* \| (null or )?an object \|' "$T/generated.md")
flags=$(sed -n '/^Spec flags/,$p' "$T/help.txt" | grep -c '^  --')
check spec_doc_train_help_flags test "$flags" -eq $((fields - objects - 1)) -a "$objects" -eq 7
check spec_doc_train_help_epochs grep -q '^ *epochs: 1\.\.10000; default 20$' "$T/help.txt"
check spec_doc_train_help_switch grep -q '^ *sets augment.crop to false (default true)$' "$T/help.txt"
finish
