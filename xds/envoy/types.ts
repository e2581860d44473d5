// Envoy's xDS type URLs, packing into Any, and JSON with every Any unpacked (what config
// dumps show and parity tests compare). The messages themselves are generated (third_party/, by
// `make envoy-types` from the pinned Istio's Envoy API; see ../envoy-api/).
import { Any } from "./third_party/google/protobuf/any.ts";
import { messageTypeRegistry } from "./third_party/typeRegistry.ts";

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

/** The generated codec for a type URL, or undefined for a type not generated here. */
export function codecOf(typeUrl: string): MessageCodec<unknown> | undefined {
  const name = typeUrl.slice(typeUrl.lastIndexOf("/") + 1);
  return messageTypeRegistry.get(name) as MessageCodec<unknown> | undefined;
}

/**
 * Proto3 JSON of `message` with every Any unpacked to `{"@type": url, ...fields}` (an Any of a
 * type not generated here is left as its base64 value).
 */
export function toJson<T>(type: MessageCodec<T>, message: T): unknown {
  return unpackAnys(type.toJSON(message));
}

/** The JSON of an encoded Any. */
export function anyToJson(any: Any): unknown {
  return unpackAnys(Any.toJSON(any));
}

function unpackAnys(json: unknown): unknown {
  if (Array.isArray(json)) return json.map(unpackAnys);
  if (json === null || typeof json !== "object") return json;
  const object = json as Record<string, unknown>;
  if (typeof object.typeUrl === "string" && Object.keys(object).every((k) => k === "typeUrl" || k === "value")) {
    const codec = codecOf(object.typeUrl);
    if (codec) {
      const bytes = Buffer.from(typeof object.value === "string" ? object.value : "", "base64");
      const inner = unpackAnys(codec.toJSON(codec.decode(bytes))) as Record<string, unknown>;
      return { "@type": object.typeUrl, ...inner };
    }
  }
  return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, unpackAnys(v)]));
}
