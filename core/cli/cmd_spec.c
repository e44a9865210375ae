/*
 * core/cli/cmd_spec.c — the job spec's field table (isif_spec_field) in words:
 * the spec flags of `isif train --help`, and `isif spec-doc`, the markdown
 * table of docs/API.md's "Job spec" section (tests/cli/spec_doc.sh fails
 * when the two differ). Both print the same default and bounds texts, made
 * here from the table; nothing about a field is written in this file.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "isif/train/spec.h"

/* A bound as people write it: 2^53 rather than 9007199254740992. */
static void bound_text(double x, char *out, size_t cap)
{
	int e;
	if (x >= 65536 && frexp(x, &e) == 0.5)
		snprintf(out, cap, "2^%d", e - 1);
	else
		snprintf(out, cap, "%.15g", x);
}

/* "lo..hi" for integers, "(lo, hi]" style for numbers. */
static void range_text(const struct isif_spec_field *f, bool integer, char *out, size_t cap)
{
	char lo[32], hi[32];
	bound_text(f->lo, lo, sizeof lo);
	bound_text(f->hi, hi, sizeof hi);
	if (integer)
		snprintf(out, cap, "%s..%s", lo, hi);
	else
		snprintf(out, cap, "%c%s, %s%c", (f->rules & ISIF_SPEC_LO_OPEN) ? '(' : '[', lo, hi,
			 (f->rules & ISIF_SPEC_HI_OPEN) ? ')' : ']');
}

/* `"a", "b" or "c"` */
static void names_text(const char *const *names, char *out, size_t cap)
{
	out[0] = '\0';
	for (int i = 0; names[i]; i++) {
		size_t n = strlen(out);
		const char *sep = i == 0 ? "" : names[i + 1] ? ", " : " or ";
		snprintf(out + n, cap - n, "%s\"%s\"", sep, names[i]);
	}
}

/* The allowed values of a field in words, from its kind and bounds
 * ("1..10000", "(0, 10]", "\"step\" or \"cosine\""). */
static void allowed_text(const struct isif_spec_field *f, char *out, size_t cap)
{
	char range[96], lo[32], hi[32];
	const char *order = (f->rules & ISIF_SPEC_ASCENDING) ? "ascending "
			    : (f->rules & ISIF_SPEC_DISTINCT) ? "distinct " : "";
	switch (f->kind) {
	case ISIF_SPEC_INT:
		range_text(f, true, out, cap);
		return;
	case ISIF_SPEC_NUMBER:
		range_text(f, false, out, cap);
		return;
	case ISIF_SPEC_BOOL:
		snprintf(out, cap, "true or false");
		return;
	case ISIF_SPEC_STRING:
		if (f->names) {
			names_text(f->names, out, cap);
		} else {
			range_text(f, true, range, sizeof range);
			snprintf(out, cap, "%s bytes", range);
		}
		return;
	case ISIF_SPEC_PAIR:
		bound_text(f->lo, lo, sizeof lo);
		bound_text(f->hi, hi, sizeof hi);
		snprintf(out, cap, "[a, b] with %s %s a ≤ b %s %s", lo,
			 (f->rules & ISIF_SPEC_LO_OPEN) ? "<" : "≤",
			 (f->rules & ISIF_SPEC_HI_OPEN) ? "<" : "≤", hi);
		return;
	case ISIF_SPEC_INT_LIST:
		range_text(f, true, range, sizeof range);
		snprintf(out, cap, "at most %d %sintegers in %s", f->max_len, order, range);
		return;
	case ISIF_SPEC_NUMBER_LIST:
		range_text(f, false, range, sizeof range);
		snprintf(out, cap, "at most %d %snumbers in %s", f->max_len, order, range);
		return;
	case ISIF_SPEC_OBJECT:
		snprintf(out, cap, "%s", (f->rules & ISIF_SPEC_NULLABLE) ? "null or an object"
									: "an object");
		return;
	}
	snprintf(out, cap, "?");
}

/* What a flag's value looks like on the command line. */
static const char *metavar(const struct isif_spec_field *f)
{
	switch (f->kind) {
	case ISIF_SPEC_INT: return "N";
	case ISIF_SPEC_NUMBER: return "X";
	case ISIF_SPEC_STRING: return "S";
	case ISIF_SPEC_PAIR: return "A,B";
	case ISIF_SPEC_INT_LIST: return "N,N,...";
	case ISIF_SPEC_NUMBER_LIST: return "X,X,...";
	default: return "";
	}
}

void cli_spec_flags_help(FILE *out)
{
	const struct isif_spec_field *f;
	char head[64], allowed[160];
	for (int i = 0; (f = isif_spec_field(i)); i++) {
		if (!f->flag)
			continue;
		snprintf(head, sizeof head, "--%s %s", f->flag, metavar(f));
		fprintf(out, "  %-24s %s\n", head, f->help);
		if (f->kind == ISIF_SPEC_BOOL) {
			/* A switch sets the field to the opposite of its default. */
			fprintf(out, "  %-24s sets %s to %s (default %s)\n", "", f->path,
				strcmp(f->def, "true") == 0 ? "false" : "true", f->def);
			continue;
		}
		allowed_text(f, allowed, sizeof allowed);
		fprintf(out, "  %-24s %s: %s; default %s\n", "", f->path, allowed,
			f->def ? f->def : "none (required)");
	}
}

int cmd_spec_doc(int argc, char **argv)
{
	struct cli_args a;
	const struct isif_spec_field *f;
	char allowed[160];
	if (cli_args_init(&a, argc, argv))
		return 1;
	if (cli_help(&a)) {
		printf("usage: isif spec-doc\n"
		       "Prints the job spec's fields as the markdown table of docs/API.md\n"
		       "(\"Job spec\"), generated from the table the parser reads.\n");
		cli_args_free(&a);
		return 0;
	}
	int rc = cli_check_unused(&a, "spec-doc");
	cli_args_free(&a);
	if (rc)
		return 2;
	printf("| field | default | allowed | what it does |\n|---|---|---|---|\n");
	for (int i = 0; (f = isif_spec_field(i)); i++) {
		allowed_text(f, allowed, sizeof allowed);
		printf("| `%s` | %s%s%s | %s | %s |\n", f->path, f->def ? "`" : "",
		       f->def ? f->def : (f->kind == ISIF_SPEC_OBJECT ? "" : "required"),
		       f->def ? "`" : "", allowed, f->help);
	}
	return 0;
}
