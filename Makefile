# muscle - build, test, demo.  `make demo` and `make test` install their own Debian packages.
CC      ?= gcc
BUILD   ?= build
PKGS    := openblas libcjson
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
OPT     ?= -O3
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -g -march=x86-64 -mtune=znver3 -fno-math-errno -Wall -Wextra -Werror -fopenmp -Isrc $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -ldnnl -lutf8proc -lpcre2-8 -lm
# MPI (data-parallel training, sharded evaluation: docs/distributed.md): used when mpicc is
# found (Debian: libopenmpi-dev); MPI=0 builds without it. The same binary runs as one
# process when not started by an MPI launcher.
MPI     ?= $(if $(shell command -v mpicc 2>/dev/null),1,0)
ifeq ($(MPI),1)
MPI_CFLAGS := -DMUSCLE_MPI $(shell mpicc --showme:compile 2>/dev/null || pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS   := $(shell mpicc --showme:link 2>/dev/null || pkg-config --libs ompi-c 2>/dev/null)
endif
CFLAGS  += $(MPI_CFLAGS)
LDLIBS  += $(MPI_LIBS)
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC := $(filter-out src/cli/%,$(wildcard src/*/*.c))
CLI_SRC := $(wildcard src/cli/*.c)
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/*/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

.PHONY: FORCE all deps test-deps test test-fast test-asan demo bench clean fuzz
all: deps $(BUILD)/muscle $(TEST_BIN)

deps:
	@scripts/deps.sh build
test-deps:
	@scripts/deps.sh test

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# rebuild what depends on the MPI choice when it changes
$(BUILD)/mpi.flags: FORCE
	@mkdir -p $(dir $@)
	@echo '$(MPI_CFLAGS) $(MPI_LIBS)' | cmp -s - $@ 2>/dev/null || echo '$(MPI_CFLAGS) $(MPI_LIBS)' >$@
$(BUILD)/src/core/dist.o: $(BUILD)/mpi.flags
FORCE:

$(BUILD)/libmuscle.a: $(LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/muscle: $(CLI_OBJ) $(BUILD)/libmuscle.a
	@echo "  LD $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/%.c $(BUILD)/libmuscle.a tests/testutil.h
	@mkdir -p $(dir $@)
	@echo "  LD $@"
	@$(CC) $(CFLAGS) -Itests $(LDFLAGS) $< $(BUILD)/libmuscle.a $(LDLIBS) -lcmocka -o $@

# Benchmark programs (bench/*.sh build them here, with the library's flags and libraries).
$(BUILD)/bench_%: bench/bench_%.c $(BUILD)/libmuscle.a
	@echo "  LD $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) $< $(BUILD)/libmuscle.a $(LDLIBS) -o $@

# Everything the README promises: unit tests, CLI tests, then the sanitizer build.
test: test-deps
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory BUILD=build-asan SAN=1 OPT=-O1 all
	tests/run.sh

# Fuzzing (libFuzzer, clang, ASan+UBSan): every parser harness for FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
fuzz: test-deps
	fuzz/run_io.sh $(FUZZ_SECONDS)
	fuzz/run_tokenizer.sh $(FUZZ_SECONDS)
	fuzz/run_files.sh $(FUZZ_SECONDS)

demo: deps
	$(MAKE) --no-print-directory all
	scripts/demo.sh

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
