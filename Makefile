# pocketcheck - the Makefile wraps the real commands; `make` alone prints help.
SHELL := /bin/bash
PY    := .venv/bin/python
PIP   := .venv/bin/pip
PYTEST:= .venv/bin/pytest
B     := build

CFLAGS_STRICT := -std=c99 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wvla
CORE_SRC := $(wildcard native/src/*.c)
CORE_INC := -Inative/include -Inative/src
CORE_LIBS:= -lpcap -lcrypto
CTESTS   := $(wildcard native/tests/test_*.c)
FUZZERS  := $(wildcard native/fuzz/fuzz_*.c)
SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1

.DEFAULT_GOAL := help
.PHONY: help deps venv build native-check ctest ctest-san arm fuzz fuzz-smoke test pytest bench bench-c demo image image-test lint clean

help:  ## this help
	@echo "pocketcheck - make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 22

deps:  ## install the Debian packages the build and tests need (apt; root or sudo)
	@bash tools/install-deps.sh

.venv/done: pyproject.toml setup.py
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

venv: deps .venv/done  ## create .venv with pocketcheck and the test tools

build: .venv/done  ## rebuild the C core in place after editing native/
	$(PY) native/build_native.py

native-check:  ## compile the core warning-free with gcc and clang (-Wall -Wextra -Werror)
	@mkdir -p $(B)
	for cc in gcc clang; do for f in $(CORE_SRC); do $$cc $(CFLAGS_STRICT) $(CORE_INC) -c $$f -o $(B)/check.o || exit 1; done; done
	@echo "native-check: gcc and clang clean"

CORE_HDR := $(wildcard native/src/*.h native/include/*.h)

$(B)/ctest/%: native/tests/%.c $(CORE_SRC) $(CORE_HDR) $(wildcard native/tests/*.h)
	@mkdir -p $(dir $@)
	gcc $(CFLAGS_STRICT) -O1 -g $(CORE_INC) $< $(CORE_SRC) $(CORE_LIBS) -o $@

$(B)/ctest-san/%: native/tests/%.c $(CORE_SRC) $(CORE_HDR) $(wildcard native/tests/*.h)
	@mkdir -p $(dir $@)
	clang $(CFLAGS_STRICT) $(SAN) $(CORE_INC) $< $(CORE_SRC) $(CORE_LIBS) -o $@

ctest: $(patsubst native/tests/%.c,$(B)/ctest/%,$(CTESTS))  ## C unit tests
	@for t in $^; do echo "== $$t"; $$t || exit 1; done

ctest-san: $(patsubst native/tests/%.c,$(B)/ctest-san/%,$(CTESTS))  ## C unit tests under ASan + UBSan
	@for t in $^; do echo "== $$t"; ASAN_OPTIONS=detect_leaks=1 $$t || exit 1; done

arm:  ## cross-compile for the Pi Zero W (ARMv6) and run the C tests under qemu-arm -cpu arm1176
	@bash tools/arm-test.sh

$(B)/fuzz/%: native/fuzz/%.c $(CORE_SRC) $(CORE_HDR) $(wildcard native/fuzz/*.h native/tests/*.h)
	@mkdir -p $(dir $@)
	clang $(CFLAGS_STRICT) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g -O1 $(CORE_INC) $< $(CORE_SRC) $(CORE_LIBS) -o $@

FUZZ_SECONDS ?= 600
fuzz: $(patsubst native/fuzz/%.c,$(B)/fuzz/%,$(FUZZERS))  ## run every libFuzzer harness (FUZZ_SECONDS each, or FUZZ_RUNS executions each)
	@FUZZ_RUNS=$(FUZZ_RUNS) bash tools/fuzz.sh $(FUZZ_SECONDS) $^

fuzz-smoke: $(patsubst native/fuzz/%.c,$(B)/fuzz/%,$(FUZZERS))  ## a short run of each harness, as the tests do
	@bash tools/fuzz.sh 20 $^

pytest: .venv/done
	$(PYTEST) -q

test: venv native-check ctest ctest-san fuzz-smoke arm  ## run every test (C, sanitizers, fuzz smoke, ARM, Python)
	$(PY) native/build_native.py
	$(PYTEST) -q

bench: venv  ## benchmarks, side by side with the reference tools
	$(PY) native/build_native.py
	$(PYTEST) -q -s tests/bench --benchmark-columns=min,mean,ops -p no:cacheprovider -o addopts="--strict-markers"

# The C-level batch rate of the matcher (native/bench/bench_matcher.c), on the
# names of tests/bench/test_bench_matcher.py; make bench prints it beside the
# Python rate. Under callgrind: valgrind --tool=callgrind build/bench/bench_matcher
# build/bench/10k/domains.txt build/bench/10k/names.txt 1 (instructions per name).
BENCH_SRC := $(wildcard native/src/matcher*.c) native/src/pc_alloc.c
$(B)/bench/bench_matcher: native/bench/bench_matcher.c $(BENCH_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	gcc $(CFLAGS_STRICT) -O2 -g $(CORE_INC) $< $(BENCH_SRC) -o $@

bench-c: .venv/done $(B)/bench/bench_matcher  ## the C matcher's batch rate alone: 10k indicators x 1M names, best of 10
	$(PY) tests/bench/test_bench_matcher.py dump 10000 $(B)/bench/10k
	$(B)/bench/bench_matcher $(B)/bench/10k/domains.txt $(B)/bench/10k/names.txt 10

demo: venv  ## the whole appliance flow, simulated: two phones, two reports
	$(PY) native/build_native.py
	.venv/bin/pocketcheck demo --out demo-out

TARGET ?= zerow
# The Zero 2 W's CYW43436 Wi-Fi firmware (in no Debian package): ../shared
# beside the clone has it with its SOURCE.md; empty or missing = built without.
WIFI_FIRMWARE_DIR ?= $(CURDIR)/../shared/firmware/brcm
image: .venv/done  ## build the SD card: make image TARGET=zerow|zero2w (root; ~30-60 min)
	WIFI_FIRMWARE_DIR='$(WIFI_FIRMWARE_DIR)' bash image/build.sh $(TARGET)

image-test: .venv/done  ## check a built image and boot it in QEMU: make image-test TARGET=zerow|zero2w
	$(PYTEST) -q tests/integration/test_image_static.py
	IMAGE_TARGET=$(TARGET) $(PYTEST) -q -s -m slow tests/integration/test_image_boot.py

lint: .venv/done  ## ruff over the Python
	.venv/bin/ruff check appliance tests

clean:  ## remove build products
	rm -rf $(B) appliance/_native*.so appliance/_native.c appliance/*.o native/src/*.o
