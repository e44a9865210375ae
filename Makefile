# isifd — build, test and run. `make help` lists the targets.
#
# Build flavours live in separate trees so they never mix:
#   build/        release (-O2 -march=native)
#   build/asan/   AddressSanitizer + UndefinedBehaviorSanitizer
#   build/tsan/   ThreadSanitizer (scheduler tests)

CC      ?= cc
PKGS    := openblas jansson zlib libpng libjpeg
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
BASEFLAGS := -std=c11 -D_GNU_SOURCE -g -pthread -Iinclude $(WARN) $(PKG_CFLAGS)
OPT     ?= -O2 -march=native -fopenmp
LDLIBS  := $(PKG_LIBS) -lm -pthread

FLAVOUR ?= release
ifeq ($(FLAVOUR),asan)
  B := build/asan
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
else ifeq ($(FLAVOUR),tsan)
  B := build/tsan
  OPT := -O1 -fsanitize=thread
  LDFLAGS += -fsanitize=thread
else
  B := build
  LDFLAGS += -fopenmp
endif
CFLAGS ?=
ALLCFLAGS = $(BASEFLAGS) $(OPT) $(CFLAGS)

CORE_SRC  := $(wildcard core/*.c)
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

## tsan: ThreadSanitizer over the threaded tests (loader, trainer)
tsan: deps
	$(MAKE) FLAVOUR=tsan build/tsan/unit_tests
	TSAN_OPTIONS=halt_on_error=1 build/tsan/unit_tests loader_ trainer_

## bench: training-step timings per model, kNN timing, PyTorch crosscheck (never fails on speed)
bench: all $(B)/knn_bench $(B)/gemm_bench $(B)/layer_bench
	@BUILD=$(B) bash bench/run.sh

# Debian 12 packages the build, the tests and the default dataset need.
DEB_PKGS := build-essential pkg-config libopenblas-dev libjansson-dev \
  libmicrohttpd-dev libsqlite3-dev sqlite3 libjpeg62-turbo-dev libpng-dev \
  libcurl4-openssl-dev zlib1g-dev curl python3 dataset-fashion-mnist
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
	@echo "isifd is not built yet (see issue 4); the engine CLI is $(ISIF)"

clean:
	rm -rf build

help:
	@grep -E '^## ' Makefile | sed 's/^## /  make /'
