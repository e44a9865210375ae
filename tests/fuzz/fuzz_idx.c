/*
 * tests/fuzz/fuzz_idx.c — the IDX reader (MNIST / Fashion-MNIST layout,
 * gzip or plain) through isif_dataset_load. The input is split
 * (fuzz_split) into the four files train-images-idx3-ubyte,
 * train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
 * t10k-labels-idx1-ubyte; zlib reads gzip or plain data transparently, so
 * both paths are fuzzed. Invariants: no crash; success means a consistent
 * dataset (labels in range, non-empty train split).
 */
#include <stdio.h>

#include "fuzz_util.h"
#include "isif/data/dataset.h"

static const char *const files[4] = {
	"idx/train-images-idx3-ubyte", "idx/train-labels-idx1-ubyte",
	"idx/t10k-images-idx3-ubyte", "idx/t10k-labels-idx1-ubyte",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *part[4];
	size_t len[4];
	char path[256];
	struct isif_error err = {0};
	fuzz_split(data, size, 4, part, len);
	for (int i = 0; i < 4; i++)
		fuzz_write(files[i], part[i], len[i]);
	snprintf(path, sizeof path, "%s/idx", fuzz_dir());
	struct isif_dataset ds;
	if (fuzz_note("idx", isif_dataset_load(&ds, path, ISIF_FMT_IDX, NULL, &err), &err) == ISIF_OK) {
		fuzz_check_dataset(&ds);
		isif_dataset_free(&ds);
	}
	return 0;
}
