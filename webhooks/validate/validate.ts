// validate(object) → {errors, warnings}: the Istio config validation every entry point
// uses (the /validate webhook, `rigger validate`, the tests). Pure and deterministic.
//
// The pipeline follows upstream's: find the kind by group and kind (the version does not
// matter), check metadata, reject unknown top-level fields, then the kind's own rules.

import { validateDestinationRule } from "./kinds/destinationrule.ts";
import { validateGateway } from "./kinds/gateway.ts";
import {
  validateEnvoyFilter,
  validateProxyConfig,
  validateServiceEntry,
  validateSidecar,
  validateTelemetry,
  validateWasmPlugin,
  validateWorkloadEntry,
  validateWorkloadGroup,
} from "./kinds/others.ts";
import { validateAuthorizationPolicy, validatePeerAuthentication, validateRequestAuthentication } from "./kinds/security.ts";
import { validateVirtualService } from "./kinds/virtualservice.ts";
import { isObj, type Obj, Report, type ValidationResult } from "./report.ts";

export type { Problem, ValidationResult } from "./report.ts";

interface Context {
  name: string;
  namespace: string;
}
type KindValidator = (spec: Obj, report: Report, context: Context) => void;

/** Every Istio config kind, by `<Kind>.<group>`. */
export const KINDS: Record<string, KindValidator> = {
  "VirtualService.networking.istio.io": (s, r, c) => validateVirtualService(s, r, c.namespace),
  "DestinationRule.networking.istio.io": (s, r, c) => validateDestinationRule(s, r, c.namespace),
  "Gateway.networking.istio.io": (s, r, c) => validateGateway(s, r, c.name),
  "ServiceEntry.networking.istio.io": (s, r, c) => validateServiceEntry(s, r, c.namespace),
  "Sidecar.networking.istio.io": (s, r) => validateSidecar(s, r),
  "EnvoyFilter.networking.istio.io": (s, r) => validateEnvoyFilter(s, r),
  "WorkloadEntry.networking.istio.io": (s, r) => validateWorkloadEntry(s, r),
  "WorkloadGroup.networking.istio.io": (s, r) => validateWorkloadGroup(s, r),
  "ProxyConfig.networking.istio.io": (s, r) => validateProxyConfig(s, r),
  // Upstream prefixes each of an AuthorizationPolicy's errors (not its warnings) with the policy's name.
  "AuthorizationPolicy.security.istio.io": (s, r, c) => {
    const inner = new Report();
    validateAuthorizationPolicy(s, inner);
    for (const e of inner.errors) r.error(e.path, `invalid policy ${c.name}.${c.namespace}: ${e.message}`);
    for (const w of inner.warnings) r.warn(w.path, w.message);
  },
  "PeerAuthentication.security.istio.io": (s, r) => validatePeerAuthentication(s, r),
  "RequestAuthentication.security.istio.io": (s, r) => validateRequestAuthentication(s, r),
  "Telemetry.telemetry.istio.io": (s, r) => validateTelemetry(s, r),
  "WasmPlugin.extensions.istio.io": (s, r) => validateWasmPlugin(s, r),
};

/** Set by the control plane's self-test: an object carrying it is always rejected. */
export const ALWAYS_REJECT = "internal.istio.io/webhook-always-reject";
const USER_FORBIDDEN = ["internal.istio.io/parent-namespace", "internal.istio.io/parents"];
const TOP_LEVEL = new Set(["apiVersion", "kind", "metadata", "spec", "status"]);

export function validate(object: unknown, defaultNamespace = "default"): ValidationResult {
  const report = new Report();
  if (!isObj(object)) {
    report.error("", "cannot decode configuration: not an object");
    return report.result();
  }
  const apiVersion = typeof object.apiVersion === "string" ? object.apiVersion : "";
  const kind = typeof object.kind === "string" ? object.kind : "";
  const group = apiVersion.includes("/") ? apiVersion.slice(0, apiVersion.indexOf("/")) : "";
  const validator = KINDS[`${kind}.${group}`];
  if (!validator) {
    report.error("", `unrecognized type ${kind || "(no kind)"}.${group || "(no group)"}`);
    return report.result();
  }
  const metadata = isObj(object.metadata) ? object.metadata : {};
  const name = typeof metadata.name === "string" ? metadata.name : "";
  const namespace = typeof metadata.namespace === "string" && metadata.namespace ? metadata.namespace : defaultNamespace;
  const annotations = isObj(metadata.annotations) ? metadata.annotations : {};
  if (ALWAYS_REJECT in annotations) report.error("metadata.annotations", `"${ALWAYS_REJECT}" annotation found, rejecting`);
  for (const key of USER_FORBIDDEN)
    if (key in annotations) report.error("metadata.annotations", `"${key}" annotation found, this may not be set by users`);
  if ("istio.io/dry-run" in annotations) {
    const spec = isObj(object.spec) ? object.spec : {};
    const action = String(spec.action ?? "ALLOW");
    const value = String(annotations["istio.io/dry-run"]);
    if (kind !== "AuthorizationPolicy" || !["ALLOW", "DENY"].includes(action)) {
      report.error(
        "metadata.annotations",
        `${namespace}/${name} has unsupported annotation istio.io/dry-run, please remove the annotation`,
      );
    } else if (!["true", "false"].includes(value.toLowerCase())) {
      report.error("metadata.annotations", `invalid annotation istio.io/dry-run=${value}, must be true or false`);
    }
  }
  for (const field of Object.keys(object)) {
    if (!TOP_LEVEL.has(field)) report.error(field, `unknown field "${field}" on ${kind} resource ${namespace}/${name}`);
  }
  if (object.spec !== undefined && object.spec !== null && !isObj(object.spec)) {
    report.error("spec", "error decoding configuration: spec must be an object");
    return report.result();
  }
  validator(isObj(object.spec) ? object.spec : {}, report, { name, namespace });
  return report.result();
}
