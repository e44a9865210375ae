/*
 * core/eval/ann_faiss.cpp — isif/eval/ann.h on FAISS (Debian libfaiss-dev
 * 1.7.3): IndexHNSWFlat and IndexIVFFlat with inner product. Every entry
 * point catches all C++ exceptions and answers an isif_rc with a message.
 *
 * Threads: FAISS parallelises with OpenMP. omp_set_num_threads changes the
 * calling thread's own setting only, so the build sets it to its `threads`
 * and a search to 1 on whatever thread calls it: no process-wide state.
 */
extern "C" {
#include "isif/base/common.h"
#include "isif/eval/eval.h"
}
#include "isif/eval/ann.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <unistd.h>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>

struct isif_ann {
	faiss::Index *index;
	isif_ann_params p;
};

/* Rows added per call when building, so a cancel is seen within one chunk. */
static const int64_t BUILD_CHUNK = 32768;

/* Runs f, turning any exception into an isif_rc with a message. */
template <typename F> static isif_rc guarded(const char *what, isif_error *err, F f)
{
	try {
		return f();
	} catch (const std::bad_alloc &) {
		return isif_fail(err, ISIF_ENOMEM, "%s: out of memory", what);
	} catch (const faiss::FaissException &e) {
		return isif_fail(err, ISIF_EINVAL, "%s: faiss: %.200s", what, e.msg.c_str());
	} catch (const std::exception &e) {
		return isif_fail(err, ISIF_EIO, "%s: %.200s", what, e.what());
	} catch (...) {
		return isif_fail(err, ISIF_EIO, "%s: unknown C++ exception", what);
	}
}

extern "C" int isif_ann_kind_parse(const char *name)
{
	if (!name)
		return -1;
	if (!strcmp(name, "exact"))
		return ISIF_ANN_EXACT;
	if (!strcmp(name, "hnsw"))
		return ISIF_ANN_HNSW;
	if (!strcmp(name, "ivf"))
		return ISIF_ANN_IVF;
	return -1;
}

extern "C" const char *isif_ann_kind_name(isif_ann_kind kind)
{
	switch (kind) {
	case ISIF_ANN_HNSW:
		return "hnsw";
	case ISIF_ANN_IVF:
		return "ivf";
	default:
		return "exact";
	}
}

extern "C" void isif_ann_params_default(isif_ann_kind kind, int64_t n, isif_ann_params *p)
{
	*p = isif_ann_params{};
	p->kind = kind;
	if (kind == ISIF_ANN_HNSW) {
		p->m = 32;
		p->ef_construction = 64;
		p->ef_search = 32;
	} else if (kind == ISIF_ANN_IVF) {
		/* 4·√n lists (FAISS's guideline), within 1..n/39 */
		int64_t nl = (int64_t)(4.0 * std::sqrt((double)(n > 0 ? n : 1)));
		int64_t most = n / ISIF_ANN_MIN_PER_LIST;
		if (nl > most)
			nl = most;
		if (nl > ISIF_ANN_MAX_NLIST)
			nl = ISIF_ANN_MAX_NLIST;
		p->nlist = (int)(nl < 1 ? 1 : nl);
		p->nprobe = p->nlist < 16 ? p->nlist : 16;
	}
}

extern "C" isif_rc isif_ann_params_check(const isif_ann_params *p, int64_t n, isif_error *err)
{
	if (p->kind == ISIF_ANN_HNSW) {
		if (p->m < 4 || p->m > ISIF_ANN_MAX_M)
			return isif_fail(err, ISIF_EINVAL, "m: must be between 4 and %d", ISIF_ANN_MAX_M);
		if (p->ef_construction < 8 || p->ef_construction > ISIF_ANN_MAX_EF)
			return isif_fail(err, ISIF_EINVAL, "ef_construction: must be between 8 and %d",
					 ISIF_ANN_MAX_EF);
		if (p->ef_search < 1 || p->ef_search > ISIF_ANN_MAX_EF)
			return isif_fail(err, ISIF_EINVAL, "ef_search: must be between 1 and %d", ISIF_ANN_MAX_EF);
		if (n < 1)
			return isif_fail(err, ISIF_EINVAL, "the gallery is empty");
		if (n > INT32_MAX)
			return isif_fail(err, ISIF_EINVAL, "hnsw holds at most %d rows", INT32_MAX);
	} else if (p->kind == ISIF_ANN_IVF) {
		int64_t most = n / ISIF_ANN_MIN_PER_LIST;
		if (most > ISIF_ANN_MAX_NLIST)
			most = ISIF_ANN_MAX_NLIST;
		if (most < 1)
			return isif_fail(err, ISIF_EINVAL, "ivf needs at least %d rows (has %lld)",
					 ISIF_ANN_MIN_PER_LIST, (long long)n);
		if (p->nlist < 1 || p->nlist > most)
			return isif_fail(err, ISIF_EINVAL, "nlist: must be between 1 and %lld for %lld rows "
					 "(at least %d rows per list)", (long long)most, (long long)n,
					 ISIF_ANN_MIN_PER_LIST);
		if (p->nprobe < 1 || p->nprobe > p->nlist)
			return isif_fail(err, ISIF_EINVAL, "nprobe: must be between 1 and nlist (%d)", p->nlist);
	} else {
		return isif_fail(err, ISIF_EINVAL, "kind: must be hnsw or ivf to build an index");
	}
	return ISIF_OK;
}

extern "C" int64_t isif_ann_memory_bytes(const isif_ann_params *p, int64_t n, int dim)
{
	int64_t vec = n * dim * (int64_t)sizeof(float);
	if (p->kind == ISIF_ANN_HNSW)   /* level 0 has 2·m links, the levels above add ~1/m of that */
		return vec + n * (2 * p->m * 4 + 64);
	if (p->kind == ISIF_ANN_IVF)    /* the vectors and their ids, plus the centroids */
		return vec + n * 8 + (int64_t)p->nlist * dim * 4;
	return vec;
}

static void set_search(isif_ann *a)
{
	if (auto *h = dynamic_cast<faiss::IndexHNSW *>(a->index))
		h->hnsw.efSearch = a->p.ef_search;
	if (auto *v = dynamic_cast<faiss::IndexIVF *>(a->index))
		v->nprobe = (size_t)a->p.nprobe;
}

static faiss::Index *new_index(const isif_ann_params *p, int dim)
{
	if (p->kind == ISIF_ANN_HNSW) {
		auto *h = new faiss::IndexHNSWFlat(dim, p->m, faiss::METRIC_INNER_PRODUCT);
		h->hnsw.efConstruction = p->ef_construction;
		return h;
	}
	auto *q = new faiss::IndexFlatIP(dim);
	auto *v = new faiss::IndexIVFFlat(q, (size_t)dim, (size_t)p->nlist, faiss::METRIC_INNER_PRODUCT);
	v->own_fields = true;
	v->cp.seed = 1234;        /* the same clustering every build */
	return v;
}

extern "C" isif_rc isif_ann_build(const isif_ann_params *p, const float *x, int64_t n, int dim,
				  int threads, const volatile int *cancel, isif_ann **out, isif_error *err)
{
	*out = nullptr;
	isif_rc rc = isif_ann_params_check(p, n, err);
	if (rc)
		return rc;
	if (dim < 1 || dim > 65536)
		return isif_fail(err, ISIF_EINVAL, "dim: must be between 1 and 65536");
	return guarded("building the index", err, [&]() -> isif_rc {
		omp_set_num_threads(threads > 0 ? threads : 1);
		std::unique_ptr<isif_ann> a(new isif_ann{nullptr, *p});
		std::unique_ptr<faiss::Index> ix(new_index(p, dim));
		if (p->kind == ISIF_ANN_IVF) {
			/* k-means on at most 256 rows per list, spread over the gallery */
			int64_t want = (int64_t)p->nlist * 256, step = n > want ? n / want : 1;
			std::vector<float> sample;
			const float *tx = x;
			int64_t tn = n;
			if (step > 1) {
				tn = n / step;
				sample.resize((size_t)tn * dim);
				for (int64_t i = 0; i < tn; i++)
					memcpy(&sample[(size_t)i * dim], x + (size_t)(i * step) * dim,
					       (size_t)dim * sizeof(float));
				tx = sample.data();
			}
			ix->train(tn, tx);
		}
		for (int64_t i = 0; i < n; i += BUILD_CHUNK) {
			if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED))   /* set by another thread */
				return isif_fail(err, ISIF_ECANCELLED, "building the index: cancelled");
			int64_t c = n - i < BUILD_CHUNK ? n - i : BUILD_CHUNK;
			ix->add(c, x + (size_t)i * dim);
		}
		a->index = ix.release();
		set_search(a.get());
		*out = a.release();
		return ISIF_OK;
	});
}

/* fsync of a directory, so a rename in it is durable. */
static int fsync_dir_of(const std::string &path)
{
	size_t slash = path.rfind('/');
	std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
	int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	close(fd);
	return r;
}

extern "C" isif_rc isif_ann_save(const isif_ann *a, const char *path, isif_error *err)
{
	std::string tmp = std::string(path) + ".tmp." + std::to_string((long)getpid());
	isif_rc rc = guarded("writing the index", err, [&]() -> isif_rc {
		FILE *f = fopen(tmp.c_str(), "wb");
		if (!f)
			return isif_fail(err, ISIF_EIO, "%s: %s", tmp.c_str(), strerror(errno));
		try {
			faiss::write_index(a->index, f);
		} catch (...) {
			fclose(f);
			throw;
		}
		bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
		ok = fclose(f) == 0 && ok;
		if (!ok || rename(tmp.c_str(), path) != 0 || fsync_dir_of(path) != 0)
			return isif_fail(err, ISIF_EIO, "%s: %s", path, strerror(errno));
		return ISIF_OK;
	});
	if (rc)
		unlink(tmp.c_str());
	return rc;
}

extern "C" isif_rc isif_ann_load(const char *path, isif_ann **out, isif_error *err)
{
	*out = nullptr;
	if (access(path, R_OK) != 0)
		return isif_fail(err, ISIF_EIO, "%s: %s", path, strerror(errno));
	return guarded(path, err, [&]() -> isif_rc {
		std::unique_ptr<faiss::Index> ix(faiss::read_index(path));
		std::unique_ptr<isif_ann> a(new isif_ann{nullptr, {}});
		if (ix->metric_type != faiss::METRIC_INNER_PRODUCT)
			return isif_fail(err, ISIF_EFORMAT, "%s: not an inner-product index", path);
		if (auto *h = dynamic_cast<faiss::IndexHNSWFlat *>(ix.get())) {
			a->p.kind = ISIF_ANN_HNSW;
			a->p.m = h->hnsw.nb_neighbors(1);   /* level 0 has 2·M, the others M */
			a->p.ef_construction = h->hnsw.efConstruction;
			a->p.ef_search = h->hnsw.efSearch;
		} else if (auto *v = dynamic_cast<faiss::IndexIVFFlat *>(ix.get())) {
			a->p.kind = ISIF_ANN_IVF;
			a->p.nlist = (int)v->nlist;
			a->p.nprobe = (int)v->nprobe;
		} else {
			return isif_fail(err, ISIF_EFORMAT, "%s: not an HNSW-Flat or IVF-Flat index", path);
		}
		a->index = ix.release();
		*out = a.release();
		return ISIF_OK;
	});
}

extern "C" void isif_ann_free(isif_ann *a)
{
	if (!a)
		return;
	delete a->index;
	delete a;
}

extern "C" void isif_ann_info(const isif_ann *a, isif_ann_params *p, int64_t *n, int *dim)
{
	if (p)
		*p = a->p;
	if (n)
		*n = (int64_t)a->index->ntotal;
	if (dim)
		*dim = (int)a->index->d;
}

extern "C" isif_rc isif_ann_set_search(isif_ann *a, int ef_search, int nprobe, isif_error *err)
{
	isif_ann_params p = a->p;
	if (p.kind == ISIF_ANN_HNSW && ef_search > 0)
		p.ef_search = ef_search;
	if (p.kind == ISIF_ANN_IVF && nprobe > 0)
		p.nprobe = nprobe;
	if (p.kind == ISIF_ANN_HNSW ? p.ef_search > ISIF_ANN_MAX_EF : p.nprobe > p.nlist)
		return isif_fail(err, ISIF_EINVAL, p.kind == ISIF_ANN_HNSW ?
				 "ef_search: must be between 1 and 4096" : "nprobe: must be between 1 and nlist");
	a->p = p;
	set_search(a);
	return ISIF_OK;
}

extern "C" isif_rc isif_ann_search(const isif_ann *a, const float *q, int64_t nq, int k,
				   int64_t *idx, float *sim, isif_error *err)
{
	if (k < 1 || nq < 0)
		return isif_fail(err, ISIF_EINVAL, "k: must be at least 1");
	return guarded("searching the index", err, [&]() -> isif_rc {
		omp_set_num_threads(1);   /* this thread's regions only */
		std::vector<faiss::Index::idx_t> lab((size_t)nq * k);
		if (a->p.kind == ISIF_ANN_HNSW) {
			faiss::SearchParametersHNSW sp;
			sp.efSearch = a->p.ef_search > k ? a->p.ef_search : k;
			a->index->search(nq, q, k, sim, lab.data(), &sp);
		} else {
			faiss::SearchParametersIVF sp;
			sp.nprobe = (size_t)a->p.nprobe;
			a->index->search(nq, q, k, sim, lab.data(), &sp);
		}
		for (size_t i = 0; i < lab.size(); i++)
			idx[i] = (int64_t)lab[i];
		return ISIF_OK;
	});
}

extern "C" isif_rc isif_ann_recall(const isif_ann *a, const float *g, int64_t n, const float *q,
				   int64_t nq, int k, int threads, double *recall, isif_error *err)
{
	*recall = 0;
	if (nq < 1 || k < 1 || k > n)
		return isif_fail(err, ISIF_EINVAL, "recall: needs queries and 1 ≤ k ≤ rows");
	return guarded("measuring recall", err, [&]() -> isif_rc {
		int d = (int)a->index->d;
		std::vector<int64_t> ei((size_t)nq * k), ai((size_t)nq * k);
		std::vector<float> es((size_t)nq * k), as((size_t)nq * k);
		isif_rc rc = isif_topk(g, n, q, nq, d, k, 0, threads, ei.data(), es.data());
		if (rc)
			return isif_fail(err, rc, "recall: exact search failed: %s", isif_strerror(rc));
		rc = isif_ann_search(a, q, nq, k, ai.data(), as.data(), err);
		if (rc)
			return rc;
		int64_t hits = 0;
		for (int64_t i = 0; i < nq; i++)
			for (int x = 0; x < k; x++)
				for (int y = 0; y < k; y++)
					if (ei[(size_t)(i * k + x)] == ai[(size_t)(i * k + y)]) {
						hits++;
						break;
					}
		*recall = (double)hits / ((double)nq * k);
		return ISIF_OK;
	});
}
