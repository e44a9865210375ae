# isifd — build, test and run. `make help` lists the targets.
#
# Read top to bottom: variables (toolchain, packages, flags, flavours),
# sources and outputs, the build rules, the entry points (test, sanitize,
# tsan, bench, fuzz), packages (deps), run, install, the dashboard's npm
# packages, help.
#
# Build flavours live in separate trees so they never mix:
#   build/        release (-O2)
#   build/asan/   AddressSanitizer + UndefinedBehaviorSanitizer
#   build/tsan/   ThreadSanitizer (threaded unit tests, scheduler, isifd)
#   build/fuzz/   clang libFuzzer + ASan + UBSan (make fuzz only)
#
# pkg-config is read when make parses this file. An entry point that installs
# packages first (run, test, sanitize, tsan, test-slow, fuzz) therefore builds
# in a sub-make started after `deps`: the make that parsed this file before
# apt-get ran would link without the libraries (tests/tree/fresh_make.py).

# ---- toolchain and packages ------------------------------------------------------
CC      ?= cc
PREFIX  ?= /usr/local
# PKGS: the engine (libisif.a); SERVER_PKGS: isifd on top of it.
PKGS        := jansson zlib libpng libjpeg
SERVER_PKGS := libmicrohttpd sqlite3 libcurl
PKG_CFLAGS    := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS      := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
SERVER_CFLAGS := $(shell pkg-config --cflags $(SERVER_PKGS) 2>/dev/null) -Iserver
SERVER_LIBS   := $(shell pkg-config --libs $(SERVER_PKGS) 2>/dev/null)
# MPI is optional: `isif` gets Open MPI (core/train/dist_mpi.c) when pkg-config
# knows ompi-c or mpi-c; otherwise (and in isifd and the tests, always) the
# library's core/train/dist_none.c makes every run one process.
MPI_PKG    := $(firstword $(foreach p,ompi-c mpi-c,$(shell pkg-config --exists $(p) 2>/dev/null && echo $(p))))
MPI_CFLAGS := $(if $(MPI_PKG),$(shell pkg-config --cflags $(MPI_PKG)))
MPI_LIBS   := $(if $(MPI_PKG),$(shell pkg-config --libs $(MPI_PKG)))

# Debian 12 packages the build, the tests and the default dataset need (make deps).
DEB_PKGS := build-essential pkg-config libopenblas-dev libjansson-dev \
  libmicrohttpd-dev libsqlite3-dev sqlite3 libjpeg62-turbo-dev libpng-dev \
  libcurl4-openssl-dev zlib1g-dev curl python3 dataset-fashion-mnist \
  python3-numpy libjpeg-turbo-progs wrk libopenmpi-dev openmpi-bin libfaiss-dev
# Only make fuzz needs clang; libFuzzer's runtime is a mere Recommends of it.
FUZZ_DEB_PKGS  := clang libclang-rt-14-dev
# The optional PyTorch reference make bench compares against (make bench-deps).
BENCH_DEB_PKGS := python3-torch python3-torchvision linux-perf
# What only the tests need: PyTorch for tests/cli/torch.sh, which loads our
# checkpoints with core/cli/isif_torch.py (about 65 s and 600 MB to install;
# make run does not need it).
TEST_DEB_PKGS  := python3-torch
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# ---- flags -----------------------------------------------------------------------
# OPT is the release optimisation; the flavours below replace it.
WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
# -fopenmp-simd: the `omp simd` hints of the layer ops (core/base/par_impl.h),
# no OpenMP runtime; threads are the engine's own teams (core/base/team.c).
BASEFLAGS := -std=c11 -D_GNU_SOURCE -g -pthread -Iinclude -Icore -fopenmp-simd $(WARN) $(PKG_CFLAGS)
# Every flavour builds for the same portable ISA (no -march: the binary runs
# on any x86-64); the AVX-512 kernels are compiled per function and chosen at
# run time (core/base/cpu_impl.h; ISIF_CPU=portable forces the portable ones),
# so the sanitizers check the kernels that ship.
OPT       ?= -O2
CFLAGS    ?=
LDLIBS    := $(PKG_LIBS) -lm -pthread
# FAISS (static libfaiss.a from libfaiss-dev) behind core/eval/ann_faiss.cpp,
# the engine's only C++ file: linked only into the programs that use it
# (isif, isifd, unit_tests, server_tests), with the BLAS/LAPACK and the
# OpenMP runtime it needs. The rest of the engine never calls into OpenMP.
CXX       ?= g++
CXXFLAGS_ANN = -std=c++17 -g -Iinclude -Icore -Wall -Wextra -Werror -Wno-unused-parameter $(OPT)
FAISS_LIBS := -lfaiss -lblas -llapack -lgomp -lstdc++

# ---- flavours: FLAVOUR=release (default), asan, tsan or fuzz ---------------------
FLAVOUR ?= release
ifeq ($(FLAVOUR),asan)
  B := build/asan
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
else ifeq ($(FLAVOUR),tsan)
  B := build/tsan
  OPT := -O1 -fsanitize=thread
  LDFLAGS += -fsanitize=thread
else ifeq ($(FLAVOUR),fuzz)
  B := build/fuzz
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
    -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=fuzzer,address,undefined
  CXX := clang++
else
  B := build
endif
ALLCFLAGS = $(BASEFLAGS) $(OPT) $(CFLAGS)

# ---- sources and outputs ---------------------------------------------------------
# The engine, lowest layer first (tests/tree/layers.py keeps the order honest);
# core/cli is the `isif` command on top of it.
CORE_LAYERS := base nn data eval train
CORE_SRC    := $(filter-out core/train/dist_mpi.c,$(foreach l,$(CORE_LAYERS),$(wildcard core/$(l)/*.c)))
CORE_OBJ    := $(CORE_SRC:%.c=$(B)/obj/%.o)
CLI_SRC     := $(wildcard core/cli/*.c)
CLI_OBJ     := $(CLI_SRC:%.c=$(B)/obj/%.o)
# With MPI, dist_mpi.o is linked into `isif` ahead of libisif.a: its symbols
# are then defined, so the archive's dist_none.o is never pulled in.
MPI_OBJ     := $(if $(MPI_PKG),$(B)/obj/core/train/dist_mpi.o)
TEST_SRC    := $(wildcard tests/unit/*.c)
TEST_OBJ    := $(TEST_SRC:%.c=$(B)/obj/%.o)
ANN_OBJ     := $(B)/obj/core/eval/ann_faiss.o

# The daemon: server/*.c with the schema migrations/NNN_*.sql embedded at build
# time (server/gen_migrations.sh), so the binary needs no data files.
# server_tests runs the store, scheduler and HTTP-helper unit tests with a stub
# job instead of the trainer: every daemon object but main.o and jobrun.o.
MIGRATIONS      := $(sort $(wildcard migrations/*.sql))
SERVER_SRC      := $(wildcard server/*.c)
SERVER_OBJ      := $(SERVER_SRC:%.c=$(B)/obj/%.o) $(B)/obj/gen/migrations.o
SERVER_CORE_OBJ := $(filter-out $(B)/obj/server/main.o $(B)/obj/server/jobrun.o,$(SERVER_OBJ))
SERVER_TEST_OBJ := $(SERVER_CORE_OBJ) $(patsubst %.c,$(B)/obj/%.o,$(wildcard tests/server/*.c)) \
  $(B)/obj/tests/unit/runner.o

# tests/fuzz/fuzz_<t>.c are libFuzzer targets. Every build also links each with
# tests/fuzz/replay_main.c as $(B)/fuzz_replay/<t>, which make test uses to
# replay the seeds and every crasher kept in tests/fuzz/regress/<t>/ (no clang
# needed for that); make fuzz builds the real fuzzers with clang in build/fuzz/.
# The FUZZ_SERVER_TARGETS link the daemon's objects too.
FUZZ_TARGETS        := spec idx cifar stl image safetensors npy http urlguard
FUZZ_SERVER_TARGETS := http urlguard
FUZZ_UTIL_OBJ       := $(B)/obj/tests/fuzz/fuzz_util.o
FUZZ_REPLAY         := $(FUZZ_TARGETS:%=$(B)/fuzz_replay/%)
FUZZ_SECONDS        ?= 30

LIB          := $(B)/libisif.a
ISIF         := $(B)/isif
UNIT         := $(B)/unit_tests
ISIFD        := $(B)/isifd
SERVER_TESTS := $(B)/server_tests
BENCH_BINS   := $(B)/knn_bench $(B)/gemm_bench $(B)/layer_bench $(B)/probe_bench $(B)/npid_ref \
                $(B)/folder_bench $(B)/gallery_bench
WEB_VENDOR   := web/vendor/uPlot.esm.js
BROWSER_DEPS := tests/browser/node_modules/.package-lock.json

# ---- the build -------------------------------------------------------------------
.PHONY: all clean
## all: (the default) isif, isifd, unit_tests, server_tests and the fuzz replayers in build/
all: $(ISIF) $(UNIT) $(ISIFD) $(SERVER_TESTS) $(FUZZ_REPLAY)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -MMD -MP -c $< -o $@

$(ANN_OBJ): core/eval/ann_faiss.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_ANN) -MMD -MP -c $< -o $@

$(sort $(SERVER_OBJ) $(SERVER_TEST_OBJ)): ALLCFLAGS += $(SERVER_CFLAGS)
$(FUZZ_SERVER_TARGETS:%=$(B)/obj/tests/fuzz/fuzz_%.o): ALLCFLAGS += $(SERVER_CFLAGS)

$(LIB): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(ISIF): $(CLI_OBJ) $(MPI_OBJ) $(ANN_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(MPI_OBJ) $(ANN_OBJ) $(LIB) $(LDLIBS) $(MPI_LIBS) $(FAISS_LIBS)

$(MPI_OBJ): ALLCFLAGS += $(MPI_CFLAGS)

$(UNIT): $(TEST_OBJ) $(ANN_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(ANN_OBJ) $(LIB) $(LDLIBS) $(FAISS_LIBS)

$(B)/gen/migrations.c: $(MIGRATIONS) server/gen_migrations.sh
	@mkdir -p $(dir $@)
	sh server/gen_migrations.sh $(MIGRATIONS) > $@.new && mv $@.new $@

$(B)/obj/gen/migrations.o: $(B)/gen/migrations.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -c $< -o $@

$(ISIFD): $(SERVER_OBJ) $(ANN_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(SERVER_OBJ) $(ANN_OBJ) $(LIB) $(LDLIBS) $(SERVER_LIBS) $(FAISS_LIBS)

$(SERVER_TESTS): $(SERVER_TEST_OBJ) $(ANN_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(SERVER_TEST_OBJ) $(ANN_OBJ) $(LIB) $(LDLIBS) $(SERVER_LIBS) $(FAISS_LIBS)

.SECONDARY: $(FUZZ_TARGETS:%=$(B)/obj/tests/fuzz/fuzz_%.o)

$(B)/fuzz_replay/%: $(B)/obj/tests/fuzz/fuzz_%.o $(B)/obj/tests/fuzz/replay_main.o $(FUZZ_UTIL_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(FUZZ_SERVER_TARGETS:%=$(B)/fuzz_replay/%): $(B)/fuzz_replay/%: $(B)/obj/tests/fuzz/fuzz_%.o $(B)/obj/tests/fuzz/replay_main.o $(FUZZ_UTIL_OBJ) $(SERVER_CORE_OBJ) $(ANN_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(SERVER_LIBS) $(FAISS_LIBS)

# The libFuzzer binaries (FLAVOUR=fuzz only: -fsanitize=fuzzer brings main).
$(B)/fuzz_%: $(B)/obj/tests/fuzz/fuzz_%.o $(FUZZ_UTIL_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(FUZZ_SERVER_TARGETS:%=$(B)/fuzz_%): $(B)/fuzz_%: $(B)/obj/tests/fuzz/fuzz_%.o $(FUZZ_UTIL_OBJ) $(SERVER_CORE_OBJ) $(ANN_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(SERVER_LIBS) $(FAISS_LIBS)

$(filter-out $(B)/gemm_bench,$(BENCH_BINS)): $(B)/%: bench/%.c $(LIB)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# gemm_bench alone links OpenBLAS, the rate it compares the engine's GEMM with.
$(B)/gemm_bench: bench/gemm_bench.c $(LIB)
	$(CC) $(ALLCFLAGS) $(shell pkg-config --cflags openblas) $(LDFLAGS) -o $@ $< $(LIB) \
	  $(LDLIBS) $(shell pkg-config --libs openblas)

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)

## clean: remove build/ (every flavour)
clean:
	rm -rf build

# ---- tests, sanitizers, benchmarks, fuzzing --------------------------------------
.PHONY: test test-slow sanitize tsan tsan-server bench fuzz fuzz-build

## test: every test case (unit, CLI, integration); ends with "N passed, N failed"
test: deps test-deps
	@$(MAKE) --no-print-directory web-deps browser-deps all
	@BUILD=$(B) bash tests/run_all.sh

## test-slow: the 200-kill crash loop and hostile HTTP with a 60 s wrk run (~5 min); ends with "N passed, N failed"
test-slow: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(B) bash tests/slow/run.sh

## sanitize: the same tests built with ASan + UBSan
sanitize: deps test-deps
	$(MAKE) FLAVOUR=asan web-deps browser-deps all
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  BUILD=build/asan SANITIZED=1 bash tests/run_all.sh

## tsan: ThreadSanitizer over the threaded tests (loader, trainer, kNN search, folder decoding, scheduler, store) and isifd under api/ssrf/hostile/ops
tsan: deps
	$(MAKE) FLAVOUR=tsan build/tsan/unit_tests
	TSAN_OPTIONS=halt_on_error=1 build/tsan/unit_tests loader_ trainer_ knn_search_ folder_decode_ folder_cache_
	@$(MAKE) --no-print-directory tsan-server

## tsan-server: the daemon's half of make tsan alone (server_tests srv_, then isifd under tests/tsan_daemon.sh)
tsan-server: deps
	$(MAKE) FLAVOUR=tsan build/tsan/server_tests build/tsan/isifd
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 build/tsan/server_tests srv_
	bash tests/tsan_daemon.sh

## bench: training-step timings per model, kNN timing, PyTorch crosscheck (never fails on speed)
bench: all $(BENCH_BINS)
	@BUILD=$(B) bash bench/run.sh

## fuzz: clang libFuzzer over every parser, FUZZ_SECONDS (30) each; prints runs and crashes per target
fuzz: deps fuzz-deps
	$(MAKE) FLAVOUR=fuzz CC=clang fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh $(FUZZ_TARGETS)

## fuzz-build: the libFuzzer binaries of the current flavour (make fuzz builds them with FLAVOUR=fuzz CC=clang)
fuzz-build: $(FUZZ_TARGETS:%=$(B)/fuzz_%)

# ---- packages --------------------------------------------------------------------
.PHONY: deps test-deps fuzz-deps bench-deps npm-deps

## deps: install the missing Debian packages with apt-get (root or sudo)
deps:
	@missing=$$(for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing" $$missing; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

## test-deps: install what only the tests need (python3-torch); after deps, so two apt-gets never run at once
test-deps: deps
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(TEST_DEB_PKGS)"

## fuzz-deps: install clang and libFuzzer's runtime (make fuzz does)
fuzz-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(FUZZ_DEB_PKGS)"

## bench-deps: the optional PyTorch reference make bench compares against
bench-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(BENCH_DEB_PKGS)"

## npm-deps: install Debian's npm when there is no npm at all (a fresh Debian 12 has none)
npm-deps:
	@npm --version >/dev/null 2>&1 || $(MAKE) --no-print-directory deps DEB_PKGS=npm

# ---- run and install -------------------------------------------------------------
.PHONY: run install

## run: install what is missing, build, start isifd on 127.0.0.1:8080
run: deps
	@$(MAKE) --no-print-directory web-deps all
	@mkdir -p var
	@echo "isifd: dashboard at http://127.0.0.1:8080/  (Ctrl-C stops it; jobs resume at the next start)"
	@echo "train on Fashion-MNIST:"
	@echo "  curl -s -X POST http://127.0.0.1:8080/jobs -H 'Content-Type: application/json' \\"
	@echo "       -d '{\"dataset\": \"fashion-mnist\", \"model\": \"convnet\", \"epochs\": 5, \"train_subset\": 10000}'"
	@echo "  curl -s http://127.0.0.1:8080/jobs/1/metrics"
	exec $(ISIFD) --listen 127.0.0.1:8080 --state-dir ./var --web-dir web

## install: isif, isifd, the dashboard, docs/API.md, the systemd unit and isif_torch.py under $(PREFIX)
install: all web-deps
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/isifd/web \
	  $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/doc/isifd \
	  $(DESTDIR)$(PREFIX)/share/isifd/python
	install -m 0755 $(ISIF) $(ISIFD) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 docs/API.md $(DESTDIR)$(PREFIX)/share/doc/isifd/
	install -m 0644 core/cli/isif_torch.py $(DESTDIR)$(PREFIX)/share/isifd/python/
	if [ -d web ]; then cp -R web/. $(DESTDIR)$(PREFIX)/share/isifd/web/; fi
	sed 's|/usr/local|$(PREFIX)|g' systemd/isifd.service \
	  > $(DESTDIR)$(PREFIX)/lib/systemd/system/isifd.service

# ---- the dashboard's npm packages ------------------------------------------------
# web-deps: uPlot from npm (web/package-lock.json pins version and hash), its
# ES module, CSS and licence copied into web/vendor/ (git-ignored) where isifd
# serves them; web/node_modules is removed again so `make install` copies only
# the dashboard. browser-deps: playwright-core for tests/browser/ (the browser
# itself is Debian's chromium, which tests/integration/dashboard.sh installs
# when missing).
.PHONY: web-deps browser-deps

## web-deps: install the dashboard's chart library (npm ci) into web/vendor/
web-deps: $(WEB_VENDOR)
$(WEB_VENDOR): web/package.json web/package-lock.json | npm-deps
	cd web && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p web/vendor
	cp web/node_modules/uplot/dist/uPlot.esm.js web/node_modules/uplot/dist/uPlot.min.css web/vendor/
	cp web/node_modules/uplot/LICENSE web/vendor/uPlot.LICENSE.txt
	rm -rf web/node_modules
	touch $@

## browser-deps: install playwright-core (npm ci) for the dashboard's browser test
browser-deps: $(BROWSER_DEPS)
$(BROWSER_DEPS): tests/browser/package.json tests/browser/package-lock.json | npm-deps
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error

# ---- help ------------------------------------------------------------------------
.PHONY: help
## help: this list
help:
	@sed -n 's/^## \([^:]*\): */\1\t/p' $(firstword $(MAKEFILE_LIST)) | \
	  awk -F '\t' '{ printf "  make %-12s %s\n", $$1, $$2 }'
