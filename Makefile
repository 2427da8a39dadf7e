# banshee — make builds bin/banshee, make install puts it on PATH, make demo
# runs the demo, make test runs every test (as root, with the privileged
# network-namespace tests), make bench prints the benchmarks.
SHELL   := /bin/bash
GO      ?= go
BIN     ?= bin
PREFIX  ?= /usr/local
DESTDIR ?=
# -trimpath keeps build paths out of the binary; tests clear it to share
# the build cache of go test.
GOBUILDFLAGS ?= -trimpath

.PHONY: all build install deps demo test test-short lint bench clean

all: build

# The first build compiles the AWS SDK's EC2 package, which dominates: say
# so, or a silent first build looks like a hang.
build:
	@if [ ! -x $(BIN)/banshee ]; then \
		echo "building $(BIN)/banshee with $$($(GO) env GOVERSION): the first build compiles the AWS SDK's EC2 package and takes about 6 minutes on 2 cores; later builds take seconds"; \
	fi
	@# git may refuse to describe a checkout owned by someone else: then
	@# build without the revision rather than fail.
	@# Static (no cgo): one binary for any Linux, and a faster start.
	CGO_ENABLED=0 $(GO) build -buildvcs=auto $(GOBUILDFLAGS) -o $(BIN)/banshee ./cmd/banshee 2>/dev/null || \
		CGO_ENABLED=0 $(GO) build -buildvcs=false $(GOBUILDFLAGS) -o $(BIN)/banshee ./cmd/banshee

# Puts banshee on PATH: $(DESTDIR)$(PREFIX)/bin/banshee (default
# /usr/local/bin/banshee).
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN)/banshee $(DESTDIR)$(PREFIX)/bin/banshee
	@echo "installed $(DESTDIR)$(PREFIX)/bin/banshee"

# Debian packages the host firewall, the tests and the demo need.
deps:
	@.ci/deps

# Both layers in one run (as root): host DROP with real packets in network
# namespaces, network ACL deny in a VPC held by moto_server when it is on
# PATH. Never touches the firewall of the machine's own namespace.
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
