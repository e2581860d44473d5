#!/usr/bin/env bash
# make envoy-types: regenerate Rigger's Envoy message types from the Envoy API of the pinned
# Istio release.
#   1. descriptors (main.go, go.mod = the versions Istio's go.mod requires) writes the
#      FileDescriptorSet of roots.txt's files and their imports to ../envoy/descriptors.binpb
#      (also read at run time: proto3 JSON for config dumps);
#   2. buf runs ts-proto (buf.gen.yaml) over that set into ../envoy/third_party/.
# Both outputs are checked in: review their diff like code.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/.cache/bin/envoy-api-descriptors"
export GOFLAGS=-mod=mod CGO_ENABLED=0
(cd "$here" && go build -trimpath -o "$bin" .)
"$bin" "$here/roots.txt" >"$root/xds/envoy/descriptors.binpb.tmp"
mv "$root/xds/envoy/descriptors.binpb.tmp" "$root/xds/envoy/descriptors.binpb"
rm -rf "$root/xds/envoy/third_party"
(cd "$here" && PATH="$root/node_modules/.bin:$PATH" buf generate ../envoy/descriptors.binpb --template buf.gen.yaml)
echo "generated $(find "$root/xds/envoy/third_party" -name '*.ts' | wc -l) files in xds/envoy/third_party"
