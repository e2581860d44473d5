// `make demo`: Rigger on the local cluster, step by step, each step saying what it waits for
// and how long it took.
//   node e2e/cluster/demo.ts run           in pods on the real node (after `make cluster-up`):
//                                          the operator and istiod from the rigger image
//   node e2e/cluster/demo.ts run --local   the development loop: the operator runs detached in
//                                          --local mode (tracked in .cache/demo/processes.json,
//                                          logging to .cache/demo/operator.log, each revision's
//                                          istiod beside it), pods on the KWOK node
//   node e2e/cluster/demo.ts stop          stops the local-mode operator (its istiod processes follow it)
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { versions } from "../../versions.ts";
import { binaries, KUBECONFIG, LOCAL_ISTIO_VALUES, ROOT, runOnRealNode } from "./local-cluster.ts";
import { isOurs, readTracked, sleep, startTracked, stopAll } from "./processes.ts";

const DEMO_DIR = join(ROOT, ".cache/demo");
const STATE_FILE = join(DEMO_DIR, "processes.json");
const OPERATOR_LOG = join(DEMO_DIR, "operator.log");
const HEALTH_PORT = 18443;

class StepError extends Error {}

function kubectl(args: string[], input?: string): string {
  try {
    return execFileSync(binaries.kubectl, ["--kubeconfig", KUBECONFIG, ...args], {
      input,
      encoding: "utf8",
      stdio: ["pipe", "pipe", "pipe"],
      timeout: 180_000,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new StepError(`kubectl ${args.join(" ")}: ${(e.stderr || e.message).trim()}`);
  }
}

function operatorReady(): Promise<boolean> {
  return new Promise((resolve) => {
    // Loopback health endpoint with the operator's throwaway certificate: readiness only, no data.
    const req = request(`https://127.0.0.1:${HEALTH_PORT}/readyz`, { rejectUnauthorized: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.end();
  });
}

async function startOperator(): Promise<string> {
  mkdirSync(DEMO_DIR, { recursive: true });
  const running = readTracked(STATE_FILE).filter(isOurs);
  if (running.length > 0 && (await operatorReady())) return `already running (pid ${running[0]?.pid})`;
  await stopAll(STATE_FILE);
  const tracked = startTracked(
    STATE_FILE,
    "rigger-operator",
    process.execPath,
    [
      join(ROOT, "cmd/rigger.ts"),
      "operator",
      "--local",
      `--kubeconfig=${KUBECONFIG}`,
      `--log-dir=${DEMO_DIR}`,
      `--health-addr=127.0.0.1:${HEALTH_PORT}`,
    ],
    OPERATOR_LOG,
  );
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (!isOurs(tracked)) throw new StepError(`the operator exited; last lines of ${OPERATOR_LOG}:\n${tail(OPERATOR_LOG)}`);
    if (await operatorReady()) return `started (pid ${tracked.pid})`;
    await sleep(200);
  }
  throw new StepError(`the operator did not become ready in 30 s; see ${OPERATOR_LOG}`);
}

function tail(file: string, lines = 10): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

interface Step {
  what: string;
  waitsFor: string;
  run: () => Promise<string | undefined> | string | undefined;
}

const POD_COLUMNS =
  "custom-columns=POD:.metadata.name,NODE:.spec.nodeName,INIT:.spec.initContainers[*].name,CONTAINERS:.spec.containers[*].name,READY:.status.containerStatuses[*].ready,STATUS:.status.phase";

/** The in-pod flow: what a user runs, with the operator and istiod in pods on the real node. */
const podSteps: Step[] = [
  {
    what: "install Rigger: kubectl apply -f manifests/install.yaml (image rigger:0.1.0, imported into the node)",
    waitsFor: "the CRDs Established and the rigger-operator Deployment (2 pods) rolled out",
    run: () => {
      runOnRealNode("rigger-system");
      kubectl(["apply", "-f", join(ROOT, "manifests/install.yaml")]);
      kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
      kubectl(["-n", "rigger-system", "rollout", "status", "deployment/rigger-operator", "--timeout=180s"]);
      const holder = kubectl(["-n", "rigger-system", "get", "lease", "rigger-operator", "-o", "jsonpath={.spec.holderIdentity}"]);
      return `${kubectl(["-n", "rigger-system", "get", "pods", "-o", POD_COLUMNS]).trimEnd()}
leader: ${holder || "(electing)"}`;
    },
  },
  {
    what: `apply the sample Istio (manifests/samples/istio.yaml) with the local cluster's values: hub localhost/istio (the proxyv2:${versions.istio} built here), CLOUD_PLATFORM none`,
    waitsFor: "kubectl wait --for=condition=Ready istio/default (istiod's pod Ready)",
    run: () => {
      runOnRealNode("istio-system");
      kubectl(["apply", "-f", join(ROOT, "manifests/samples/istio.yaml")]);
      kubectl(["patch", "istio", "default", "--type=merge", "-p", JSON.stringify({ spec: { values: LOCAL_ISTIO_VALUES } })]);
      kubectl(["wait", "--for=condition=Ready", "--timeout=180s", "istio/default"]);
      return `${kubectl(["get", "istio,istiorevision"]).trimEnd()}
${kubectl(["-n", "istio-system", "get", "pods", "-o", POD_COLUMNS]).trimEnd()}
${kubectl([
  "get",
  "mutatingwebhookconfiguration",
  "istio-sidecar-injector",
  "-o",
  "jsonpath=webhooks call Service {.webhooks[0].clientConfig.service.namespace}/{.webhooks[0].clientConfig.service.name}:{.webhooks[0].clientConfig.service.port}",
])}`;
    },
  },
  {
    what: "label namespace demo istio-injection=enabled and deploy Istio's echo app (manifests/samples/echo-app.yaml)",
    waitsFor: "the pod's istio-init to finish and istio-proxy to run",
    run: async () => {
      runOnRealNode("demo");
      kubectl(["label", "namespace", "demo", "istio-injection=enabled", "--overwrite"]);
      kubectl(["apply", "-f", join(ROOT, "manifests/samples/echo-app.yaml")]);
      const running = "jsonpath={.items[0].status.containerStatuses[?(@.name=='istio-proxy')].state.running.startedAt}";
      for (let i = 0; i < 240 && !kubectl(["-n", "demo", "get", "pods", "-l", "app=echo", "-o", running]).trim(); i++)
        await sleep(500);
      if (!kubectl(["-n", "demo", "get", "pods", "-l", "app=echo", "-o", running]).trim()) {
        throw new StepError(`istio-proxy did not start:\n${kubectl(["-n", "demo", "describe", "pods", "-l", "app=echo"])}`);
      }
      const init = kubectl([
        "-n",
        "demo",
        "get",
        "pods",
        "-l",
        "app=echo",
        "-o",
        "jsonpath=istio-init: {.items[0].status.initContainerStatuses[0].state.terminated.reason} (exit {.items[0].status.initContainerStatuses[0].state.terminated.exitCode})",
      ]);
      const agent = kubectl(["-n", "demo", "logs", "deploy/echo", "-c", "istio-proxy"])
        .split("\n")
        .filter((l) => /workload certificate|Envoy command|XDS/.test(l))
        .slice(0, 4)
        .join("\n");
      return `${kubectl(["-n", "demo", "get", "pods", "-o", POD_COLUMNS]).trimEnd()}\n${init}\nistio-proxy log (pilot-agent got its certificate and started Envoy, which istiod configures over xDS):\n${agent}`;
    },
  },
];

/** The --local flow: the operator and istiod as processes on this machine, pods on the KWOK node. */
const localSteps: Step[] = [
  {
    what: "install Rigger: kubectl apply -f manifests/install.yaml",
    waitsFor: "the CRDs to be Established",
    run: () => {
      kubectl(["apply", "-f", join(ROOT, "manifests/install.yaml")]);
      kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
      return undefined;
    },
  },
  {
    what: "start the operator in --local mode (each revision's istiod runs on 127.0.0.1)",
    waitsFor: `its /readyz on 127.0.0.1:${HEALTH_PORT}`,
    run: startOperator,
  },
  {
    what: "apply the sample Istio: kubectl apply -f manifests/samples/istio.yaml",
    waitsFor: "kubectl wait --for=condition=Ready istio/default",
    run: () => {
      const t0 = Date.now();
      kubectl(["apply", "-f", join(ROOT, "manifests/samples/istio.yaml")]);
      kubectl(["wait", "--for=condition=Ready", "--timeout=120s", "istio/default"]);
      return `Ready ${((Date.now() - t0) / 1000).toFixed(1)} s after apply\n${kubectl(["get", "istio,istiorevision"]).trimEnd()}`;
    },
  },
  {
    what: "label namespace demo istio-injection=enabled",
    waitsFor: "nothing",
    run: () => {
      kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: "demo" } }));
      kubectl(["label", "namespace", "demo", "istio-injection=enabled", "--overwrite"]);
      return undefined;
    },
  },
  {
    what: "deploy the demo app: kubectl apply -f manifests/samples/demo-app.yaml",
    waitsFor: "the httpbin Deployment to be Available",
    run: () => {
      kubectl(["apply", "-f", join(ROOT, "manifests/samples/demo-app.yaml")]);
      kubectl(["-n", "demo", "rollout", "status", "deployment/httpbin", "--timeout=120s"]);
      return undefined;
    },
  },
  {
    what: "show the injected pod",
    waitsFor: "nothing",
    run: () =>
      kubectl([
        "-n",
        "demo",
        "get",
        "pods",
        "-l",
        "app=httpbin",
        "-o",
        "custom-columns=POD:.metadata.name,INIT:.spec.initContainers[*].name,CONTAINERS:.spec.containers[*].name,REVISION:.metadata.annotations.istio\\.io/rev,STATUS:.status.phase",
      ]).trimEnd(),
  },
];

/** Both flows end with gateways (their pods on the KWOK node: with no xDS yet they would not become ready) and validation. */
const commonSteps: Step[] = [
  {
    what: "deploy an ingress gateway: kubectl apply -f manifests/samples/ingress-gateway.yaml",
    waitsFor: "kubectl -n istio-ingress wait --for=condition=Ready istiogateway/istio-ingressgateway",
    run: () => {
      const t0 = Date.now();
      kubectl(["apply", "-f", join(ROOT, "manifests/samples/ingress-gateway.yaml")]);
      kubectl(["-n", "istio-ingress", "wait", "--for=condition=Ready", "--timeout=120s", "istiogateway/istio-ingressgateway"]);
      return `Ready ${((Date.now() - t0) / 1000).toFixed(1)} s after apply\n${kubectl(["-n", "istio-ingress", "get", "istiogateway,svc,hpa,pdb"]).trimEnd()}\n${kubectl(
        [
          "-n",
          "istio-ingress",
          "get",
          "pods",
          "-l",
          "istio=ingressgateway",
          "-o",
          "custom-columns=POD:.metadata.name,INIT:.spec.initContainers[*].name,CONTAINERS:.spec.containers[*].name,ARGS:.spec.containers[0].args[1],REVISION:.metadata.annotations.istio\\.io/rev",
        ],
      ).trimEnd()}`;
    },
  },
  {
    what: `install the Gateway API CRDs (sigs.k8s.io/gateway-api, from its Go module) and apply manifests/samples/gateway-api.yaml`,
    waitsFor: "GatewayClass istio Accepted, then the Gateway's Deployment demo-istio Available",
    run: async () => {
      kubectl(["apply", "--server-side", "-f", binaries.gatewayApiCrds]);
      kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd", "gateways.gateway.networking.k8s.io"]);
      for (let i = 0; i < 60 && !kubectl(["get", "gatewayclass", "-o", "name"]).includes("istio"); i++) await sleep(500);
      kubectl(["wait", "--for=condition=Accepted", "--timeout=60s", "gatewayclass/istio"]);
      kubectl(["apply", "-f", join(ROOT, "manifests/samples/gateway-api.yaml")]);
      for (let i = 0; i < 60 && !kubectl(["-n", "istio-ingress", "get", "deploy", "-o", "name"]).includes("demo-istio"); i++)
        await sleep(500);
      kubectl(["-n", "istio-ingress", "rollout", "status", "deployment/demo-istio", "--timeout=120s"]);
      return `${kubectl(["-n", "istio-ingress", "get", "gateway", "demo"]).trimEnd()}\n${kubectl([
        "-n",
        "istio-ingress",
        "get",
        "gateway",
        "demo",
        "-o",
        'jsonpath=Programmed: {.status.conditions[?(@.type=="Programmed")].reason} (no load balancer on a local cluster); address {.status.addresses[0].value}',
      ])}`;
    },
  },
  {
    what: "apply an invalid VirtualService (manifests/samples/bad-virtualservice.yaml)",
    waitsFor: "the validating webhook's answer",
    run: () => {
      try {
        kubectl(["apply", "-f", join(ROOT, "manifests/samples/bad-virtualservice.yaml")]);
      } catch (err) {
        const message = (err as Error).message;
        if (message.includes("denied the request"))
          return `denied, as it should be:\n${message.replace(/^.*?Error from server/s, "Error from server")}`;
        throw err;
      }
      throw new StepError("the invalid VirtualService was accepted: the validating webhook is not working");
    },
  },
];

async function run(local: boolean): Promise<number> {
  const steps = [...(local ? localSteps : podSteps), ...commonSteps];
  const t0 = Date.now();
  for (const [index, step] of steps.entries()) {
    const label = `step ${index + 1}/${steps.length}`;
    console.log(`==> ${label}: ${step.what}${step.waitsFor === "nothing" ? "" : ` (waits for ${step.waitsFor})`}`);
    const started = Date.now();
    try {
      const output = await step.run();
      if (output) console.log(output.replace(/^/gm, "    "));
      console.log(`    (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (err) {
      console.error(`\ndemo failed at ${label} (${step.what}):\n  ${(err as Error).message.replace(/\n/g, "\n  ")}`);
      console.error(
        local
          ? `logs: operator ${OPERATOR_LOG}; istiod ${join(DEMO_DIR, "istiod-default.log")}; cluster .cache/cluster/logs/`
          : "logs: kubectl -n rigger-system logs deploy/rigger-operator; kubectl -n istio-system logs deploy/istiod; cluster .cache/cluster/logs/ (kubelet.log, containerd.log)",
      );
      return 1;
    }
  }
  console.log(`\nall ${steps.length} steps in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const kubectlPath = binaries.kubectl;
  console.log(`
Rigger is running. Try it:
  export KUBECONFIG=${KUBECONFIG}
  alias kubectl=${kubectlPath}
  kubectl get istio,istiorevision                      # status, conditions, active revision
  kubectl -n istio-system get deploy,svc,cm            # what the operator created
  kubectl get mutatingwebhookconfigurations,validatingwebhookconfigurations
  kubectl -n istio-ingress get istiogateway,gateway,deploy,svc   # gateways and what they own
  kubectl -n demo delete pod -l app=${local ? "httpbin" : "echo"}${local ? "  " : "     "}          # a new pod is injected again${
    local ? "" : "\n  kubectl -n demo logs deploy/echo -c istio-proxy      # pilot-agent and Envoy, in a real container"
  }
  kubectl apply -f manifests/samples/bad-virtualservice.yaml   # invalid Istio config is denied
  ${process.execPath} cmd/rigger.ts inject --kubeconfig $KUBECONFIG -f manifests/samples/demo-app.yaml
Logs: ${local ? `operator ${OPERATOR_LOG}, istiod ${join(DEMO_DIR, "istiod-default.log")}` : "kubectl -n rigger-system logs deploy/rigger-operator; kubectl -n istio-system logs deploy/istiod"}
Stop everything: make cluster-down   (the operator, istiod, every pod and the cluster)`);
  return 0;
}

/** Stops the demo's operator (its istiod processes exit with it); returns what was stopped. */
export async function stopDemoOperator(): Promise<string[]> {
  return stopAll(STATE_FILE);
}

async function main(command: string | undefined): Promise<number> {
  if (command === "run") return run(process.argv.includes("--local"));
  if (command === "stop") {
    const stopped = await stopDemoOperator();
    if (stopped.length > 0) console.log(`stopped ${stopped.join(", ")}`);
    return 0;
  }
  console.error("usage: node e2e/cluster/demo.ts run [--local] | stop");
  return 2;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = await main(process.argv[2]);
