#!/usr/bin/env bash
# Builds the local cluster's binaries from source through the Go module proxy:
#   kubernetes: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#   etcd:       etcd server
#   kwok:       kwok controller
#   istio:      upstream pilot-discovery (istiod) and istioctl, the parity oracle
#   gateway-api: the Gateway API's standard CRDs (YAML, from the sigs.k8s.io/gateway-api module)
# Each lands in .cache/bin/<component>-v<version>/ and is rebuilt only when that
# folder is missing, so a second run costs nothing. Versions come from versions.env.
#
# usage: e2e/cluster/build.sh [all|kubernetes|etcd|kwok|istio|ca-interop|gateway-api]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../versions.env
source "$ROOT/versions.env"
CACHE="$ROOT/.cache"
LOGS="$CACHE/logs"
mkdir -p "$CACHE/bin" "$CACHE/build" "$LOGS"

MIN_GO_MINOR=24 # Kubernetes 1.33's go.mod says go 1.24

# Static binaries, as upstream builds them. Module checksums are verified
# against the checksum database (reached through the module proxy).
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

say() { printf '[build] %s\n' "$*" >&2; }

require_go() {
  if ! command -v go >/dev/null 2>&1; then
    say "Go is not installed. Install Go 1.$MIN_GO_MINOR or newer (Debian: apt-get install golang-go from a release that ships >= 1.$MIN_GO_MINOR) and run again."
    exit 1
  fi
  local v minor
  v=$(go env GOVERSION) # e.g. go1.26.8
  minor=$(printf '%s' "$v" | sed -E 's/^go1\.([0-9]+).*/\1/')
  if [ "$minor" -lt "$MIN_GO_MINOR" ]; then
    say "Go $v is too old: the Kubernetes $KUBERNETES_VERSION build needs Go 1.$MIN_GO_MINOR or newer."
    exit 1
  fi
}

# run_logged NAME CMD...: runs CMD with output to a log; on failure prints the tail and the path.
run_logged() {
  local name=$1; shift
  local log="$LOGS/build-$name.log"
  if ! "$@" >>"$log" 2>&1; then
    say "building $name failed; last 40 lines of $log:"
    tail -n 40 "$log" >&2
    exit 1
  fi
}

# timed NAME STEP CMD...: like run_logged, and prints how long the step took.
timed() {
  local name=$1 step=$2; shift 2
  local t0=$SECONDS
  run_logged "$name" "$@"
  say "$name: $step took $((SECONDS - t0))s"
}

build_kubernetes() {
  local v=$KUBERNETES_VERSION minor out="$CACHE/bin/kubernetes-v$KUBERNETES_VERSION"
  minor=$(printf '%s' "$v" | cut -d. -f2)
  if [ -x "$out/kube-apiserver" ] && [ -x "$out/kubectl" ]; then return; fi
  require_go
  local w="$CACHE/build/kubernetes-v$v"
  : >"$LOGS/build-kubernetes.log"
  say "kubernetes v$v: building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (cold: about 5 min on 2 cores; log: $LOGS/build-kubernetes.log)"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  run_logged kubernetes go mod init local/kubernetes-bins
  run_logged kubernetes go mod edit -go=1.24 -godebug=default=go1.24
  # The module zip has no staging/ tree, so every staging module that the real
  # go.mod replaces with ./staging/src/k8s.io/<m> is pointed at its published v0.<minor>.<patch>.
  local gomod staging m
  timed kubernetes "download k8s.io/kubernetes go.mod" go mod download -json "k8s.io/kubernetes@v$v"
  gomod=$(go mod download -json "k8s.io/kubernetes@v$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  staging=$(grep -E '^\s+k8s\.io/\S+ v0\.0\.0$' "$gomod" | awk '{print $1}')
  if [ -z "$staging" ]; then say "found no staging modules in $gomod"; exit 1; fi
  for m in $staging; do go mod edit -replace="$m=$m@v0.${v#1.}"; done
  cat >tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
  timed kubernetes "resolve modules" go get "k8s.io/kubernetes@v$v"
  timed kubernetes "go mod tidy" go mod tidy
  timed kubernetes "module download" go mod download
  local vf date
  date=$(date -u +%FT%TZ)
  vf="-X k8s.io/component-base/version.gitVersion=v$v -X k8s.io/component-base/version.gitMajor=1"
  vf+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  vf+=" -X k8s.io/component-base/version.buildDate=$date"
  vf+=" -X k8s.io/client-go/pkg/version.gitVersion=v$v -X k8s.io/client-go/pkg/version.gitMajor=1"
  vf+=" -X k8s.io/client-go/pkg/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitTreeState=clean"
  vf+=" -X k8s.io/client-go/pkg/version.buildDate=$date"
  mkdir -p "$out.tmp"
  timed kubernetes "compile" go build -p 2 -trimpath -tags selinux,notest -ldflags "-s -w $vf" -o "$out.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
  rm -rf "$out" && mv "$out.tmp" "$out"
  say "kubernetes: $("$out/kube-apiserver" --version)"
}

build_etcd() {
  local v=$ETCD_VERSION out="$CACHE/bin/etcd-v$ETCD_VERSION"
  if [ -x "$out/etcd" ]; then return; fi
  require_go
  local w="$CACHE/build/etcd-v$v"
  : >"$LOGS/build-etcd.log"
  say "etcd v$v: building (log: $LOGS/build-etcd.log)"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  # etcd's own go.mod has relative replaces, so `go install` refuses it; a wrapper module ignores them.
  run_logged etcd go mod init local/etcd-bin
  cat >tools.go <<'EOF'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
EOF
  timed etcd "resolve modules" go get "go.etcd.io/etcd/server/v3@v$v"
  timed etcd "go mod tidy" go mod tidy
  timed etcd "module download" go mod download
  mkdir -p "$out.tmp"
  timed etcd "compile" go build -p 2 -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  rm -rf "$out" && mv "$out.tmp" "$out"
  say "etcd: $("$out/etcd" --version | head -1)"
}

build_kwok() {
  local v=$KWOK_VERSION out="$CACHE/bin/kwok-v$KWOK_VERSION"
  if [ -x "$out/kwok" ]; then return; fi
  require_go
  : >"$LOGS/build-kwok.log"
  say "kwok v$v: building (log: $LOGS/build-kwok.log)"
  mkdir -p "$out.tmp"
  timed kwok "download and compile" env GOBIN="$out.tmp" go install -p 2 -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v$v" "sigs.k8s.io/kwok/cmd/kwok@v$v"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

build_istio() {
  local v=$ISTIO_VERSION out="$CACHE/bin/istio-$ISTIO_VERSION"
  if [ -x "$out/pilot-discovery" ] && [ -x "$out/istioctl" ]; then return; fi
  require_go
  local w="$CACHE/build/istio-$v"
  : >"$LOGS/build-istio.log"
  say "istio $v: building pilot-discovery and istioctl (log: $LOGS/build-istio.log)"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  run_logged istio go mod init local/istio-bins
  # Istio's go.mod asks for istio.io/api and istio.io/client-go at pseudo-versions
  # this module proxy does not serve. ISTIO_API_MODULE_VERSION is the very commit of
  # that pseudo-version (469b1b2d2cfa); istio.io/client-go (generated clientsets)
  # is taken at the newest 1.27 tag the proxy serves.
  go mod edit -replace="istio.io/api=istio.io/api@$ISTIO_API_MODULE_VERSION" -replace=istio.io/client-go=istio.io/client-go@v1.27.3
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "istio.io/istio/istioctl/cmd/istioctl"\n\t_ "istio.io/istio/pilot/cmd/pilot-discovery"\n)\n' >tools.go
  timed istio "resolve modules" go get "istio.io/istio@$ISTIO_MODULE_VERSION"
  timed istio "go mod tidy" go mod tidy
  mkdir -p "$out.tmp"
  # Release build tags and version stamp, as upstream's Makefile sets them.
  timed istio "compile" go build -p 2 -trimpath -tags vtprotobuf,disable_pgv \
    -ldflags "-s -w -X istio.io/istio/pkg/version.buildVersion=$v -X istio.io/istio/pkg/version.buildStatus=Clean" \
    -o "$out.tmp/" istio.io/istio/pilot/cmd/pilot-discovery istio.io/istio/istioctl/cmd/istioctl
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# rigger-ca-interop (e2e/ca-interop/main.go): upstream's Go CA client, built in the pinned
# release's module graph (the istio build's wrapper module). Keyed by the source's hash.
build_ca_interop() {
  local v=$ISTIO_VERSION src="$ROOT/e2e/ca-interop/main.go"
  local out="$CACHE/bin/ca-interop-$v-$(sha256sum "$src" | cut -c1-12)"
  if [ -x "$out/rigger-ca-interop" ]; then return; fi
  require_go
  local w="$CACHE/build/istio-$v"
  [ -f "$w/go.mod" ] || { rm -rf "$CACHE/bin/istio-$v"; build_istio; }
  : >"$LOGS/build-ca-interop.log"
  say "ca-interop: building upstream's Go CA client test program (log: $LOGS/build-ca-interop.log)"
  mkdir -p "$w/cainterop" && cp "$src" "$w/cainterop/main.go" && cd "$w"
  mkdir -p "$out.tmp"
  timed ca-interop "compile" go build -p 2 -trimpath -tags vtprotobuf,disable_pgv -o "$out.tmp/rigger-ca-interop" ./cainterop
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# The Gateway API CRDs: nothing to build, the module's zip holds them. One YAML file, the
# standard channel's CRDs concatenated (what upstream's standard-install.yaml release asset is).
fetch_gateway_api() {
  local v=$GATEWAY_API_VERSION out="$CACHE/bin/gateway-api-v$GATEWAY_API_VERSION"
  if [ -f "$out/standard-install.yaml" ]; then return; fi
  require_go
  : >"$LOGS/build-gateway-api.log"
  local w="$CACHE/build/gateway-api-v$v" dir
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  run_logged gateway-api go mod init local/gateway-api-crds
  timed gateway-api "download sigs.k8s.io/gateway-api" go mod download -json "sigs.k8s.io/gateway-api@v$v"
  dir=$(go mod download -json "sigs.k8s.io/gateway-api@v$v" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  if [ ! -d "$dir/config/crd/standard" ]; then say "no config/crd/standard in $dir"; exit 1; fi
  mkdir -p "$out.tmp"
  for f in "$dir"/config/crd/standard/*.yaml; do printf -- '---\n' && cat "$f"; done >"$out.tmp/standard-install.yaml"
  rm -rf "$out" && mv "$out.tmp" "$out"
  say "gateway-api v$v: $(grep -c '^kind: CustomResourceDefinition' "$out/standard-install.yaml") CRDs"
}

case "${1:-all}" in
  all) build_etcd; build_kwok; build_kubernetes; build_istio; build_ca_interop; fetch_gateway_api ;;
  gateway-api) fetch_gateway_api ;;
  istio) build_istio; build_ca_interop ;;
  ca-interop) build_ca_interop ;;
  kubernetes) build_kubernetes ;;
  etcd) build_etcd ;;
  kwok) build_kwok ;;
  *) say "unknown component '$1' (want all, kubernetes, etcd, kwok, istio, ca-interop or gateway-api)"; exit 2 ;;
esac
