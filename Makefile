# The README's commands. Everything real lives in CMake; this file only
# strings the steps together.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 20

.PHONY: all deps build run test test-unit test-asan clean format

all: build

deps:
	scripts/deps.sh all

build:
	scripts/deps.sh build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

# The demo: a CA, certificates for alice (valid), bob (revoked) and carol
# (expired), and a gateway on https://localhost:8443 in front of an
# upstream that answers with the identity it received.
run: build
	$(BUILD)/certgate demo

# Every suite (unit + integration), then all of them again under
# AddressSanitizer + UndefinedBehaviorSanitizer, then each libFuzzer
# target for a bounded time.
test: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)
	cd $(BUILD) && ctest -j$(JOBS) --output-on-failure
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCG_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ctest -j$(JOBS) --output-on-failure
	fuzz/run.sh $(FUZZ_SECONDS)

test-unit: build
	cd $(BUILD) && ctest -j$(JOBS) -R '^unit_' --output-on-failure

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'fuzz/*.c' 'bench/*.c')
