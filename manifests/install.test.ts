import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { parseAllDocuments } from "yaml";
import { clusterRole, role } from "../controllers/install/control-plane.ts";
import { operatorClusterRole } from "./install.ts";

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

/** Whether `rules` allow `verb` on group/resource (and name, when the rule is name-scoped). */
function allows(rules: Rule[], group: string, resource: string, verb: string, name?: string): boolean {
  return rules.some(
    (r) =>
      r.apiGroups.includes(group) &&
      r.resources.includes(resource) &&
      r.verbs.includes(verb) &&
      (!r.resourceNames || (name !== undefined && r.resourceNames.includes(name))),
  );
}

describe("the install manifest", () => {
  const file = fileURLToPath(new URL("./install.yaml", import.meta.url));
  const docs = parseAllDocuments(readFileSync(file, "utf8")).map((d) => d.toJS() as { kind: string; metadata: { name: string } });

  test("holds the CRDs, then the operator's namespace, identity, RBAC, guard policies and Deployment", () => {
    const crds = docs.filter((d) => d.kind === "CustomResourceDefinition").map((d) => d.metadata.name);
    expect(crds).toContain("istios.operator.rigger.dev");
    expect(crds).toContain("virtualservices.networking.istio.io");
    expect(crds).toHaveLength(18);
    expect(docs.slice(crds.length).map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
      "Namespace/rigger-system",
      "ServiceAccount/rigger-operator",
      "ClusterRole/rigger-operator",
      "ClusterRole/rigger-gateway-secrets",
      "ClusterRole/rigger-istiod-credentials",
      "ValidatingAdmissionPolicy/rigger-operator-bindings",
      "ValidatingAdmissionPolicyBinding/rigger-operator-bindings",
      "ValidatingAdmissionPolicy/rigger-operator-webhooks",
      "ValidatingAdmissionPolicyBinding/rigger-operator-webhooks",
      "ClusterRoleBinding/rigger-operator",
      "Role/rigger-operator-leader-election",
      "RoleBinding/rigger-operator-leader-election",
      "Deployment/rigger-operator",
    ]);
  });

  test("the operator holds every permission it grants istiod (Kubernetes refuses escalation otherwise)", () => {
    const operatorRules = (operatorClusterRole() as { rules: Rule[] }).rules;
    const spec = { name: "canary", namespace: "istio-system" };
    const granted = [
      ...(role(spec).rules ?? []),
      ...(clusterRole(spec, { mutating: ["m"], validating: ["v"] }).rules ?? []),
    ] as Rule[];
    for (const rule of granted)
      for (const group of rule.apiGroups)
        for (const resource of rule.resources)
          for (const verb of rule.verbs)
            for (const name of rule.resourceNames ?? [undefined])
              expect(allows(operatorRules, group, resource, verb, name), `${verb} ${group}/${resource} ${name ?? ""}`).toBe(true);
  });

  test("the operator cannot read arbitrary Secrets", () => {
    const operatorRules = (operatorClusterRole() as { rules: Rule[] }).rules;
    expect(allows(operatorRules, "", "secrets", "get", "some-app-secret")).toBe(false);
    expect(allows(operatorRules, "", "secrets", "list")).toBe(false);
  });

  test("the operator may bind gateways to the secrets-reading ClusterRole, and no other", () => {
    const operatorRules = (operatorClusterRole() as { rules: Rule[] }).rules;
    expect(allows(operatorRules, "rbac.authorization.k8s.io", "clusterroles", "bind", "rigger-gateway-secrets")).toBe(true);
    expect(allows(operatorRules, "rbac.authorization.k8s.io", "clusterroles", "bind", "cluster-admin")).toBe(false);
    expect(allows(operatorRules, "rbac.authorization.k8s.io", "roles", "escalate")).toBe(false);
  });
});
