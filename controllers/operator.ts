// The operator process: leader election on a Lease, and while leading, the controllers.
// Losing the lease stops the controllers (and local control planes) and campaigns again,
// so a briefly unreachable apiserver costs a restart of the controllers, not of the process.
// /healthz, /readyz and /metrics are served over HTTPS.
import { createServer, type Server } from "node:https";
import { hostname } from "node:os";
import type { KubeConfig } from "@kubernetes/client-node";
import pino from "pino";
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { gatewayPath, ISTIOS_PATH, REVISIONS_PATH, TAGS_PATH } from "../api/operator.ts";
import { cachedReads, SharedCache } from "../kube/cache.ts";
import { ControllerRunner, controllerMetrics } from "../kube/controller.ts";
import { EventRecorder } from "../kube/events.ts";
import { LeaderElector } from "../kube/leader-election.ts";
import { rawClient, withRequestCounter } from "../kube/raw-client.ts";
import { withErrorStatus } from "../kube/reconcile.ts";
import { loopbackServingCertificate } from "../pki/certificates.ts";
import { gatewayApiController } from "./gateways/gateway-api-controller.ts";
import { istioGatewayController } from "./gateways/istio-gateway-controller.ts";
import { istioController } from "./install/istio-controller.ts";
import { LocalControlPlanes } from "./install/local-control-planes.ts";
import { revisionController } from "./install/revision-controller.ts";
import { tagController } from "./revisions/tag-controller.ts";
import { PodUsage } from "./revisions/usage.ts";

export interface OperatorOptions {
  kc: KubeConfig;
  /** Where the operator's Lease lives. */
  namespace: string;
  image: string;
  /** --local: run each revision's istiod as a child process; needs the kubeconfig's path. */
  local?: { kubeconfigPath: string; logDir: string };
  healthHost: string;
  healthPort: number;
  identity?: string;
  leaseName?: string;
  leaseDurationSeconds?: number;
  logLevel: string;
}

export interface Operator {
  healthPort: number;
  registry: Registry;
  isLeader(): boolean;
  stop(): Promise<void>;
}

export async function startOperator(options: OperatorOptions): Promise<Operator> {
  const log = pino({ level: options.logLevel, base: { component: "rigger-operator" } });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = controllerMetrics(registry);
  const writes = new Counter({
    name: "rigger_operator_api_writes_total",
    help: "Write requests the operator sent to the Kubernetes API, by verb.",
    labelNames: ["verb"],
    registers: [registry],
  });
  const leader = new Gauge({
    name: "leader_election_master_status",
    help: "1 while this process leads",
    labelNames: ["name"],
    registers: [registry],
  });
  const requests = new Counter({
    name: "rigger_operator_api_requests_total",
    help: "Requests (reads and writes, not watches) the operator sent to the Kubernetes API, by verb.",
    labelNames: ["verb"],
    registers: [registry],
  });
  new Gauge({
    name: "rigger_operator_watch_streams",
    help: "List-watch streams this process keeps open.",
    registers: [registry],
    collect() {
      this.set(cache?.streams ?? 0);
    },
  });
  const apiClient = withRequestCounter(rawClient(options.kc), (verb) => {
    requests.inc({ verb });
    if (verb !== "get") writes.inc({ verb });
  });
  const events = new EventRecorder(apiClient, "rigger-operator");
  const identity = options.identity ?? `${hostname()}-${process.pid}`;
  const leaseName = options.leaseName ?? "rigger-operator";
  const leaseSeconds = options.leaseDurationSeconds ?? 15;

  let runner: ControllerRunner | undefined;
  let cache: SharedCache | undefined;
  let pods: PodUsage | undefined;
  let local: LocalControlPlanes | undefined;
  let synced = false;
  let transition = Promise.resolve();

  const startControllers = async () => {
    local = options.local
      ? new LocalControlPlanes({
          kubeconfigPath: options.local.kubeconfigPath,
          logDir: options.local.logDir,
          onChange: (revision) => runner?.enqueue("istiorevision", revision),
          log: (message, fields) => log.info(fields ?? {}, message),
        })
      : undefined;
    // One cache per term of leadership: every watch shared, reconcilers read from its stores.
    cache = new SharedCache(options.kc, (spec, err) =>
      log[spec.optional ? "debug" : "warn"]({ watch: spec.path, error: err.message }, "watch failed; resuming"),
    );
    const client = cachedReads(apiClient, cache);
    // A pod that starts or stops referring to a revision or tag changes that one's InUse.
    pods = new PodUsage(cache, (ref) => {
      runner?.enqueue("istiorevision", ref);
      runner?.enqueue("istiorevisiontag", ref);
    });
    runner = new ControllerRunner(
      cache,
      [
        // A failed reconcile shows on its object's status (withErrorStatus), not only in the log.
        withErrorStatus(istioController({ client, events }), client, (key) => `${ISTIOS_PATH}/${key}`),
        withErrorStatus(
          revisionController({ client, events, image: options.image, local, pods }),
          client,
          (key) => `${REVISIONS_PATH}/${key}`,
        ),
        withErrorStatus(tagController({ client, pods }), client, (key) => `${TAGS_PATH}/${key}`),
        withErrorStatus(istioGatewayController({ client, events }), client, (key) => {
          const [namespace = "", name = ""] = key.split("/");
          return gatewayPath(namespace, name);
        }),
        gatewayApiController({ client }),
      ],
      metrics,
      log,
    );
    await runner.start(); // starts the cache, pods included
    synced = true;
    log.info("controllers started; caches synced");
  };
  const stopControllers = async () => {
    synced = false;
    runner?.stop();
    runner = undefined;
    pods?.stop();
    pods = undefined;
    cache?.stop();
    cache = undefined;
    await local?.stopAll();
    local = undefined;
  };

  const elector = new LeaderElector({
    client: rawClient(options.kc),
    namespace: options.namespace,
    name: leaseName,
    identity,
    leaseDurationSeconds: leaseSeconds,
    renewDeadlineMs: (leaseSeconds * 1000 * 2) / 3,
    retryPeriodMs: Math.max(500, (leaseSeconds * 1000) / 7),
    onStartedLeading: () => {
      log.info({ identity, lease: `${options.namespace}/${leaseName}` }, "became leader");
      leader.set({ name: leaseName }, 1);
      transition = transition
        .then(startControllers)
        .catch((err: Error) => log.error({ error: err.message }, "controllers did not start"));
    },
    onStoppedLeading: (why) => {
      leader.set({ name: leaseName }, 0);
      if (why === "stopped") {
        transition = transition.then(stopControllers);
        return;
      }
      // Lost (not renewed within the deadline): another candidate may lead in a moment. Stop
      // reconciling now and exit, as client-go's controllers do; the kubelet starts a fresh
      // candidate, with empty caches and no half-finished work.
      log.error({ identity }, "lost leadership (lease not renewed within the renew deadline); stopping and exiting");
      runner?.stop();
      cache?.stop();
      transition = transition.then(stopControllers).finally(() => process.exit(1));
    },
  });
  elector.start();

  const cert = await loopbackServingCertificate("rigger-operator", 365);
  const server: Server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") return void res.end("ok\n");
    if (path === "/readyz") {
      // A standby is ready too: it is healthy and waiting for the lease.
      const ready = !elector.isLeader || synced;
      res.statusCode = ready ? 200 : 503;
      return void res.end(ready ? "ok\n" : "caches not synced\n");
    }
    if (path === "/metrics") {
      registry.metrics().then((text) => {
        res.setHeader("content-type", registry.contentType);
        res.end(text);
      });
      return;
    }
    res.statusCode = 404;
    res.end("not found\n");
  });
  await new Promise<void>((resolve) => server.listen(options.healthPort, options.healthHost, resolve));
  const address = server.address();
  const healthPort = typeof address === "object" && address ? address.port : options.healthPort;
  log.info({ identity, healthPort, local: Boolean(options.local) }, "operator started; campaigning for leadership");

  return {
    healthPort,
    registry,
    isLeader: () => elector.isLeader,
    stop: async () => {
      await elector.stop();
      await transition;
      await stopControllers();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
