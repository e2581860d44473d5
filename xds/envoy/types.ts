// Envoy's xDS type URLs, packing into Any, and proto3 JSON with every Any unpacked (what
// config dumps show and parity tests compare). The messages themselves are generated (third_party/, by
// `make envoy-types` from the pinned Istio's Envoy API; see ../envoy-api/).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createFileRegistry, type FileRegistry, fromBinary, toJson as protoToJson } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import type { Any } from "./third_party/google/protobuf/any.ts";

export const TYPE_PREFIX = "type.googleapis.com/";

export const TypeUrl = {
  cluster: `${TYPE_PREFIX}envoy.config.cluster.v3.Cluster`,
  listener: `${TYPE_PREFIX}envoy.config.listener.v3.Listener`,
  route: `${TYPE_PREFIX}envoy.config.route.v3.RouteConfiguration`,
  endpoint: `${TYPE_PREFIX}envoy.config.endpoint.v3.ClusterLoadAssignment`,
  secret: `${TYPE_PREFIX}envoy.extensions.transport_sockets.tls.v3.Secret`,
} as const;

/** What a generated message type offers (ts-proto's MessageFns, with its type name). */
export interface MessageCodec<T> {
  readonly $type: string;
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
  toJSON(message: T): unknown;
}

/** `message` as an Any of its type. */
export function pack<T>(type: MessageCodec<T>, message: T): Any {
  return { typeUrl: `${TYPE_PREFIX}${type.$type}`, value: type.encode(message).finish() };
}

/**
 * The Envoy API's descriptors (descriptors.binpb, written with the generated types): protobuf-es
 * reads them to write canonical proto3 JSON (what Go's protojson writes and istioctl reads back:
 * durations as "10s", 64-bit integers as strings, every Any expanded with its "@type").
 */
let descriptors: FileRegistry | undefined;
function registry(): FileRegistry {
  descriptors ??= createFileRegistry(
    fromBinary(FileDescriptorSetSchema, readFileSync(fileURLToPath(new URL("./descriptors.binpb", import.meta.url)))),
  );
  return descriptors;
}

/** Proto3 JSON of a message (its bytes read back through the descriptors). */
export function toJson<T>(type: MessageCodec<T>, message: T): unknown {
  return bytesToJson(type.$type, type.encode(message).finish());
}

function bytesToJson(typeName: string, bytes: Uint8Array): unknown {
  const files = registry();
  const schema = files.getMessage(typeName);
  if (!schema) throw new Error(`no descriptor for ${typeName}: add its file to xds/envoy-api/roots.txt`);
  return protoToJson(schema, fromBinary(schema, bytes), { registry: files });
}
