import pino from "pino";
import { expect, test } from "vitest";
import type { AnalysisResource } from "../analysis/analyze.ts";
import { RecordingClient } from "../kube/recording-client.ts";
import { AnalysisStatus, desiredStatus, statusSays } from "./analysis-status.ts";

const VS_PATH = "/apis/networking.istio.io/v1/namespaces/shop/virtualservices/reviews";

function objects(subset: string, status?: object, label?: string): AnalysisResource[] {
  return [
    {
      object: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "reviews-v1", namespace: "shop", labels: { app: "reviews", version: "v1" } },
      },
    },
    {
      object: {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "reviews", namespace: "shop" },
        spec: { selector: { app: "reviews" }, ports: [{ name: "http", port: 9080 }] },
      },
    },
    {
      object: {
        apiVersion: "networking.istio.io/v1",
        kind: "DestinationRule",
        metadata: { name: "reviews", namespace: "shop" },
        spec: { host: "reviews", subsets: [{ name: "v1", labels: { version: "v1" } }] },
      },
    },
    {
      object: {
        apiVersion: "networking.istio.io/v1",
        kind: "VirtualService",
        metadata: { name: "reviews", namespace: "shop", ...(label ? { labels: { "istio.io/rev": label } } : {}) },
        spec: { hosts: ["reviews"], http: [{ route: [{ destination: { host: "reviews", subset } }] }] },
        ...(status ? { status } : {}),
      },
    },
  ];
}

/** The body of the client's i-th write (failing the test when there is none). */
function bodyAt(client: RecordingClient, i: number): { status: object } {
  const write = client.writes[i];
  if (!write) throw new Error(`no write number ${i + 1}`);
  return write.body as { status: object };
}

/** An AnalysisStatus of the revision "default" writing through a recording client. */
function defaultRevisionStatus() {
  const client = new RecordingClient();
  const status = new AnalysisStatus({
    client,
    log: pino({ level: "silent" }),
    serves: (rev) => rev === "default",
    intervalMs: 0,
  });
  return { client, status };
}

const settle = () => new Promise((r) => setTimeout(r, 30));

test("findings become validationMessages in upstream's form and an Analyzed condition with the text; no write when the status already says it", async () => {
  const { client, status } = defaultRevisionStatus();
  status.update(() => objects("v3"));
  await settle();
  expect(client.writeLines()).toEqual([`apply ${VS_PATH}/status`]);
  const written = bodyAt(client, 0).status as ReturnType<typeof desiredStatus> & { conditions: object[] };
  expect(written.validationMessages).toEqual([
    {
      documentationUrl: "https://istio.io/v1.27/docs/reference/config/analysis/ist0101/",
      level: "ERROR",
      type: { code: "IST0101", name: "ReferencedResourceNotFound" },
    },
  ]);
  expect(written.conditions).toEqual([
    expect.objectContaining({
      type: "Analyzed",
      status: "False",
      reason: "IST0101",
      message: 'Error [IST0101] Referenced host+subset in destinationrule not found: "reviews+v3"',
    }),
  ]);

  // The informer now shows that status: nothing more to write.
  status.update(() => objects("v3", written));
  await settle();
  expect(client.writes).toHaveLength(1);

  // Fixed: the findings are released (an apply without them).
  status.update(() => objects("v1", written));
  await settle();
  expect(client.writes).toHaveLength(2);
  expect(bodyAt(client, 1).status).toEqual({ validationMessages: [] });
  // Clean and never written: nothing.
  status.update(() => objects("v1"));
  await settle();
  expect(client.writes).toHaveLength(2);
});

test("objects of another revision are left to that revision's istiod", async () => {
  const { client, status } = defaultRevisionStatus();
  status.update(() => objects("v3", undefined, "canary"));
  await settle();
  expect(client.writes).toEqual([]);
});

test("statusSays compares codes, levels and the condition's text, not its time", () => {
  const desired = desiredStatus([
    {
      code: "IST0132",
      level: "Warning",
      message: "m",
      origin: "VirtualService a/b",
      resource: { kind: "VirtualService", apiVersion: "networking.istio.io/v1", namespace: "a", name: "b" },
    },
  ]);
  const current = {
    validationMessages: desired.validationMessages,
    conditions: [{ ...desired.condition, lastTransitionTime: "2026-01-01T00:00:00Z" } as never],
  };
  expect(statusSays(current, desired)).toBe(true);
  expect(statusSays({ ...current, conditions: [{ ...desired.condition, message: "other" } as never] }, desired)).toBe(false);
  expect(statusSays(undefined, desiredStatus([]))).toBe(true);
  expect(statusSays(current, desiredStatus([]))).toBe(false);
});
