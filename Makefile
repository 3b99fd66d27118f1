# Sluice: progressive delivery for Kubernetes.
# `make test` builds what it needs (tools cached in ~/.cache/sluice) and runs everything.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
BIN := $(CURDIR)/bin
CONTROLLER_GEN := $(BIN)/controller-gen
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GO_TEST_FLAGS ?= -race -count=1 -parallel 4

.DEFAULT_GOAL := help

##@ General
.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-12s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development
.PHONY: tools
tools: ## Build the pinned tools (controller-gen, etcd, kube-apiserver, kwok, ...) and fetch provider CRDs into a cache, linked in bin/.
	hack/tools.sh gen
	hack/tools.sh cluster
	hack/crds.sh
	hack/prometheus.sh

.PHONY: generate
generate: ## Generate deepcopy code from the API types.
	hack/tools.sh gen
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: ## Generate CRDs (config/crd/bases) and RBAC (config/rbac/generated) from markers.
	hack/tools.sh gen
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=sluice-manager paths=./... output:rbac:artifacts:config=config/rbac/generated

.PHONY: fmt
fmt: ## Format the Go code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: verify
verify: ## Fail when generated files are stale or Go code is not formatted.
	hack/tools.sh gen
	hack/verify-generated.sh

.PHONY: build
build: ## Build the sluice manager and the load tester into bin/.
	go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN)/sluice ./cmd/sluice
	go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN)/loadtester ./cmd/loadtester

.PHONY: run
run: ## Run the manager against the cluster of the current kubeconfig (leader election off).
	go run ./cmd/sluice --leader-elect=false --log-encoding=console

##@ Testing
.PHONY: test
test: tools verify vet ## Verify generated files, vet, and run unit and integration tests (real kube-apiserver).
	go test $(GO_TEST_FLAGS) ./...
