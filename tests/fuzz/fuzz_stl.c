/*
 * tests/fuzz/fuzz_stl.c — the STL-10 binary reader through
 * isif_dataset_load. The first input byte sets stl_unlabeled (bit 0); the
 * rest is split (fuzz_split) into train_X.bin, train_y.bin, test_X.bin,
 * test_y.bin, unlabeled_X.bin and class_names.txt. An STL image is 27,648
 * bytes, so make fuzz gives this target a larger -max_len. Invariants as
 * fuzz_check_dataset.
 */
#include <stdio.h>

#include "fuzz_util.h"
#include "isif/data/dataset.h"

static const char *const files[6] = {
	"stl/train_X.bin", "stl/train_y.bin", "stl/test_X.bin", "stl/test_y.bin",
	"stl/unlabeled_X.bin", "stl/class_names.txt",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *part[6];
	size_t len[6];
	char path[256];
	struct isif_error err = {0};
	fuzz_split(data + 1, size - 1, 6, part, len);
	for (int i = 0; i < 6; i++)
		fuzz_write(files[i], part[i], len[i]);
	snprintf(path, sizeof path, "%s/stl", fuzz_dir());
	struct isif_dataset_options opt;
	isif_dataset_options_default(&opt);
	opt.stl_unlabeled = data[0] & 1;
	struct isif_dataset ds;
	if (fuzz_note("stl", isif_dataset_load(&ds, path, ISIF_FMT_STL10, &opt, &err), &err) ==
	    ISIF_OK) {
		fuzz_check_dataset(&ds);
		isif_dataset_free(&ds);
	}
	return 0;
}
