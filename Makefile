# slmgate — two commands: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := run

MODELS_DIR ?= $(HOME)/.cache/slmgate/models
export MODELS_DIR
export SLMGATE_MODELS_DIR := $(MODELS_DIR)
CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python
# `make run CPU=v4` builds llama.cpp with AVX-512/VNNI (faster prompts on recent Xeons);
# the default x86-64-v3 (AVX2) runs on any x86 server of the last decade.
CPU ?= v3
ifeq ($(CPU),v4)
export RUSTFLAGS := -C target-cpu=x86-64-v4 -C target-feature=+avx512vnni,+avx512bf16,+avx512vbmi,+avxvnni,+f16c,+fma,+bmi2
endif

.PHONY: run test deps test-deps models build build-debug venv rust-test py-test fuzz fuzz-smoke bench fmt lint clean

## run: install what is missing, fetch the default models, build, start the gateway on 127.0.0.1:8080
run: deps models build
	./target/release/slmgate serve

## test: the whole suite (Rust unit + engine tests, then the real binary driven by the official SDKs)
test: deps test-deps models build-debug venv rust-test py-test fuzz-smoke

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-test-deps.sh

models:
	@scripts/fetch-models.sh

build:
	$(CARGO) build --release -p slmgate

build-debug:
	$(CARGO) build -p slmgate

venv: $(VENV)/.stamp
$(VENV)/.stamp: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
	touch $@

rust-test:
	$(CARGO) test --workspace

py-test:
	SLMGATE_BIN=$(CURDIR)/target/debug/slmgate $(PY) -m pytest -q tests

## fuzz: every cargo-fuzz target for FUZZ_SECS seconds (default 300), new inputs kept in fuzz/corpus
FUZZ_SECS ?= 300
fuzz:
	scripts/fuzz.sh $(FUZZ_SECS) --keep

# The short fuzz run of `make test` (10 s per target; a nightly toolchain is needed).
fuzz-smoke:
	scripts/fuzz.sh 10

## bench: engine and gateway benchmarks (see docs/benchmarks.md)
bench: deps models build
	$(CARGO) bench -p slmgate-engine
	python3 bench/gateway_overhead.py

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(VENV) tests/.logs tests/.artifacts tests/browser/node_modules
