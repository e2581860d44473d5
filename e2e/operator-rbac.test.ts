// Least privilege, tried as an attacker holding the operator's ServiceAccount would: every
// request is made with `kubectl --as=system:serviceaccount:rigger-system:rigger-operator`
// against the real apiserver, with the RBAC and guard policies of manifests/install.yaml.
// Each escalation path to reading Secrets is refused; what the operator really does is allowed.
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { GATEWAY_SECRETS_ROLE } from "../controllers/gateways/istio-gateway.ts";
import { ISTIOD_CREDENTIALS_ROLE } from "../controllers/install/control-plane.ts";
import { OPERATOR_NAMESPACE, operatorObjects } from "../manifests/install.ts";
import { binaries } from "./cluster/local-cluster.ts";
import { uniqueName } from "./support/kube.ts";

const OPERATOR = `system:serviceaccount:${OPERATOR_NAMESPACE}:rigger-operator`;
const ns = uniqueName("rbac-probe");

function kubectl(args: string[], input?: string, as?: string) {
  const who = as ? [`--as=${as}`] : [];
  return spawnSync(binaries.kubectl, ["--kubeconfig", inject("kubeconfig"), ...who, ...args], { input, encoding: "utf8" });
}
const asOperator = (args: string[], input?: object) => kubectl(args, input && JSON.stringify(input), OPERATOR);

const binding = (name: string, subjects: object[], kind = "RoleBinding", role = GATEWAY_SECRETS_ROLE) => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind,
  metadata: { name, ...(kind === "RoleBinding" ? { namespace: ns } : {}) },
  roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
  subjects,
});
const webhook = (kind: string, name: string, rules: object[]) => ({
  apiVersion: "admissionregistration.k8s.io/v1",
  kind,
  metadata: { name },
  webhooks: [
    {
      name: "probe.rigger.dev",
      admissionReviewVersions: ["v1"],
      sideEffects: "None",
      clientConfig: { url: "https://127.0.0.1:9/probe" },
      rules,
    },
  ],
});

beforeAll(() => {
  // The operator's identity, RBAC and guard policies, as install.yaml has them (not its Deployment).
  const objects = operatorObjects().filter((o) => (o as { kind: string }).kind !== "Deployment");
  const applied = kubectl(
    ["apply", "--server-side", "--force-conflicts", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }),
  );
  if (applied.status !== 0) throw new Error(`applying the operator's RBAC failed: ${applied.stderr}`);
  expect(kubectl(["create", "namespace", ns]).status).toBe(0);
  // The apiserver's policy cache picks up new policies within a second or so: wait until one is enforced.
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const probe = asOperator(
      ["create", "--dry-run=server", "-f", "-"],
      binding("probe", [{ kind: "ServiceAccount", name: "rigger-operator", namespace: OPERATOR_NAMESPACE }]),
    );
    if (probe.stderr.includes("ValidatingAdmissionPolicy")) break;
    spawnSync("sleep", ["0.5"]);
  }
});

afterAll(() => {
  kubectl(["delete", "namespace", ns, "--ignore-not-found", "--wait=false"]);
  kubectl([
    "delete",
    "mutatingwebhookconfiguration,validatingwebhookconfiguration",
    "-l",
    "rigger.dev/rbac-probe",
    "--ignore-not-found",
  ]);
  kubectl(["delete", "mutatingwebhookconfiguration", `${ns}-pods`, "--ignore-not-found"]);
});

describe("escalations the operator's rights allowed before, refused now", () => {
  test("it cannot read Secrets itself", () => {
    expect(asOperator(["auth", "can-i", "list", "secrets", "--all-namespaces"]).stdout.trim()).toBe("no");
    expect(asOperator(["-n", ns, "get", "secrets"]).stderr).toContain("forbidden");
  });

  test("binding itself to the Secrets-reading ClusterRole in a namespace is refused", () => {
    const result = asOperator(
      ["create", "-f", "-"],
      binding("self", [{ kind: "ServiceAccount", name: "rigger-operator", namespace: OPERATOR_NAMESPACE }]),
    );
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("rigger-operator-bindings");
    expect(result.stderr).toContain(
      `the operator may bind ${GATEWAY_SECRETS_ROLE} only in a RoleBinding to ServiceAccounts of that RoleBinding's namespace`,
    );
  });

  test("binding it cluster-wide is refused", () => {
    const result = asOperator(
      ["create", "-f", "-"],
      binding(`${ns}-everywhere`, [{ kind: "ServiceAccount", name: "gw", namespace: ns }], "ClusterRoleBinding"),
    );
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("rigger-operator-bindings");
  });

  test("binding it to a user, a group, or another namespace's ServiceAccount is refused", () => {
    for (const subject of [
      { kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "mallory" },
      { kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: "system:authenticated" },
      { kind: "ServiceAccount", name: "default", namespace: "kube-system" },
    ]) {
      const result = asOperator(["create", "-f", "-"], binding(`to-${subject.kind.toLowerCase()}`, [subject]));
      expect(result.status, JSON.stringify(subject)).not.toBe(0);
      expect(result.stderr).toContain("rigger-operator-bindings");
    }
  });

  test("istiod's credentials role can be bound to istiod ServiceAccounts only, cluster-wide", () => {
    for (const [subject, kind] of [
      [{ kind: "ServiceAccount", name: "rigger-operator", namespace: OPERATOR_NAMESPACE }, "ClusterRoleBinding"],
      [{ kind: "ServiceAccount", name: "istiod", namespace: OPERATOR_NAMESPACE }, "ClusterRoleBinding"],
      [{ kind: "ServiceAccount", name: "default", namespace: ns }, "ClusterRoleBinding"],
      [{ kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "mallory" }, "ClusterRoleBinding"],
      [{ kind: "ServiceAccount", name: "istiod", namespace: ns }, "RoleBinding"],
    ] as const) {
      const result = asOperator(
        ["create", "-f", "-"],
        binding(`${ns}-creds-${subject.name}`, [subject], kind, ISTIOD_CREDENTIALS_ROLE),
      );
      expect(result.status, `${kind} ${JSON.stringify(subject)}`).not.toBe(0);
      expect(result.stderr).toContain(
        `the operator may bind ${ISTIOD_CREDENTIALS_ROLE} only to control planes' istiod ServiceAccounts`,
      );
    }
    const istiod = asOperator(
      ["create", "--dry-run=server", "-f", "-"],
      binding(
        `${ns}-creds`,
        [{ kind: "ServiceAccount", name: "istiod-canary", namespace: ns }],
        "ClusterRoleBinding",
        ISTIOD_CREDENTIALS_ROLE,
      ),
    );
    expect(istiod.stderr).toBe("");
    expect(istiod.status).toBe(0);
  });

  test("a mutating webhook that would be sent Secrets is refused; one on pods is allowed", () => {
    const secrets = asOperator(
      ["create", "-f", "-"],
      webhook("MutatingWebhookConfiguration", `${ns}-secrets`, [
        { operations: ["CREATE", "UPDATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["secrets"] },
      ]),
    );
    expect(secrets.status).not.toBe(0);
    expect(secrets.stderr).toContain("the operator's mutating webhooks may intercept pods only");
    const everything = asOperator(
      ["create", "-f", "-"],
      webhook("ValidatingWebhookConfiguration", `${ns}-all`, [
        { operations: ["CREATE"], apiGroups: ["*"], apiVersions: ["*"], resources: ["*"] },
      ]),
    );
    expect(everything.status).not.toBe(0);
    expect(everything.stderr).toContain("the operator's validating webhooks may intercept Istio config (*.istio.io) only");
    const pods = asOperator(
      ["create", "--dry-run=server", "-f", "-"],
      webhook("MutatingWebhookConfiguration", `${ns}-pods`, [
        { operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] },
      ]),
    );
    expect(pods.stderr).toBe("");
    expect(pods.status).toBe(0);
  });

  test("it cannot widen its own ClusterRole or remove the guard policies", () => {
    const widen = asOperator([
      "patch",
      "clusterrole",
      "rigger-operator",
      "--type=json",
      "-p",
      JSON.stringify([
        { op: "add", path: "/rules/-", value: { apiGroups: [""], resources: ["secrets"], verbs: ["get", "list"] } },
      ]),
    ]);
    expect(widen.status).not.toBe(0);
    expect(widen.stderr).toMatch(/attempting to grant RBAC permissions not currently held|forbidden/);
    const remove = asOperator(["delete", "validatingadmissionpolicy", "rigger-operator-bindings"]);
    expect(remove.status).not.toBe(0);
    expect(remove.stderr).toContain("forbidden");
  });
});

test("what the operator does for a gateway is still allowed: bind its ServiceAccount in its namespace", () => {
  const result = asOperator(
    ["create", "--dry-run=server", "-f", "-"],
    binding("gateway", [{ kind: "ServiceAccount", name: "ingress", namespace: ns }]),
  );
  expect(result.stderr).toBe("");
  expect(result.status).toBe(0);
});
