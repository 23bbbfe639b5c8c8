# atoll — one binary, everything from this Makefile.
GO        ?= go
BIN       := bin/atoll
PKGS      := ./...
# Debian packages the tests need, as "command:package"; installed when
# missing (as root). ZooKeeper's scripts are not on PATH: its entry is a
# path. Chromium drives the web UI tests. Containers (issue 15): runc runs
# them, docker-registry serves test images on loopback, the CNI plugins
# (paths: not on PATH) wire bridge networking, and the static busybox is
# copied into test images as their /bin/sh; the portmap plugin calls
# iptables; ip and nsenter put the container tests in a network namespace
# of their own. QEMU boots a cgroup v2 kernel for internal/cgroup's
# tests (xz unpacks that kernel, so that it boots fast).
TEST_DEPS  := curl:curl dig:bind9-dnsutils haproxy:haproxy /usr/share/zookeeper/bin/zkServer.sh:zookeeper chromium:chromium \
	runc:runc docker-registry:docker-registry /usr/lib/cni/bridge:containernetworking-plugins /bin/busybox:busybox-static \
	iptables:iptables ip:iproute2 nsenter:util-linux qemu-system-x86_64:qemu-system-x86 xz:xz-utils
# ...and the ones make bench needs: the DNS load generator and the
# reference server it compares against, the HTTP load generator and the
# HAProxy the LB benchmark drives; runc, the registry and busybox for
# container start latency (agent/container's BenchmarkStart).
BENCH_DEPS := dnsperf:dnsperf knotd:knot wrk:wrk haproxy:haproxy \
	runc:runc docker-registry:docker-registry /bin/busybox:busybox-static
# ...and the ones the network-namespace lab (make lab, make chaos) runs.
LAB_DEPS   := ip:iproute2 iptables:iptables haproxy:haproxy /usr/share/zookeeper/bin/zkServer.sh:zookeeper
# The lab's tool: builds the three-region lab, injects faults, runs chaos.
LAB        := bin/atoll-lab

.PHONY: all build run test unit integration bench lint deps bench-deps clean lab lab-down chaos lab-deps lab-tool

all: build

build:
	$(GO) build -o $(BIN) ./cmd/atoll

run: build
	./$(BIN) dev --demo

# install-deps installs the packages of a "command:package" list whose
# command is missing.
define install-deps
	@missing=""; for dep in $(1); do \
		cmd=$${dep%%:*}; pkg=$${dep##*:}; \
		command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "missing Debian packages:$$missing (run make $(2) as root)"; exit 1; \
		fi; \
	fi
endef

deps:
	$(call install-deps,$(TEST_DEPS),deps)

bench-deps:
	$(call install-deps,$(BENCH_DEPS),bench-deps)

test: deps lint
	$(GO) test -count=1 -race -timeout 14m $(PKGS)
	# The DNS packet handler under the fuzzer, briefly (seeds run above too).
	# A count, not a duration: go1.26's fuzz coordinator can fail a
	# duration run at its deadline with "context deadline exceeded"
	# (golang/go#75804, fixed in go1.27).
	$(GO) test -run '^$$' -fuzz '^FuzzServePacket$$' -fuzztime 60000x ./dnsserver/

unit:
	$(GO) test -count=1 -short $(PKGS)

integration: build
	$(GO) test -count=1 -v -timeout 10m ./integration/

bench: bench-deps build
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	$(GO) run ./bench/dns --atoll $(BIN)
	$(GO) run ./bench/lb --atoll $(BIN)
	$(GO) run ./bench/deploy --atoll $(BIN)
	$(GO) run ./bench/natscost
	# issue 13: 1,000 simulated agents, local store then ZooKeeper, up to
	# 30k tasks and a 10,000-instance scale-up. The full run (to 100k):
	# go run ./bench/scale --atoll bin/atoll
	$(GO) run ./bench/scale --atoll $(BIN) --sizes 10000,30000 --batch-timeout 2m

lab-deps:
	$(call install-deps,$(LAB_DEPS),lab)

lab-tool:
	$(GO) build -o $(LAB) ./deploy/lab

# The three-region lab in network namespaces (root; see deploy/lab/README.md).
# Not part of make test. lab-down needs only the lab tool, so it cleans up
# even when bin/atoll does not build.
lab: lab-deps build lab-tool
	./$(LAB) up

lab-down: lab-tool
	./$(LAB) down

# The seeds' four failure scenarios (and a fifth step) under client
# traffic; builds the lab first when none runs. Ends with "chaos: N passed, M failed".
chaos: lab-deps build lab-tool
	./$(LAB) chaos

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

clean:
	rm -rf bin build .atoll
