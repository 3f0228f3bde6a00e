# muscle - build, test, demo.  `make demo` and `make test` install their own Debian packages.
CC      ?= gcc
BUILD   ?= build
PKGS    := openblas libcjson
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
OPT     ?= -O3
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -g -march=x86-64 -mtune=znver3 -fno-math-errno -Wall -Wextra -Werror -fopenmp -Isrc $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lutf8proc -lpcre2-8 -lm
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

.PHONY: all deps test-deps test test-fast test-asan demo bench clean fuzz
all: deps $(BUILD)/muscle $(TEST_BIN)

deps:
	@scripts/deps.sh build
test-deps:
	@scripts/deps.sh test

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

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
