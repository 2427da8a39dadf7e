# banshee — make demo runs the demo, make test runs every test (as root, with
# the privileged network-namespace tests), make bench prints the benchmarks.
SHELL := /bin/bash
GO    ?= go
BIN   := bin

.PHONY: all build deps demo test test-short lint bench clean

all: build

build:
	$(GO) build -trimpath -o $(BIN)/banshee ./cmd/banshee

# Debian packages the host firewall, the tests and the demo need.
deps:
	@.ci/deps

demo: deps build
	@cmd/banshee/demo/demo.sh $(BIN)/banshee

# Every test, including the privileged ones (network namespaces, iptables,
# ipset, real packets) and the AWS ones against moto_server. Run as root.
test: deps
	$(GO) test -count=1 -timeout 40m ./...

# What an ordinary user can run: privileged tests skip themselves.
test-short:
	$(GO) test -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...
	$(GO) mod tidy -diff

# Benchmarks print their figures (medians, calls, rates) as metrics.
bench: deps
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

clean:
	rm -rf $(BIN) dist

-include lambda.mk
