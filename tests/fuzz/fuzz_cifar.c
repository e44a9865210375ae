/*
 * tests/fuzz/fuzz_cifar.c — the CIFAR-10 and CIFAR-100 binary readers
 * through isif_dataset_load. The first input byte picks the kind (bit 0:
 * CIFAR-100); the rest is split (fuzz_split) into the kind's files:
 * CIFAR-10: data_batch_1..5.bin, test_batch.bin, batches.meta.txt;
 * CIFAR-100: train.bin, test.bin, fine_label_names.txt. Invariants as
 * fuzz_check_dataset.
 */
#include <stdio.h>

#include "fuzz_util.h"
#include "isif/data/dataset.h"

static const char *const files10[7] = {
	"c10/data_batch_1.bin", "c10/data_batch_2.bin", "c10/data_batch_3.bin",
	"c10/data_batch_4.bin", "c10/data_batch_5.bin", "c10/test_batch.bin",
	"c10/batches.meta.txt",
};
static const char *const files100[3] = {
	"c100/train.bin", "c100/test.bin", "c100/fine_label_names.txt",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool hundred = data[0] & 1;
	const char *const *files = hundred ? files100 : files10;
	int n = hundred ? 3 : 7;
	const uint8_t *part[7];
	size_t len[7];
	char path[256];
	struct isif_error err = {0};
	fuzz_split(data + 1, size - 1, n, part, len);
	for (int i = 0; i < n; i++)
		fuzz_write(files[i], part[i], len[i]);
	snprintf(path, sizeof path, "%s/%s", fuzz_dir(), hundred ? "c100" : "c10");
	struct isif_dataset ds;
	int rc = isif_dataset_load(&ds, path, hundred ? ISIF_FMT_CIFAR100 : ISIF_FMT_CIFAR10,
				   NULL, &err);
	if (fuzz_note(hundred ? "cifar100" : "cifar10", rc, &err) == ISIF_OK) {
		fuzz_check_dataset(&ds);
		isif_dataset_free(&ds);
	}
	return 0;
}
