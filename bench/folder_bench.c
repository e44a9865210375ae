/*
 * bench/folder_bench.c — image folders at scale (core/data/folder_*.c):
 *   folder_bench gen DIR N [SIDE] [CLASSES]
 *       writes N colour JPEGs of SIDE² (default 32, quality 90) as
 *       DIR/c<k>/<sub>/<i>.jpg over CLASSES (default 10) classes, a folder
 *       level below each class every 1000 images; seeded, with libjpeg.
 *   folder_bench load DIR THREADS [CACHE_DIR]
 *       loads DIR as isif train would (image_size = SIDE of the files is
 *       not assumed: 32) and prints "load: S s, N images, cache STATE".
 * bench/folder_bench.sh runs it: first load against cached load, 1 against
 * 2 decoding threads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <jpeglib.h>   /* after stdio.h: it uses FILE and size_t */
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "isif/data/dataset.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int mkdirs(char *path)
{
	for (char *p = path + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		int bad = mkdir(path, 0755) != 0 && errno != EEXIST;
		*p = '/';
		if (bad)
			return -1;
	}
	return mkdir(path, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* One side² RGB image: a class-tinted gradient with noise (xorshift state s). */
static void draw(unsigned char *rgb, int side, int cls, uint32_t *s)
{
	for (int y = 0; y < side; y++)
		for (int x = 0; x < side; x++)
			for (int c = 0; c < 3; c++) {
				*s ^= *s << 13;
				*s ^= *s >> 17;
				*s ^= *s << 5;
				int v = (x * 7 + y * 5) * (c + 1) + cls * 25 * (c == cls % 3) + (int)(*s & 31);
				rgb[(y * side + x) * 3 + c] = (unsigned char)(v & 0xff);
			}
}

static int write_jpeg(const char *path, const unsigned char *rgb, int side)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	struct jpeg_compress_struct cinfo;
	struct jpeg_error_mgr jerr;
	cinfo.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&cinfo);
	jpeg_stdio_dest(&cinfo, f);
	cinfo.image_width = (JDIMENSION)side;
	cinfo.image_height = (JDIMENSION)side;
	cinfo.input_components = 3;
	cinfo.in_color_space = JCS_RGB;
	jpeg_set_defaults(&cinfo);
	jpeg_set_quality(&cinfo, 90, TRUE);
	jpeg_start_compress(&cinfo, TRUE);
	while (cinfo.next_scanline < cinfo.image_height) {
		JSAMPROW row = (JSAMPROW)(rgb + cinfo.next_scanline * side * 3);
		jpeg_write_scanlines(&cinfo, &row, 1);
	}
	jpeg_finish_compress(&cinfo);
	jpeg_destroy_compress(&cinfo);
	return fclose(f);
}

static int gen(const char *dir, long n, int side, int classes)
{
	char path[4096];
	unsigned char *rgb = malloc((size_t)side * side * 3);
	long *made = malloc((size_t)classes * sizeof *made);   /* each class's last sub-folder */
	uint32_t s = 12345;
	double t0 = now_s();
	for (int k = 0; made && k < classes; k++)
		made[k] = -1;
	for (long i = 0; rgb && made && i < n; i++) {
		int cls = (int)(i % classes);
		snprintf(path, sizeof path, "%s/c%d/s%03ld", dir, cls, i / 1000);
		if (made[cls] != i / 1000 && (made[cls] = i / 1000, mkdirs(path) != 0)) {
			perror(path);
			return 1;
		}
		snprintf(path, sizeof path, "%s/c%d/s%03ld/%07ld.jpg", dir, cls, i / 1000, i);
		draw(rgb, side, cls, &s);
		if (write_jpeg(path, rgb, side) != 0) {
			perror(path);
			return 1;
		}
	}
	free(rgb);
	free(made);
	printf("gen: %ld JPEGs of %dx%d in %.1f s\n", n, side, side, now_s() - t0);
	return 0;
}

static int load(const char *dir, int threads, const char *cache)
{
	static const char *state[] = { "off", "hit", "stored", "unstored" };
	struct isif_dataset ds;
	struct isif_dataset_options o;
	struct isif_error err = {0};
	isif_dataset_options_default(&o);
	o.threads = threads;
	o.cache_dir = cache;
	double t0 = now_s();
	if (isif_dataset_load(&ds, dir, ISIF_FMT_FOLDER, &o, &err)) {
		fprintf(stderr, "load: %s\n", err.msg);
		return 1;
	}
	double t = now_s() - t0;
	/* touch every row once, as an epoch would (a hit maps lazily) */
	size_t bytes = (size_t)ds.train.n * ds.train.c * ds.train.h * ds.train.w;
	unsigned long sum = 0;
	for (size_t k = 0; k < bytes; k += 64)
		sum += ds.train.pixels[k];
	double t2 = now_s() - t0;
	printf("load: %.2f s (%.2f s with every train row read once), %lld images, %d threads, "
	       "cache %s [%lu]\n", t, t2, (long long)(ds.train.n + ds.test.n), threads,
	       state[ds.cache], sum % 10);
	isif_dataset_free(&ds);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "gen") == 0) {
		long n = atol(argv[3]);
		int side = argc > 4 ? atoi(argv[4]) : 32, classes = argc > 5 ? atoi(argv[5]) : 10;
		if (n >= 1 && n <= 10000000 && side >= 1 && side <= 4096 && classes >= 1 &&
		    classes <= 1000)
			return gen(argv[2], n, side, classes);
	}
	if (argc >= 4 && strcmp(argv[1], "load") == 0)
		return load(argv[2], atoi(argv[3]), argc > 4 ? argv[4] : NULL);
	fprintf(stderr, "usage: folder_bench gen DIR N [SIDE] [CLASSES] | load DIR THREADS [CACHE_DIR]\n");
	return 2;
}
