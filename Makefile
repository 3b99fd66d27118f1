# Sluice: progressive delivery for Kubernetes.
# `make test` builds what it needs (tools cached in ~/.cache/sluice) and runs everything.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
BIN := $(CURDIR)/bin
CONTROLLER_GEN := $(BIN)/controller-gen
GOLANGCI_LINT := $(BIN)/golangci-lint
GOLANGCI_LINT_KAL := $(BIN)/golangci-lint-kube-api-linter
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# kustomize_disable_go_plugin_support: GitSync embeds kustomize, whose Go
# plugin loader imports "plugin"; that makes the linker export every symbol
# and adds about 50 MB to the binary and to the memory it maps
# (docs/scale.md "Memory").
GO_TAGS ?= kustomize_disable_go_plugin_support
GO_TEST_FLAGS ?= -race -count=1 -parallel 4

.DEFAULT_GOAL := help

##@ General
.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z0-9_-]+:.*?##/ { printf "  %-12s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development
# Each tool is its own target, so that `make -j2 tools` (what make test
# runs) builds two at once: a cold build spends much of its wall time
# downloading modules and linking with a core idle. Each script builds under
# its own lock. The two Debian packages are installed one after the other
# (apt-get takes the dpkg lock).
TOOL_TARGETS := tool-cluster tool-gitea tool-helm tool-lint tool-gen tool-crds tool-graphite tool-influxdb tool-prometheus tool-chromium
.PHONY: tools $(TOOL_TARGETS)
tools: $(TOOL_TARGETS) ## Build the pinned tools (controller-gen, etcd, kube-apiserver, kwok, helm, golangci-lint, gitea, go-carbon, carbonapi, influxd, chromium, ...) and fetch provider CRDs into a cache, linked in bin/.
tool-gen: ; hack/tools.sh gen
tool-cluster: ; hack/tools.sh cluster
tool-helm: ; hack/tools.sh helm
tool-lint: ; hack/tools.sh lint
tool-crds: ; hack/crds.sh
tool-prometheus: ; hack/prometheus.sh
tool-gitea: ; hack/gitea.sh
tool-graphite: ; hack/graphite.sh
tool-influxdb: ; hack/influxdb.sh
tool-chromium: | tool-prometheus ; hack/chromium.sh

.PHONY: traefik
traefik: ## Build Traefik, the local stack's data plane, from the Go module proxy (cached in ~/.cache/sluice), linked as bin/traefik.
	hack/traefik.sh

.PHONY: skipper
skipper: ## Build Skipper, the skipper provider's data plane, from the Go module proxy with Go 1.27 (cached in ~/.cache/sluice), linked as bin/skipper.
	hack/skipper.sh

.PHONY: generate
generate: ## Generate deepcopy code from the API types.
	hack/tools.sh gen
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...
	@# The capability table of docs/routers.md, from the routers' declared capabilities.
	go run ./hack/routerdocs

# Generated files go under MANIFESTS_OUT (the tree by default; hack/verify-generated.sh
# points it at a temporary directory and compares).
MANIFESTS_OUT ?= $(CURDIR)
# One ClusterRole per feature, each generated from the markers of its own packages
# (config/rbac/generated/<feature>/role.yaml); the chart binds them per feature.
RBAC_FEATURES := manager engine istio gatewayapi traefik linkerd smi gloo kuma apisix notifications gitsync promotion nginx skipper contour knative dashboard
rbac_paths_manager := ./cmd/sluice
rbac_paths_engine := ./pkg/canary/...,./pkg/metrics/...,./pkg/webhooks/...,./pkg/router,./pkg/router/kubernetes/...
rbac_paths_istio := ./pkg/router/istio/...
rbac_paths_gatewayapi := ./pkg/router/gatewayapi/...
rbac_paths_traefik := ./pkg/router/traefik/...
rbac_paths_linkerd := ./pkg/router/linkerd/...
rbac_paths_smi := ./pkg/router/smi/...
rbac_paths_gloo := ./pkg/router/gloo/...
rbac_paths_kuma := ./pkg/router/kuma/...
rbac_paths_apisix := ./pkg/router/apisix/...
rbac_paths_notifications := ./pkg/notify/...
rbac_paths_gitsync := ./pkg/gitsync/...
rbac_paths_promotion := ./pkg/promotion/...
rbac_paths_nginx := ./pkg/router/nginx/...
rbac_paths_skipper := ./pkg/router/skipper/...
rbac_paths_contour := ./pkg/router/contour/...
rbac_paths_knative := ./pkg/router/knative/...
rbac_paths_dashboard := ./pkg/dashboard/...

.PHONY: manifests
manifests: ## Generate CRDs (config/crd/bases), per-feature RBAC (config/rbac/generated/<feature>) and the chart's copies of both.
	hack/tools.sh gen
	rm -rf $(MANIFESTS_OUT)/config/crd/bases $(MANIFESTS_OUT)/config/rbac/generated $(MANIFESTS_OUT)/charts/sluice/crds $(MANIFESTS_OUT)/charts/sluice/rbac
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./api/... output:crd:artifacts:config=$(MANIFESTS_OUT)/config/crd/bases
	$(foreach f,$(RBAC_FEATURES),$(CONTROLLER_GEN) rbac:roleName=sluice-$(f) paths="{$(rbac_paths_$(f))}" output:rbac:artifacts:config=$(MANIFESTS_OUT)/config/rbac/generated/$(f) &&) true
	@# The chart reads these copies (helm cannot reach files outside the chart); verify fails when they differ.
	mkdir -p $(MANIFESTS_OUT)/charts/sluice/crds $(MANIFESTS_OUT)/charts/sluice/rbac
	cp $(MANIFESTS_OUT)/config/crd/bases/*.yaml $(MANIFESTS_OUT)/charts/sluice/crds/
	$(foreach f,$(RBAC_FEATURES),cp $(MANIFESTS_OUT)/config/rbac/generated/$(f)/role.yaml $(MANIFESTS_OUT)/charts/sluice/rbac/$(f).yaml &&) true

.PHONY: fmt
fmt: ## Format the Go code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet (also on the e2e scenarios, behind the e2e build tag).
	go vet ./...
	go vet -tags e2e ./e2e/...

.PHONY: lint
lint: ## Run golangci-lint (.golangci.yml) over the whole module, e2e scenarios included.
	hack/tools.sh lint
	# Another golangci-lint on the machine (a second clone, an editor) holds
	# its cache lock: wait for it rather than fail.
	$(GOLANGCI_LINT) run --allow-serial-runners ./...

.PHONY: lint-api
lint-api: ## Run kube-api-linter (.golangci-kal.yml) over the API types in api/.
	hack/tools.sh lint
	$(GOLANGCI_LINT_KAL) run --allow-serial-runners --config .golangci-kal.yml ./api/...

.PHONY: verify
verify: ## Fail when generated files are stale or Go code is not formatted.
	hack/tools.sh gen
	hack/verify-generated.sh

.PHONY: build
build: ## Build the sluice manager, the load tester and the kubectl plugin into bin/.
	go build -trimpath -tags "$(GO_TAGS)" -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN)/sluice ./cmd/sluice
	go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN)/loadtester ./cmd/loadtester
	go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN)/kubectl-sluice ./cmd/kubectl-sluice

.PHONY: run
run: ## Run the manager against the cluster of the current kubeconfig (leader election off).
	go run ./cmd/sluice --leader-elect=false --log-encoding=console

##@ Demo
.PHONY: demo
demo: tools traefik ## A whole canary release on a local stack (control plane, Traefik, Prometheus, Git), narrated; tears down at the end.
	go run ./e2e/demo

##@ Testing
.PHONY: test
test: ## Verify generated files, vet, lint, run unit and integration tests (real kube-apiserver), then the end-to-end scenarios.
	$(MAKE) --no-print-directory -j2 tools
	$(MAKE) --no-print-directory -j2 checks data-planes
	go test $(GO_TEST_FLAGS) ./...
	go test -tags e2e -count=1 -timeout 30m ./e2e/...

# The checks of make test, one after the other. make test runs them while
# it builds the data planes only the end-to-end scenarios need: neither
# waits on a timeout, so the extra load makes nothing flaky.
.PHONY: checks
checks:
	$(MAKE) --no-print-directory verify vet lint lint-api

.PHONY: data-planes
data-planes: traefik skipper

# Fuzz targets, as package:Target. go test runs their seed corpora (f.Add and
# testdata/fuzz) in `make test`; `make fuzz` explores each for FUZZTIME.
FUZZ_TARGETS := \
	./pkg/metrics:FuzzRender \
	./pkg/cli:FuzzConvert \
	./pkg/cli:FuzzHeyToHTTPLoad \
	./pkg/gitsync:FuzzBuild \
	./pkg/gitsync:FuzzParseSSHSignature \
	./pkg/gitsync/receiverfuzz:FuzzReceiver \
	./pkg/webhooks:FuzzVerifySignature \
	./pkg/commitstatus:FuzzHostReason \
	./pkg/commitstatus:FuzzParseRepository \
	./pkg/imagescan:FuzzPolicy_Latest \
	./pkg/canary:FuzzDecide
FUZZTIME ?= 30s
FUZZ_PARALLEL ?= 2

.PHONY: fuzz
fuzz: tools ## Run each fuzz target for FUZZTIME (default 30s); a failing input is saved under the package's testdata/fuzz/ (commit it with the fix).
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$pkg $$name ($(FUZZTIME))"; \
		go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -parallel $(FUZZ_PARALLEL) $$pkg; \
	done

.PHONY: e2e
e2e: tools traefik skipper ## Run the end-to-end scenarios (e2e/) with real traffic: control plane, Traefik, Skipper, Prometheus, sluice.
	go test -tags e2e -count=1 -timeout 30m ./e2e/...

# The Skipper scenarios alone (they also run in make e2e and make test).
E2E_SKIPPER := ^TestSkipper_

.PHONY: e2e-skipper
e2e-skipper: tools traefik skipper ## Run the Skipper scenarios (e2e/skipper_test.go): real traffic through Skipper built by hack/skipper.sh.
	go test -tags e2e -count=1 -timeout 15m -run '$(E2E_SKIPPER)' ./e2e/

.PHONY: bench
bench: ## Run the scale benchmark at N=100 (BENCH_ARGS="-n 500 -timeout 45m" or "-n 1000 -timeout 120m"; see docs/scale.md).
	go run ./bench/scale $(BENCH_ARGS)

.PHONY: bench-flagger
bench-flagger: ## Sluice and Flagger v1.44.0 side by side at N=100, kcm's client limits lifted (BENCH_ARGS="-n 300 -timeout 90m"; see docs/scale.md).
	hack/tools.sh flagger
	go run ./bench/scale -compare-flagger -limit 0 -disable-qps-limits $(BENCH_ARGS)

.PHONY: bench-gitsync
bench-gitsync: ## Run the GitSync benchmark: 100 GitSyncs of 10 objects, then 1 of 1,000 (BENCH_ARGS="-gitsyncs 10 -mono-objects 200" for a quick one; see docs/scale.md).
	go run ./bench/gitsync $(BENCH_ARGS)
