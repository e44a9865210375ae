/*
 * tests/fuzz/fuzz_util.h — helpers shared by the libFuzzer targets in
 * tests/fuzz/fuzz_*.c: a private scratch directory on tmpfs (removed at
 * exit), writing one fuzz input (or one part of it) to a named file, and
 * splitting an input into several files.
 *
 * Every target defines LLVMFuzzerTestOneInput. Built with clang
 * -fsanitize=fuzzer it is a fuzzer (make fuzz); built with replay_main.c by
 * any compiler it replays saved inputs (the seed corpora and every crasher
 * ever found) in make test. A target aborts on a broken invariant, so a
 * replay that returns is a pass.
 */
#ifndef ISIF_FUZZ_UTIL_H
#define ISIF_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "isif/base/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The scratch directory (created on first use, removed at exit). */
const char *fuzz_dir(void);

/* Writes len bytes to fuzz_dir()/name (creating sub-directories named in
 * it); aborts when the scratch file system fails, which is not a finding. */
void fuzz_write(const char *name, const void *data, size_t len);

/*
 * Splits an input into n parts: parts 0..n-2 each start with a 32-bit
 * little-endian length (clamped to what is left), part n-1 is the rest.
 * Lengths may be 0; part[i] points into data.
 */
void fuzz_split(const uint8_t *data, size_t size, int n, const uint8_t **part,
		size_t *len);

/* With FUZZ_VERBOSE set, prints "what: ok" or "what: <err>" (to check that
 * seeds reach the paths they are meant for). Returns rc. */
enum isif_rc fuzz_note(const char *what, enum isif_rc rc, const struct isif_error *err);

struct isif_dataset;

/* Aborts unless a loaded dataset keeps the readers' promises: a non-empty
 * train split, sane shapes, labels in [-1, num_classes), and pixel buffers
 * of n·c·h·w bytes (the last byte is read, so ASan sees a short buffer). */
void fuzz_check_dataset(const struct isif_dataset *ds);

#endif
