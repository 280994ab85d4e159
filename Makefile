# Thin wrapper over CMake. `make demo` and `make check` work on a fresh
# Debian 12 machine: both install what is missing first.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
CHECK_BUILD ?= build-check

.PHONY: all deps build demo check bench clean format-check banned

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target sluice

demo: build
	@$(BUILD)/sluice demo

check: deps banned
	@cmake -S . -B $(CHECK_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON \
		-DSLUICE_WERROR=$${SLUICE_WERROR:-ON} >/dev/null
	@cmake --build $(CHECK_BUILD) -j $(JOBS)
	@cd $(CHECK_BUILD) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: build
	@scripts/install-deps --bench
	@bench/run

banned:
	@scripts/check-banned

clean:
	rm -rf $(BUILD) $(CHECK_BUILD)
