// The canary upgrade story on the real cluster, with two control-plane revisions running as
// real processes (operator in --local mode): revision A behind tag prod-stable, revision B
// behind prod-canary, a namespace moved to the canary, then prod-stable moved to B (a
// Deployment migrated by updateWorkloads), A pruned once unused; the default tag, deleting a
// tag, and the InPlace path. A background loop keeps creating pods the whole time and counts
// admission failures.
import { spawnSync } from "node:child_process";
import { connect as tlsConnect } from "node:tls";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import { binaries } from "./cluster/local-cluster.ts";
import { kubeClients, reportMeasurements, uniqueName, waitFor } from "./support/kube.ts";
import { type RunningOperator, startOperatorProcess, tailOf } from "./support/operator.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const install = `${root}manifests/install.yaml`;
const controlPlaneNs = uniqueName("rigger-canary-cp");
const stableNs = uniqueName("rigger-canary-a");
const canaryNs = uniqueName("rigger-canary-b");
const istioName = uniqueName("mesh");
const revisionA = `${istioName}-v1-27-8`;
const revisionB = `${istioName}-v1-27-9`;
const { core } = kubeClients();
let operator: RunningOperator;
const measured: Record<string, string> = {};
const background = { created: 0, failed: 0, errors: new Map<string, number>(), stop: false, done: Promise.resolve() };

function kubectl(args: string[], input?: string) {
  return spawnSync(binaries.kubectl, ["--kubeconfig", inject("kubeconfig"), ...args], { input, encoding: "utf8" });
}

function apply(yaml: string) {
  const result = kubectl(["apply", "-f", "-"], yaml);
  if (result.status !== 0) throw new Error(result.stderr);
}

function tag(name: string, kind: "Istio" | "IstioRevision", target: string) {
  apply(`apiVersion: operator.rigger.dev/v1alpha1
kind: IstioRevisionTag
metadata: {name: ${name}}
spec: {targetRef: {kind: ${kind}, name: ${target}}}
`);
}

/** A new pod in `namespace`; returns the revision that injected it and its proxy image. */
async function podIn(namespace: string): Promise<{ revision?: string; proxy?: string }> {
  const pod = await core.createNamespacedPod({
    namespace,
    body: {
      metadata: { generateName: "app-", labels: { app: "canary" } },
      spec: { containers: [{ name: "app", image: "example/app:1" }] },
    },
  });
  return {
    revision: pod.metadata?.annotations?.["istio.io/rev"],
    proxy: pod.spec?.containers.find((c) => c.name === "istio-proxy")?.image,
  };
}

/** The revisions that injected the running (not terminating) pods matching `selector` in the stable namespace. */
async function revisionsOf(selector: string): Promise<(string | undefined)[]> {
  const pods = await core.listNamespacedPod({ namespace: stableNs, labelSelector: selector });
  return pods.items.filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.metadata?.annotations?.["istio.io/rev"]);
}

beforeAll(async () => {
  const applied = kubectl(["apply", "-f", install]);
  if (applied.status !== 0) throw new Error(applied.stderr);
  kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
  operator = await startOperatorProcess("canary", uniqueName("rigger-canary-lease"));
  for (const name of [stableNs, canaryNs])
    await core.createNamespace({ body: { metadata: { name, labels: { "istio.io/rev": "prod-stable" } } } });
});

afterAll(async () => {
  background.stop = true;
  await background.done;
  kubectl(["delete", "istiorevisiontags", "prod-stable", "prod-canary", "default", "--ignore-not-found"]);
  kubectl(["delete", "istio", istioName, "--ignore-not-found", "--wait=true", "--timeout=60s"]);
  for (const ns of [stableNs, canaryNs]) kubectl(["delete", "namespace", ns, "--wait=false"]);
  await operator?.stop();
  reportMeasurements("canary", measured);
});

test("revision A behind prod-stable injects the stable namespace", async () => {
  apply(`apiVersion: operator.rigger.dev/v1alpha1
kind: Istio
metadata: {name: ${istioName}}
spec:
  version: 1.27.8
  namespace: ${controlPlaneNs}
  updateStrategy:
    type: RevisionBased
    inactiveRevisionDeletionGracePeriodSeconds: 5
    updateWorkloads: {enabled: true, batchSize: 1, delayBetweenBatches: 0s}
`);
  const ready = kubectl(["wait", "--for=condition=Ready", "--timeout=90s", `istio/${istioName}`]);
  expect(ready.stderr, tailOf(operator.logFile)).toBe("");
  tag("prod-stable", "IstioRevision", revisionA);
  await waitFor("prod-stable to be reconciled", async () =>
    kubectl(["get", "istiorevisiontag", "prod-stable", "-o", "jsonpath={.status.istioRevision}"]).stdout === revisionA
      ? true
      : undefined,
  );
  const pod = await waitFor("a pod injected through prod-stable", () =>
    podIn(stableNs)
      .then((p) => (p.proxy ? p : undefined))
      .catch(() => undefined),
  );
  expect(pod).toEqual({ revision: revisionA, proxy: "docker.io/istio/proxyv2:1.27.8" });
  // A Deployment on A, for updateWorkloads to move later.
  apply(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ${stableNs}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: example/web:1}]}
`);
  expect(kubectl(["-n", stableNs, "rollout", "status", "deployment/web", "--timeout=60s"]).status).toBe(0);
  expect(await revisionsOf("app=web")).toEqual([revisionA, revisionA]);

  // From here on, pods are created continuously in both namespaces; every admission failure counts.
  background.done = (async () => {
    while (!background.stop) {
      for (const ns of [stableNs, canaryNs]) {
        try {
          await podIn(ns);
          background.created++;
        } catch (err) {
          background.failed++;
          const message = String((err as { body?: string }).body ?? err).slice(0, 200);
          background.errors.set(message, (background.errors.get(message) ?? 0) + 1);
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
});

test("revision B behind prod-canary: a namespace moved to the canary gets B's proxy", async () => {
  kubectl(["patch", "istio", istioName, "--type=merge", "-p", '{"spec":{"version":"1.27.9"}}']);
  await waitFor(
    "revision B Ready",
    async () =>
      kubectl(["get", "istiorevision", revisionB, "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']).stdout ===
      "True"
        ? true
        : undefined,
    { timeoutMs: 90_000 },
  );
  // RevisionBased: A is still there, still serving prod-stable.
  expect(kubectl(["get", "istiorevision", revisionA, "-o", "name"]).status).toBe(0);
  tag("prod-canary", "IstioRevision", revisionB);
  await waitFor("prod-canary to be reconciled", async () =>
    kubectl(["get", "istiorevisiontag", "prod-canary", "-o", "jsonpath={.status.istioRevision}"]).stdout === revisionB
      ? true
      : undefined,
  );
  // The tag's injector can be called at once: it carries its target's caBundle from the start.
  const caBundleOf = (name: string) =>
    kubectl(["get", "mutatingwebhookconfiguration", name, "-o", "jsonpath={.webhooks[0].clientConfig.caBundle}"]).stdout;
  const tagCaBundle = caBundleOf(`istio-revision-tag-prod-canary-${controlPlaneNs}`);
  expect(tagCaBundle.length).toBeGreaterThan(100);
  expect(tagCaBundle).toBe(caBundleOf(`istio-sidecar-injector-${revisionB}-${controlPlaneNs}`));
  kubectl(["label", "namespace", canaryNs, "istio.io/rev=prod-canary", "--overwrite"]);
  const pod = await waitFor("a pod injected through prod-canary", async () => {
    const p = await podIn(canaryNs);
    return p.revision === revisionB ? p : undefined;
  });
  expect(pod.proxy).toBe("docker.io/istio/proxyv2:1.27.9");
  expect((await podIn(stableNs)).revision).toBe(revisionA);
  const listed = spawnSync(process.execPath, [`${root}cmd/rigger.ts`, "tag", "list", `--kubeconfig=${inject("kubeconfig")}`], {
    encoding: "utf8",
  });
  expect(listed.stdout).toMatch(new RegExp(`prod-canary\\s+${revisionB}\\s+${canaryNs}`));
  expect(listed.stdout).toMatch(new RegExp(`prod-stable\\s+${revisionA}\\s+${stableNs}`));
});

test("prod-stable moved to B: new pods in the stable namespace get B", async () => {
  const t0 = Date.now();
  kubectl([
    "patch",
    "istiorevisiontag",
    "prod-stable",
    "--type=merge",
    "-p",
    `{"spec":{"targetRef":{"kind":"IstioRevision","name":"${revisionB}"}}}`,
  ]);
  const pod = await waitFor(
    "a stable-namespace pod injected by B",
    async () => {
      const p = await podIn(stableNs);
      return p.revision === revisionB ? p : undefined;
    },
    { intervalMs: 50 },
  );
  measured["tag move → first pod injected by the new revision"] = `${((Date.now() - t0) / 1000).toFixed(2)} s`;
  expect(pod.proxy).toBe("docker.io/istio/proxyv2:1.27.9");
  // updateWorkloads restarts the Deployment A injected; its new pods are B's.
  await waitFor(
    "the Deployment's pods on B",
    async () => {
      const revisions = await revisionsOf("app=web");
      return revisions.length === 2 && revisions.every((r) => r === revisionB) ? true : undefined;
    },
    { timeoutMs: 60_000 },
  );
  measured["tag move → Deployment migrated"] = `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  const migration = await waitFor("the migration to report Complete", async () => {
    const m = JSON.parse(kubectl(["get", "istio", istioName, "-o", "jsonpath={.status.workloadMigration}"]).stdout || "{}");
    return m.state === "Complete" ? m : undefined;
  });
  expect(migration.restarted).toBeGreaterThanOrEqual(1);
  expect(migration.remaining).toBe(0);
  // B's serving certificate now names the tag's Service too.
  const url = kubectl([
    "get",
    "mutatingwebhookconfiguration",
    `istio-sidecar-injector-${revisionB}-${controlPlaneNs}`,
    "-o",
    "jsonpath={.webhooks[0].clientConfig.url}",
  ]).stdout;
  const san = await waitFor("the tag's Service in B's serving certificate", async () => {
    const names = await new Promise<string>((resolve, reject) => {
      // Only the certificate's names are read here.
      const socket = tlsConnect({ host: "127.0.0.1", port: Number(new URL(url).port), rejectUnauthorized: false }, () => {
        const altNames = socket.getPeerCertificate().subjectaltname ?? "";
        socket.destroy();
        resolve(altNames);
      });
      socket.on("error", reject);
    });
    return names.includes(`istiod-revision-tag-prod-stable.${controlPlaneNs}.svc`) ? names : undefined;
  });
  expect(san).toContain(`istiod-revision-tag-prod-canary.${controlPlaneNs}.svc`);
});

test("revision A, no longer used once its pods are replaced, is pruned after the grace period", async () => {
  const inUse = () =>
    JSON.parse(
      kubectl(["get", "istiorevision", revisionA, "-o", 'jsonpath={.status.conditions[?(@.type=="InUse")]}']).stdout || "{}",
    ) as {
      status?: string;
      message?: string;
    };
  // Pods A injected still run: A is kept, and its status says which.
  await waitFor("A in use by its pods", async () => (inUse().message?.includes("pod(s)") ? true : undefined));
  expect(inUse().status).toBe("True");
  const kept = kubectl(["get", "istio", istioName, "-o", "jsonpath={.status.inactiveRevisions[0].message}"]).stdout;
  expect(kept).toContain("kept: used by");
  // "Restart": replace every pod A injected (the background loop keeps creating pods, now on B).
  for (const ns of [stableNs, canaryNs]) {
    const pods = await core.listNamespacedPod({ namespace: ns });
    for (const pod of pods.items)
      if (pod.metadata?.annotations?.["istio.io/rev"] === revisionA)
        await core.deleteNamespacedPod({ name: pod.metadata.name ?? "", namespace: ns, gracePeriodSeconds: 0 });
  }
  await waitFor("A unused, with a prune time", async () => {
    const message = kubectl(["get", "istio", istioName, "-o", "jsonpath={.status.inactiveRevisions[0].message}"]).stdout;
    if (!message.includes("pruned at")) throw new Error(`Istio says: ${message}; A's InUse: ${inUse().message}`);
    return true;
  });
  const t0 = Date.now();
  await waitFor("A pruned", async () => (kubectl(["get", "istiorevision", revisionA]).status !== 0 ? true : undefined), {
    timeoutMs: 60_000,
  });
  measured["unused → pruned"] = `${((Date.now() - t0) / 1000).toFixed(1)} s (grace 5 s)`;
  await waitFor("A's webhook configuration gone", async () =>
    kubectl(["get", "mutatingwebhookconfiguration", `istio-sidecar-injector-${revisionA}-${controlPlaneNs}`]).status !== 0
      ? true
      : undefined,
  );
  expect(kubectl(["get", "istiorevision", revisionB, "-o", "name"]).status).toBe(0);
});

test("the default tag serves istio-injection=enabled and owns istiod-default-validator", async () => {
  tag("default", "Istio", istioName);
  await waitFor("the default tag's validator", async () => {
    const owner = kubectl([
      "get",
      "validatingwebhookconfiguration",
      "istiod-default-validator",
      "-o",
      "jsonpath={.metadata.ownerReferences[0].kind}",
    ]);
    return owner.stdout === "IstioRevisionTag" ? true : undefined;
  });
  const enabled = uniqueName("rigger-canary-default");
  await core.createNamespace({ body: { metadata: { name: enabled, labels: { "istio-injection": "enabled" } } } });
  try {
    const pod = await waitFor("a pod injected through the default tag", () =>
      podIn(enabled)
        .then((p) => (p.revision ? p : undefined))
        .catch(() => undefined),
    );
    // The tag follows the Istio's active revision: B.
    expect(pod.revision).toBe(revisionB);
  } finally {
    kubectl(["delete", "namespace", enabled, "--wait=false"]);
  }
});

test("a tag named like an older revision is refused in its status; the older object keeps the name", async () => {
  tag(revisionB, "IstioRevision", revisionB);
  try {
    const reason = await waitFor("the tag's Reconciled condition", async () => {
      const r = kubectl([
        "get",
        "istiorevisiontag",
        revisionB,
        "-o",
        'jsonpath={.status.conditions[?(@.type=="Reconciled")].reason}',
      ]).stdout;
      return r || undefined;
    });
    expect(reason).toBe("NameAlreadyExists");
    expect(kubectl(["get", "mutatingwebhookconfiguration", `istio-revision-tag-${revisionB}-${controlPlaneNs}`]).status).not.toBe(
      0,
    );
  } finally {
    kubectl(["delete", "istiorevisiontag", revisionB]);
  }
});

test("deleting a tag removes its webhook configuration and Service", async () => {
  expect(kubectl(["delete", "istiorevisiontag", "prod-canary"]).status).toBe(0);
  await waitFor("the tag's objects to be garbage-collected", async () => {
    const mwc = kubectl(["get", "mutatingwebhookconfiguration", `istio-revision-tag-prod-canary-${controlPlaneNs}`]);
    const svc = kubectl(["-n", controlPlaneNs, "get", "service", "istiod-revision-tag-prod-canary"]);
    return mwc.status !== 0 && svc.status !== 0 ? true : undefined;
  });
});

test("InPlace: a version change updates the one revision; new pods get the new proxy", async () => {
  const inPlace = uniqueName("inplace");
  const appNs = uniqueName("rigger-inplace-app");
  apply(`apiVersion: operator.rigger.dev/v1alpha1
kind: Istio
metadata: {name: ${inPlace}}
spec: {version: 1.27.8, namespace: ${controlPlaneNs}, updateStrategy: {type: InPlace}}
`);
  try {
    expect(kubectl(["wait", "--for=condition=Ready", "--timeout=90s", `istio/${inPlace}`]).stderr).toBe("");
    await core.createNamespace({ body: { metadata: { name: appNs, labels: { "istio.io/rev": inPlace } } } });
    const before = await waitFor("a pod injected by the in-place revision", () =>
      podIn(appNs)
        .then((p) => (p.proxy ? p : undefined))
        .catch(() => undefined),
    );
    expect(before).toEqual({ revision: inPlace, proxy: "docker.io/istio/proxyv2:1.27.8" });
    kubectl(["patch", "istio", inPlace, "--type=merge", "-p", '{"spec":{"version":"1.27.9"}}']);
    const after = await waitFor("a pod with the new proxy", async () => {
      const p = await podIn(appNs);
      return p.proxy?.endsWith(":1.27.9") ? p : undefined;
    });
    expect(after.revision).toBe(inPlace);
    const owned = kubectl(["get", "istiorevisions", "-l", `operator.rigger.dev/istio=${inPlace}`, "-o", "name"])
      .stdout.trim()
      .split("\n");
    expect(owned).toEqual([`istiorevision.operator.rigger.dev/${inPlace}`]);
  } finally {
    kubectl(["delete", "istio", inPlace, "--wait=false"]);
    kubectl(["delete", "namespace", appNs, "--wait=false"]);
  }
});

test("no admission failure for the pods created throughout", async () => {
  background.stop = true;
  await background.done;
  measured["background pods"] = `${background.created} created, ${background.failed} admission failures`;
  expect(background.created).toBeGreaterThan(20);
  expect(Object.fromEntries(background.errors)).toEqual({});
  expect(background.failed).toBe(0);
});
