// Checks an EnvoyFilter patch value against the Envoy type its `applyTo` names, as
// protobuf JSON decoding would: wrong value kinds, unknown enum names, malformed durations
// and `@type`s no Envoy type answers to are errors; fields the type does not have are
// warnings (upstream decodes leniently first, then strictly for warnings).
// The Envoy API's .proto files come from @grpc/grpc-js-xds, loaded on first use.
import { existsSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import protobuf from "protobufjs";
import { at, isObj, type Report } from "../report.ts";

const APPLY_TO_TYPES: Record<string, string> = {
  LISTENER: "envoy.config.listener.v3.Listener",
  FILTER_CHAIN: "envoy.config.listener.v3.FilterChain",
  NETWORK_FILTER: "envoy.config.listener.v3.Filter",
  HTTP_FILTER: "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
  LISTENER_FILTER: "envoy.config.listener.v3.ListenerFilter",
  ROUTE_CONFIGURATION: "envoy.config.route.v3.RouteConfiguration",
  VIRTUAL_HOST: "envoy.config.route.v3.VirtualHost",
  HTTP_ROUTE: "envoy.config.route.v3.Route",
  CLUSTER: "envoy.config.cluster.v3.Cluster",
  EXTENSION_CONFIG: "envoy.config.core.v3.TypedExtensionConfig",
  BOOTSTRAP: "envoy.config.bootstrap.v3.Bootstrap",
};

let root: protobuf.Root | undefined;

/** Every v3 Envoy config and extension type, loaded once (under a second); servers call it at start. */
export function envoyRoot(): protobuf.Root {
  if (root) return root;
  const require = createRequire(import.meta.url);
  const deps = join(dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps");
  const includes = [
    ...["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((d) => join(deps, d)),
    dirname(require.resolve("protobufjs/package.json")), // google/protobuf/*.proto
  ];
  const loaded = new protobuf.Root();
  loaded.resolvePath = (_origin, target) => includes.map((dir) => join(dir, target)).find((p) => existsSync(p)) ?? target;
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.endsWith(".proto") && path.includes("/v3/")) files.push(path);
    }
  };
  for (const dir of ["config", "extensions"]) walk(join(deps, "envoy-api/envoy", dir));
  for (const file of files) {
    try {
      loaded.loadSync(file, { keepCase: true });
    } catch {
      // A file that needs an import the package does not ship is skipped; its types stay unknown.
    }
  }
  loaded.resolveAll();
  root = loaded;
  return loaded;
}

/** Checks `value` as the Envoy type for `applyTo`; does nothing for an applyTo it does not know. */
export function checkPatchValue(applyTo: string, value: unknown, path: string, report: Report): void {
  const typeName = APPLY_TO_TYPES[applyTo];
  if (!typeName) return;
  const type = envoyRoot().lookupType(typeName);
  checkMessage(type, value, path, report);
}

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function checkMessage(type: protobuf.Type, value: unknown, path: string, report: Report): void {
  if (wellKnown(type.fullName, value, path, report)) return;
  if (!isObj(value)) {
    report.error(path, `expected an object for ${type.fullName.slice(1)}`);
    return;
  }
  const byJsonName = new Map<string, protobuf.Field>();
  for (const field of type.fieldsArray) {
    byJsonName.set(field.name, field);
    byJsonName.set(camel(field.name), field);
  }
  const oneofsSet = new Map<string, string>();
  for (const [key, fieldValue] of Object.entries(value)) {
    const field = byJsonName.get(key);
    const fpath = at(path, key);
    if (!field) {
      report.warn(fpath, `unknown field "${key}" in ${type.fullName.slice(1)}`);
      continue;
    }
    if (fieldValue === null) continue;
    if (field.partOf) {
      const other = oneofsSet.get(field.partOf.name);
      if (other !== undefined) report.error(fpath, `oneof ${field.partOf.name} is already set by "${other}"`);
      oneofsSet.set(field.partOf.name, key);
    }
    checkField(field, fieldValue, fpath, report);
  }
}

function checkField(field: protobuf.Field, value: unknown, path: string, report: Report): void {
  if (field.map) {
    if (!isObj(value)) {
      report.error(path, "expected a map");
      return;
    }
    for (const [k, v] of Object.entries(value)) checkSingle(field, v, at(path, k), report);
    return;
  }
  if (field.repeated) {
    if (!Array.isArray(value)) {
      report.error(path, "expected a list");
      return;
    }
    value.forEach((v, i) => {
      checkSingle(field, v, at(path, i), report);
    });
    return;
  }
  checkSingle(field, value, path, report);
}

const INTEGER = /^-?\d+$/;

function checkSingle(field: protobuf.Field, value: unknown, path: string, report: Report): void {
  field.resolve();
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) {
    checkMessage(resolved, value, path, report);
    return;
  }
  if (resolved instanceof protobuf.Enum) {
    const ok = (typeof value === "string" && value in resolved.values) || (typeof value === "number" && Number.isInteger(value));
    if (!ok) report.error(path, `invalid value ${JSON.stringify(value)} for enum ${resolved.fullName.slice(1)}`);
    return;
  }
  switch (field.type) {
    case "string":
      if (typeof value !== "string") report.error(path, `invalid value ${JSON.stringify(value)} for string field`);
      return;
    case "bool":
      if (typeof value !== "boolean") report.error(path, `invalid value ${JSON.stringify(value)} for bool field`);
      return;
    case "bytes":
      if (typeof value !== "string" || !/^[A-Za-z0-9+/_-]*=*$/.test(value))
        report.error(path, `invalid value ${JSON.stringify(value)} for bytes field`);
      return;
    case "double":
    case "float":
      if (typeof value !== "number" && !(typeof value === "string" && !Number.isNaN(Number(value)))) {
        report.error(path, `invalid value ${JSON.stringify(value)} for ${field.type} field`);
      }
      return;
    default: {
      // int32, uint32, int64, uint64, sint*, fixed*, sfixed*: a whole number, or a numeric string.
      const text = typeof value === "number" ? String(value) : typeof value === "string" ? value : "";
      const unsigned = field.type.startsWith("u") || field.type.startsWith("fixed");
      if (!INTEGER.test(text) || (unsigned && text.startsWith("-")))
        report.error(path, `invalid value ${JSON.stringify(value)} for ${field.type} field`);
    }
  }
}

/** Protobuf JSON's special forms for well-known types; true when `fullName` is one of them. */
function wellKnown(fullName: string, value: unknown, path: string, report: Report): boolean {
  switch (fullName) {
    case ".google.protobuf.Duration":
      if (typeof value !== "string" || !/^-?\d+(\.\d{1,9})?s$/.test(value))
        report.error(path, `invalid duration ${JSON.stringify(value)}`);
      return true;
    case ".google.protobuf.Timestamp":
    case ".google.protobuf.FieldMask":
      if (typeof value !== "string") report.error(path, `expected a string for ${fullName.slice(1)}`);
      return true;
    case ".google.protobuf.Struct":
      if (!isObj(value)) report.error(path, "expected an object for google.protobuf.Struct");
      return true;
    case ".google.protobuf.Value":
      return true;
    case ".google.protobuf.ListValue":
      if (!Array.isArray(value)) report.error(path, "expected a list for google.protobuf.ListValue");
      return true;
    case ".google.protobuf.BoolValue":
      if (typeof value !== "boolean") report.error(path, `invalid value ${JSON.stringify(value)} for google.protobuf.BoolValue`);
      return true;
    case ".google.protobuf.StringValue":
      if (typeof value !== "string") report.error(path, `invalid value ${JSON.stringify(value)} for google.protobuf.StringValue`);
      return true;
    case ".google.protobuf.UInt32Value":
    case ".google.protobuf.Int32Value":
    case ".google.protobuf.UInt64Value":
    case ".google.protobuf.Int64Value":
      if (!INTEGER.test(typeof value === "number" || typeof value === "string" ? String(value) : "")) {
        report.error(path, `invalid value ${JSON.stringify(value)} for ${fullName.slice(1)}`);
      }
      return true;
    case ".google.protobuf.DoubleValue":
    case ".google.protobuf.FloatValue":
      if (typeof value !== "number") report.error(path, `invalid value ${JSON.stringify(value)} for ${fullName.slice(1)}`);
      return true;
    case ".google.protobuf.Any": {
      if (!isObj(value) || typeof value["@type"] !== "string") {
        report.error(path, "an Any needs an @type");
        return true;
      }
      const url = value["@type"];
      const name = url.slice(url.lastIndexOf("/") + 1);
      // TypedStruct carries a type URL and an untyped value: the proxy resolves it, not the webhook.
      if (name === "udpa.type.v1.TypedStruct" || name === "xds.type.v3.TypedStruct") return true;
      let type: protobuf.Type | undefined;
      try {
        type = envoyRoot().lookupType(name);
      } catch {
        type = undefined;
      }
      if (!type) {
        const hint = name.includes(".v2.") ? " (hint: try using the v3 XDS API)" : "";
        report.error(at(path, "@type"), `referenced type unknown${hint}: could not resolve Any message type: ${name}`);
        return true;
      }
      const rest = Object.fromEntries(Object.entries(value).filter(([k]) => k !== "@type"));
      // A well-known type inside an Any keeps its special JSON form under "value".
      if (type.fullName.startsWith(".google.protobuf.") && "value" in rest)
        wellKnown(type.fullName, rest.value, at(path, "value"), report);
      else checkMessage(type, rest, path, report);
      return true;
    }
    default:
      return false;
  }
}
