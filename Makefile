# isifd — build, test and run. `make help` lists the targets.
#
# Build flavours live in separate trees so they never mix:
#   build/        release (-O2)
#   build/asan/   AddressSanitizer + UndefinedBehaviorSanitizer
#   build/tsan/   ThreadSanitizer (scheduler tests)
#   build/fuzz/   clang libFuzzer + ASan + UBSan (make fuzz only)

CC      ?= cc
PKGS    := openblas jansson zlib libpng libjpeg
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
BASEFLAGS := -std=c11 -D_GNU_SOURCE -g -pthread -Iinclude -Icore $(WARN) $(PKG_CFLAGS)
# Every flavour builds for the same portable ISA (no -march: the binary runs
# on any x86-64) and, but for TSan, the same OpenMP; the AVX-512 kernels are
# compiled per function and chosen at run time (core/base/cpu_impl.h;
# ISIF_CPU=portable forces the portable ones), so the sanitizers check the
# kernels that ship.
OPENMP  := -fopenmp
OPT     ?= -O2 $(OPENMP)
LDLIBS  := $(PKG_LIBS) -lm -pthread

FLAVOUR ?= release
ifeq ($(FLAVOUR),asan)
  B := build/asan
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
    $(OPENMP)
  LDFLAGS += -fsanitize=address,undefined $(OPENMP)
else ifeq ($(FLAVOUR),tsan)
  B := build/tsan
  # no OpenMP here: libgomp is not built with TSan, so TSan cannot see its
  # joins and reports the reduction of kmeans.c's parallel loop as a race
  OPT := -O1 -fsanitize=thread
  LDFLAGS += -fsanitize=thread
else ifeq ($(FLAVOUR),fuzz)
  B := build/fuzz
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
    -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=fuzzer,address,undefined
else
  B := build
  LDFLAGS += $(OPENMP)
endif
CFLAGS ?=
ALLCFLAGS = $(BASEFLAGS) $(OPT) $(CFLAGS)

CORE_LAYERS := base nn data eval train
CORE_SRC  := $(foreach l,$(CORE_LAYERS),$(wildcard core/$(l)/*.c))
CORE_OBJ  := $(CORE_SRC:%.c=$(B)/obj/%.o)
CLI_SRC   := $(wildcard core/cli/*.c)
CLI_OBJ   := $(CLI_SRC:%.c=$(B)/obj/%.o)
TEST_SRC  := $(wildcard tests/unit/*.c)
TEST_OBJ  := $(TEST_SRC:%.c=$(B)/obj/%.o)

LIB       := $(B)/libisif.a
ISIF      := $(B)/isif
UNIT      := $(B)/unit_tests

.PHONY: all test sanitize tsan bench run deps clean help install
all: $(ISIF) $(UNIT)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(ISIF): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(UNIT): $(TEST_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(LIB) $(LDLIBS)

-include $(shell find build -name '*.d' 2>/dev/null)

# ---- server: the isifd daemon (issue 4) ---------------------------------------
# server/*.c link into $(B)/isifd with the engine library. The schema
# migrations/NNN_*.sql are embedded at build time (server/gen_migrations.sh),
# so the binary needs no data files. $(B)/server_tests runs the store,
# scheduler and HTTP-helper unit tests with a stub job instead of the trainer.
SERVER_PKGS    := libmicrohttpd sqlite3 libcurl
SERVER_CFLAGS  := $(shell pkg-config --cflags $(SERVER_PKGS) 2>/dev/null) -Iserver
SERVER_LIBS    := $(shell pkg-config --libs $(SERVER_PKGS) 2>/dev/null)
SERVER_SRC     := $(wildcard server/*.c)
SERVER_OBJ     := $(SERVER_SRC:%.c=$(B)/obj/%.o) $(B)/obj/gen/migrations.o
SERVER_TEST_OBJ := $(filter-out $(B)/obj/server/main.o $(B)/obj/server/jobrun.o,$(SERVER_OBJ)) \
  $(patsubst %.c,$(B)/obj/%.o,$(wildcard tests/server/*.c)) $(B)/obj/tests/unit/runner.o
MIGRATIONS     := $(sort $(wildcard migrations/*.sql))
ISIFD          := $(B)/isifd
SERVER_TESTS   := $(B)/server_tests
PREFIX         ?= /usr/local

all: $(ISIFD) $(SERVER_TESTS)

$(sort $(SERVER_OBJ) $(SERVER_TEST_OBJ)): ALLCFLAGS += $(SERVER_CFLAGS)

$(B)/gen/migrations.c: $(MIGRATIONS) server/gen_migrations.sh
	@mkdir -p $(dir $@)
	sh server/gen_migrations.sh $(MIGRATIONS) > $@.new && mv $@.new $@

$(B)/obj/gen/migrations.o: $(B)/gen/migrations.c
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -c $< -o $@

$(ISIFD): $(SERVER_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(SERVER_OBJ) $(LIB) $(LDLIBS) $(SERVER_LIBS)

$(SERVER_TESTS): $(SERVER_TEST_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(SERVER_TEST_OBJ) $(LIB) $(LDLIBS) $(SERVER_LIBS)

# make tsan also runs the daemon's scheduler and store tests.
tsan: tsan-server
.PHONY: tsan-server
tsan-server:
	$(MAKE) FLAVOUR=tsan build/tsan/server_tests build/tsan/isifd
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 build/tsan/server_tests srv_
	bash tests/tsan_daemon.sh

## install: isif, isifd, the dashboard, docs/API.md and the systemd unit under $(PREFIX)
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/isifd/web \
	  $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)$(PREFIX)/share/doc/isifd
	install -m 0755 $(ISIF) $(ISIFD) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 docs/API.md $(DESTDIR)$(PREFIX)/share/doc/isifd/
	if [ -d web ]; then cp -R web/. $(DESTDIR)$(PREFIX)/share/isifd/web/; fi
	sed 's|/usr/local|$(PREFIX)|g' systemd/isifd.service \
	  > $(DESTDIR)$(PREFIX)/lib/systemd/system/isifd.service

## test: every test case (unit, CLI, integration); ends with "N passed, N failed"
test: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(B) bash tests/run_all.sh

## sanitize: the same tests built with ASan + UBSan
sanitize: deps
	$(MAKE) FLAVOUR=asan all
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  BUILD=build/asan SANITIZED=1 bash tests/run_all.sh

$(B)/knn_bench: bench/knn_bench.c $(LIB)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(B)/gemm_bench: bench/gemm_bench.c $(LIB)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(B)/layer_bench: bench/layer_bench.c $(LIB)
	$(CC) $(ALLCFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

## tsan: ThreadSanitizer over the threaded tests (loader, trainer, kNN search, scheduler, store) and isifd under api/ssrf/hostile
tsan: deps
	$(MAKE) FLAVOUR=tsan build/tsan/unit_tests
	TSAN_OPTIONS=halt_on_error=1 build/tsan/unit_tests loader_ trainer_ knn_search_

## bench: training-step timings per model, kNN timing, PyTorch crosscheck (never fails on speed)
bench: all $(B)/knn_bench $(B)/gemm_bench $(B)/layer_bench
	@BUILD=$(B) bash bench/run.sh

# Debian 12 packages the build, the tests and the default dataset need.
DEB_PKGS := build-essential pkg-config libopenblas-dev libjansson-dev \
  libmicrohttpd-dev libsqlite3-dev sqlite3 libjpeg62-turbo-dev libpng-dev \
  libcurl4-openssl-dev zlib1g-dev curl python3 dataset-fashion-mnist \
  python3-numpy libjpeg-turbo-progs wrk
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

## deps: install the missing Debian packages with apt-get (root or sudo)
deps:
	@missing=$$(for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing" $$missing; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

## run: install what is missing, build, start isifd on 127.0.0.1:8080
run: deps all
	@mkdir -p var
	@echo "isifd: dashboard at http://127.0.0.1:8080/  (Ctrl-C stops it; jobs resume at the next start)"
	@echo "train on Fashion-MNIST:"
	@echo "  curl -s -X POST http://127.0.0.1:8080/jobs -H 'Content-Type: application/json' \\"
	@echo "       -d '{\"dataset\": \"fashion-mnist\", \"model\": \"convnet\", \"epochs\": 5, \"train_subset\": 10000}'"
	@echo "  curl -s http://127.0.0.1:8080/jobs/1/metrics"
	exec $(ISIFD) --listen 127.0.0.1:8080 --state-dir ./var --web-dir web

# ---- reliability: fuzzing, slow suites, CI (issue 8) ---------------------------
# tests/fuzz/fuzz_<t>.c are libFuzzer targets. `make fuzz` builds them with
# clang (FLAVOUR=fuzz, build/fuzz/) and runs each for FUZZ_SECONDS from the
# seed corpora in tests/fuzz/corpus/<t>/; findings land in build/fuzz/crashes/.
# Every build also links each target with tests/fuzz/replay_main.c as
# $(B)/fuzz_replay/<t>, which make test uses to replay the seeds and every
# crasher kept in tests/fuzz/regress/<t>/ (no clang needed for that).
FUZZ_TARGETS   := spec idx cifar stl image safetensors npy http urlguard
FUZZ_SERVER_TARGETS := http urlguard   # these link the daemon's objects
FUZZ_REPLAY    := $(FUZZ_TARGETS:%=$(B)/fuzz_replay/%)
FUZZ_UTIL_OBJ  := $(B)/obj/tests/fuzz/fuzz_util.o
FUZZ_SERVER_OBJ := $(filter-out $(B)/obj/server/main.o $(B)/obj/server/jobrun.o,$(SERVER_OBJ))
FUZZ_SECONDS   ?= 30

all: $(FUZZ_REPLAY)
.SECONDARY: $(FUZZ_TARGETS:%=$(B)/obj/tests/fuzz/fuzz_%.o)

$(FUZZ_SERVER_TARGETS:%=$(B)/obj/tests/fuzz/fuzz_%.o): ALLCFLAGS += $(SERVER_CFLAGS)

$(B)/fuzz_replay/%: $(B)/obj/tests/fuzz/fuzz_%.o $(B)/obj/tests/fuzz/replay_main.o $(FUZZ_UTIL_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(FUZZ_SERVER_TARGETS:%=$(B)/fuzz_replay/%): $(B)/fuzz_replay/%: $(B)/obj/tests/fuzz/fuzz_%.o $(B)/obj/tests/fuzz/replay_main.o $(FUZZ_UTIL_OBJ) $(FUZZ_SERVER_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(SERVER_LIBS)

# The libFuzzer binaries (FLAVOUR=fuzz only: -fsanitize=fuzzer brings main).
$(B)/fuzz_%: $(B)/obj/tests/fuzz/fuzz_%.o $(FUZZ_UTIL_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(FUZZ_SERVER_TARGETS:%=$(B)/fuzz_%): $(B)/fuzz_%: $(B)/obj/tests/fuzz/fuzz_%.o $(FUZZ_UTIL_OBJ) $(FUZZ_SERVER_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(SERVER_LIBS)

.PHONY: fuzz fuzz-build fuzz-deps bench-deps
fuzz-build: $(FUZZ_TARGETS:%=$(B)/fuzz_%)

# Only make fuzz needs clang; libFuzzer's runtime is a mere Recommends of it.
FUZZ_DEB_PKGS := clang libclang-rt-14-dev
## bench-deps: the optional PyTorch reference make bench compares against
BENCH_DEB_PKGS := python3-torch python3-torchvision linux-perf
bench-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(BENCH_DEB_PKGS)"

fuzz-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(FUZZ_DEB_PKGS)"

## fuzz: clang libFuzzer over every parser, FUZZ_SECONDS (30) each; prints runs and crashes per target
fuzz: deps fuzz-deps
	$(MAKE) FLAVOUR=fuzz CC=clang fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh $(FUZZ_TARGETS)

## test-slow: the 200-kill crash loop and hostile HTTP with a 60 s wrk run (~5 min); ends with "N passed, N failed"
.PHONY: test-slow
test-slow: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(B) bash tests/slow/run.sh

clean:
	rm -rf build

help:
	@grep -E '^## ' Makefile | sed 's/^## /  make /'

# ---- dashboard (issue 6): npm packages -----------------------------------------
# web-deps: uPlot from npm (web/package-lock.json pins version and hash),
# its ES module, CSS and licence copied into web/vendor/ (git-ignored) where
# isifd serves them; web/node_modules is removed again so `make install`
# copies only the dashboard. browser-deps: playwright-core for
# tests/browser/ (the browser itself is Debian's chromium, which
# tests/integration/dashboard.sh installs when missing).
WEB_VENDOR := web/vendor/uPlot.esm.js
.PHONY: web-deps browser-deps
## web-deps: install the dashboard's chart library (npm ci) into web/vendor/
web-deps: $(WEB_VENDOR)
$(WEB_VENDOR): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p web/vendor
	cp web/node_modules/uplot/dist/uPlot.esm.js web/node_modules/uplot/dist/uPlot.min.css web/vendor/
	cp web/node_modules/uplot/LICENSE web/vendor/uPlot.LICENSE.txt
	rm -rf web/node_modules
	touch $@
browser-deps: tests/browser/node_modules/.package-lock.json
tests/browser/node_modules/.package-lock.json: tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error
test sanitize run install: web-deps
test sanitize: browser-deps
