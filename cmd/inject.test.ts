// `rigger inject` as a user runs it: a subprocess reading a file or stdin.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";
import { parseAllDocuments } from "yaml";

const rigger = fileURLToPath(new URL("./rigger.ts", import.meta.url));
const run = (args: string[], input?: string) => spawnSync(process.execPath, [rigger, ...args], { input, encoding: "utf8" });

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}]}
`;

test("injects documents read from stdin and passes other kinds through", () => {
  const result = run(["inject", "-f", "-"], deployment);
  expect(result.status).toBe(0);
  const docs = parseAllDocuments(result.stdout).map((d) => d.toJS());
  expect(docs.map((d) => d.kind)).toEqual(["Deployment", "Service"]);
  const spec = docs[0].spec.template.spec;
  expect(spec.initContainers.map((c: { name: string }) => c.name)).toEqual(["istio-init"]);
  expect(spec.containers.map((c: { name: string }) => c.name)).toEqual(["web", "istio-proxy"]);
  expect(spec.containers[1].image).toBe("docker.io/istio/proxyv2:1.27.9");
});

test("--native-sidecars puts istio-proxy among the init containers", () => {
  const result = run(["inject", "--native-sidecars", "-f", "-"], deployment);
  const spec = parseAllDocuments(result.stdout)[0]?.toJS().spec.template.spec;
  expect(spec.initContainers.map((c: { name: string }) => c.name)).toEqual(["istio-init", "istio-proxy"]);
});

test("a bad annotation fails with the document, the annotation and the value, and prints nothing", () => {
  const bad = deployment.replace(
    "metadata: {labels: {app: web}}",
    "metadata: {labels: {app: web}, annotations: {status.sidecar.istio.io/port: nope}}",
  );
  const result = run(["inject", "-f", "-"], bad);
  expect(result.status).toBe(1);
  expect(result.stdout).toBe("");
  expect(result.stderr).toContain("document 1 (Deployment web)");
  expect(result.stderr).toContain("invalid value 'nope' for annotation 'status.sidecar.istio.io/port'");
});

test("invalid YAML and missing files are named", () => {
  const yaml = run(["inject", "-f", "-"], "kind: [unclosed");
  expect(yaml.status).toBe(1);
  expect(yaml.stderr).toMatch(/document 1 of - is not valid YAML/);
  const missing = run(["inject", "-f", "/nonexistent/x.yaml"]);
  expect(missing.status).toBe(1);
  expect(missing.stderr).toContain("/nonexistent/x.yaml");
  const noFile = run(["inject"]);
  expect(noFile.status).toBe(1);
  expect(noFile.stderr).toContain("-f FILE is required");
});

test("the proxyless gRPC templates by annotation, with the built-in settings: grpc-agent's pilot-agent without Envoy, the app told where its bootstrap is", () => {
  const grpc = deployment.replace(
    "metadata: {labels: {app: web}}",
    "metadata: {labels: {app: web}, annotations: {inject.istio.io/templates: grpc-agent}}",
  );
  const result = run(["inject", "-f", "-"], grpc);
  expect(result.stderr).toBe("");
  const spec = parseAllDocuments(result.stdout)[0]?.toJS().spec.template.spec;
  expect(spec.initContainers).toBeUndefined();
  expect(spec.containers.map((c: { name: string }) => c.name)).toEqual(["web", "istio-proxy"]);
  const env = (i: number) =>
    Object.fromEntries(spec.containers[i].env.map((e: { name: string; value?: string }) => [e.name, e.value]));
  expect(env(0).GRPC_XDS_BOOTSTRAP).toBe("/etc/istio/proxy/grpc-bootstrap.json");
  expect(env(1)).toMatchObject({ ISTIO_META_GENERATOR: "grpc", DISABLE_ENVOY: "true", OUTPUT_CERTS: "/var/lib/istio/data" });

  const simple = run(["inject", "-f", "-"], grpc.replace("grpc-agent", "grpc-simple"));
  const simpleSpec = parseAllDocuments(simple.stdout)[0]?.toJS().spec.template.spec;
  expect(simpleSpec.initContainers.map((c: { name: string }) => c.name)).toEqual(["grpc-bootstrap-init"]);
  expect(simpleSpec.containers.map((c: { name: string }) => c.name)).toEqual(["web"]);

  const unknown = run(["inject", "-f", "-"], grpc.replace("grpc-agent", "waypoint"));
  expect(unknown.status).toBe(1);
  expect(unknown.stderr).toContain('template "waypoint"');
});
