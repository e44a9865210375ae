/*
 * tests/fuzz/fuzz_npy.c — the .npy reader (isif_npy_read: format 1.0/2.0
 * headers, '<f4' C order) on a file holding the input. Invariants: no
 * crash; an accepted array has 0..8 dimensions, non-negative extents, and
 * exactly as many floats as its shape says (the last one is read).
 */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "isif/base/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[256];
	struct isif_error err = {0};
	struct isif_npy a;
	fuzz_write("in.npy", data, size);
	snprintf(path, sizeof path, "%s/in.npy", fuzz_dir());
	if (fuzz_note("npy", isif_npy_read(path, &a, &err), &err) != ISIF_OK) {
		if (!err.msg[0])
			abort();
		return 0;
	}
	if (a.ndim < 0 || a.ndim > ISIF_NPY_MAX_DIMS)
		abort();
	int64_t n = 1;
	for (int i = 0; i < a.ndim; i++) {
		if (a.shape[i] < 0)
			abort();
		n *= a.shape[i];
	}
	if (n > 0)
		(void)*(volatile const float *)&a.data[n - 1];
	free(a.data);
	return 0;
}
