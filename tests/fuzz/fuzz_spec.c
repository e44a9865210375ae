/*
 * tests/fuzz/fuzz_spec.c — the job-spec parser (isif_spec_parse) on
 * arbitrary bytes: bit 0 of the first byte says whether "dataset" is
 * required (the daemon requires it), the rest is the JSON text. Invariants: it never crashes; a rejected spec has a
 * non-empty message; an accepted one that names a dataset has a canonical
 * JSON that parses again and prints the same (parse(to_json(s)) == s).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "isif/base/common.h"
#include "isif/train/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	char *text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	struct isif_job_spec spec, again;
	struct isif_error err = {0};
	isif_spec_default(&spec);
	/* The first byte picks whether "dataset" is required, as the daemon does. */
	bool need_dataset = data[0] & 1;
	if (fuzz_note("spec", isif_spec_parse(&spec, text, need_dataset, &err), &err) != ISIF_OK) {
		if (!err.msg[0] || strlen(err.msg) >= ISIF_ERR_LEN)
			abort();
		free(text);
		return 0;
	}
	if (!spec.dataset[0]) {
		/* Without a dataset (allowed only when not required) the canonical
		 * JSON says "dataset": "", which a full parse refuses; the CLI
		 * fills the dataset in before it writes a spec anywhere. */
		free(text);
		return 0;
	}
	char *json = isif_spec_to_json(&spec);
	if (!json)
		abort();
	isif_spec_default(&again);
	if (isif_spec_parse(&again, json, need_dataset, &err) != ISIF_OK)
		abort(); /* the canonical form must be accepted */
	char *json2 = isif_spec_to_json(&again);
	if (!json2 || strcmp(json, json2) != 0)
		abort(); /* and be a fixed point */
	free(json2);
	free(json);
	free(text);
	return 0;
}
