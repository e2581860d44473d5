// `rigger istiod` against a cluster: the control plane of one revision.
//   1. its CA (Secret istio-ca-secret) and a serving certificate signed by it;
//   2. injection settings from ConfigMaps istio-sidecar-injector[-<rev>] and istio[-<rev>],
//      followed as they change (a bad edit is logged and the last good settings kept);
//   3. the admission server (/inject, /validate) with that certificate, renewed at half life;
//   4. caBundle kept on its webhook configurations, and the validators switched to
//      failurePolicy Fail once the self-test has seen a bad object denied;
//   5. the mesh CA: IstioCertificateService over gRPC, istio-ca-root-cert in every namespace,
//      and, when the CA changes, a new serving certificate, caBundle and root copies;
//   6. Pilot: xDS (ADS, Delta and state of the world) on the same gRPC port, from Services,
//      EndpointSlices, Pods and Nodes in the shared cache (xds/).
import * as grpc from "@grpc/grpc-js";
import type { KubeConfig } from "@kubernetes/client-node";
import pino from "pino";
import { cachedReads, SharedCache } from "../kube/cache.ts";
import { EventRecorder } from "../kube/events.ts";
import { rawClient } from "../kube/raw-client.ts";
import type { KeyAlgorithm, PemPair } from "../pki/certificates.ts";
import type { InjectionSettings } from "../webhooks/inject/inject.ts";
import { settingsConfigMapNames, settingsFromConfigMaps, settingsFromFiles } from "../webhooks/inject/settings.ts";
import { startAdmissionServer } from "../webhooks/server.ts";
import { meshSettings } from "../xds/generate/context.ts";
import { debugView } from "../xds/server/debug.ts";
import { Discovery } from "../xds/server/discovery.ts";
import { GatewayListenerStatus } from "../xds/server/gateway-listener-status.ts";
import { configSources, nackEvents } from "../xds/server/nack-events.ts";
import { reviewSecretAccess } from "../xds/server/secret-access.ts";
import { AnalysisStatus } from "./analysis-status.ts";
import { authenticate, TokenReviewer } from "./ca/authenticate.ts";
import { MeshCa } from "./ca/mesh-ca.ts";
import { RootDistribution } from "./ca/root-distribution.ts";
import { type CaServer, startCaServer } from "./ca/server.ts";
import { issueServingCertificate, type ServingNames } from "./serving-certificate.ts";
import { runValidationSelfTest } from "./validation-self-test.ts";
import { WebhookPatcher } from "./webhook-patcher.ts";

export interface ControlPlaneOptions {
  kc: KubeConfig;
  namespace: string;
  revision: string;
  host: string;
  port: number;
  /** Extra DNS names and IPs for the serving certificate (127.0.0.1 for a local control plane). */
  extraSans: string[];
  nativeSidecars: boolean;
  logLevel: string;
  /** Read injection settings from files instead of the cluster's ConfigMaps. */
  injectionConfigDir?: string;
  meshConfigFile?: string;
  servingCertValidDays?: number;
  /** Renew the serving certificate after this fraction of its lifetime (default 0.5). */
  servingCertRenewFraction?: number;
  /** The mesh CA's gRPC port (15012 in a pod; 0 picks a free one). */
  grpcPort: number;
  /**
   * xDS in plaintext without authentication, as upstream's 15010, on this port (0 picks a free
   * one); off when undefined. Anyone who reaches it gets any proxy's configuration: local
   * debugging only.
   */
  plaintextXdsPort?: number;
  /** Key type of a self-signed root created here. */
  caKeyAlgorithm?: KeyAlgorithm;
  /** Workload certificate lifetimes, seconds. */
  workloadCertTtlSeconds?: number;
  maxWorkloadCertTtlSeconds?: number;
  /** Root rotation check interval (ms) and grace percentile. */
  rootCheckIntervalMs?: number;
  rootGracePeriodPercentile?: number;
}

export interface ControlPlane {
  port: number;
  grpcPort: number;
  /** The plaintext xDS port, when asked for. */
  plaintextXdsPort?: number;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retries `attempt` until it succeeds, logging the failure now and then. */
async function retry<T>(what: string, log: pino.Logger, attempt: () => Promise<T>): Promise<T> {
  for (let tries = 0; ; tries++) {
    try {
      return await attempt();
    } catch (err) {
      if (tries % 10 === 0) log.warn({ error: (err as Error).message }, `${what} failed; retrying`);
      await sleep(Math.min(5000, 250 * 2 ** Math.min(tries, 5)));
    }
  }
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const log = pino({ level: options.logLevel, base: { revision: options.revision || "default" } });
  // One informer cache for everything istiod watches (its ConfigMaps, the CA Secrets, webhook
  // configurations, namespaces); single-object GETs are answered from it when it can.
  const cache = new SharedCache(options.kc, (spec, err) =>
    log.warn({ path: spec.path, error: err.message }, "watch failed; retrying"),
  );
  const client = cachedReads(rawClient(options.kc), cache);
  const revisionLabel = options.revision || "default";
  const names: ServingNames = { namespace: options.namespace, revision: options.revision, extra: options.extraSans, tags: [] };
  const validDays = options.servingCertValidDays ?? 30;

  const mark = (step: string) => log.debug({ step, seconds: Number(process.uptime().toFixed(2)) }, "startup");
  mark("modules loaded");
  const ca = new MeshCa({
    cache,
    client,
    namespace: options.namespace,
    algorithm: options.caKeyAlgorithm ?? "ECDSA-P256",
    log,
    rootCheckIntervalMs: options.rootCheckIntervalMs,
    gracePeriodPercentile: options.rootGracePeriodPercentile,
  });
  await retry("loading the mesh CA (Secret cacerts or istio-ca-secret)", log, () => ca.start());
  // The serving chain: leaf, then the intermediates up to (not including) the root.
  const issueServing = async (): Promise<PemPair> => {
    const leaf = await issueServingCertificate(ca.bundle.signer, names, validDays);
    const pem = (text: string) => (text.endsWith("\n") ? text : `${text}\n`);
    return { certPem: [leaf.certPem, ...ca.bundle.chain].map(pem).join(""), keyPem: leaf.keyPem };
  };
  let serving = await issueServing();
  mark("certificate issued");

  const settingsOptions = { revision: options.revision, nativeSidecars: options.nativeSidecars };
  const configMapNames = settingsConfigMapNames(options.revision);
  const configMaps = cache.informer({ path: `/api/v1/namespaces/${options.namespace}/configmaps` });
  const load = async () => {
    if (options.injectionConfigDir) return settingsFromFiles(options.injectionConfigDir, options.meshConfigFile, settingsOptions);
    await configMaps.start();
    const read = (name: string) =>
      configMaps.get(`${options.namespace}/${name}`) as { data?: Record<string, string> } | undefined;
    return settingsFromConfigMaps(options.namespace, read(configMapNames.injector), read(configMapNames.mesh), settingsOptions);
  };
  let settings: InjectionSettings = await retry("reading the injection ConfigMaps", log, load);
  let discovery: Discovery | undefined;
  mark("settings loaded");
  const followed = new Set([configMapNames.injector, configMapNames.mesh].map((name) => `${options.namespace}/${name}`));
  // Subscribed right after the first load (no await between): the replay of what the store holds
  // is skipped, and every later change reloads.
  let replaying = true;
  const stopFollowing = configMaps.subscribe((key) => {
    if (replaying) return;
    if (!followed.has(key) || options.injectionConfigDir) return;
    load().then(
      (next) => {
        settings = next;
        log.info({ configMap: key }, "injection settings reloaded");
        // The mesh config also shapes every proxy's configuration (outbound policy, access log);
        // either ConfigMap's reload may be the first to see a new one.
        discovery?.changed("full");
      },
      (err: Error) =>
        log.error({ configMap: key, error: err.message }, "injection settings not reloaded; keeping the last good ones"),
    );
  });
  replaying = false;

  const server = await startAdmissionServer({
    host: options.host,
    port: options.port,
    tls: { certPem: serving.certPem, keyPem: serving.keyPem },
    injection: () => settings,
    logLevel: options.logLevel,
    debug: (path, query) => {
      const d = discovery;
      return d ? debugView(d.ads.connections(), path, query, () => d.pushContext()) : undefined;
    },
  });

  let proven = false;
  let caServer: CaServer | undefined;
  /** A new serving certificate, swapped into both servers. */
  const reissue = (why: string) => {
    issueServing().then(
      (next) => {
        serving = next;
        server?.setCertificate(serving.certPem, serving.keyPem);
        caServer?.setCertificate(serving.certPem, serving.keyPem);
        log.info({ why }, "serving certificate re-issued");
      },
      (err: Error) => log.error({ error: err.message }, "serving certificate not re-issued"),
    );
  };

  const patcher = new WebhookPatcher({
    cache,
    client,
    revisionLabel,
    caPem: () => ca.rootPem,
    validatorProven: () => proven,
    log: (message, fields) => log.info(fields ?? {}, message),
    // A tag now points here (or no longer): its Service's name goes into the serving certificate.
    onTagsChanged: (tags) => {
      names.tags = tags;
      reissue(`revision tags now ${tags.join(", ") || "none"}`);
    },
  });
  await retry("watching webhook configurations", log, () => patcher.start());

  let stopped = false;
  const selfTest = async () => {
    while (!stopped && !proven) {
      const outcome = await runValidationSelfTest(client, options.namespace, revisionLabel).catch((err: Error) => {
        log.debug({ error: err.message }, "validation self-test failed");
        return "error" as const;
      });
      if (outcome === "denied") {
        proven = true;
        log.info("validation webhook rejects bad config; switching validators to failurePolicy Fail");
        patcher.recheckAll();
        return;
      }
      await sleep(outcome === "no-gateway-crd" ? 10_000 : 1000);
    }
  };
  void selfTest();

  const renew = setInterval(
    () => {
      issueServing().then(
        (next) => {
          serving = next;
          server.setCertificate(serving.certPem, serving.keyPem);
          caServer?.setCertificate(serving.certPem, serving.keyPem);
          log.info("serving certificate renewed");
        },
        (err: Error) => log.error({ error: err.message }, "serving certificate renewal failed"),
      );
    },
    validDays * 24 * 60 * 60 * 1000 * (options.servingCertRenewFraction ?? 0.5),
  );
  renew.unref();

  // One token reviewer for the CA and xDS: a proxy's renewal and its xDS stream share a review.
  const reviewer = new TokenReviewer((token) => authenticate(client, token));
  // A proxy's NACK becomes a Warning Event on its pod and on the ServiceEntries, VirtualServices and DestinationRules it came from (once per object, type and message).
  const events = new EventRecorder(client, "istiod");
  // Whether an object's istio.io/rev label ("default" when unset) names this revision or one of its tags.
  const servesRevision = (label: string) => label === revisionLabel || (names.tags ?? []).includes(label);
  const xds: Discovery = new Discovery({
    onNack: nackEvents(
      events,
      (namespace, name) => xds.podUid(namespace, name),
      (report) => configSources(xds.pushContext(), report.resources, report.message, report.connection.proxy.namespace),
    ),
    cache,
    reviewer,
    metrics: server.registry,
    log: log.child({ component: "xds" }),
    // The mesh ConfigMap as it is now (reloaded on change): trust domain, outbound policy, access log.
    mesh: () => meshSettings(settings.mesh),
    // A gateway is sent its credentialName certificates only if its ServiceAccount may read them.
    reviewSecretAccess: (who) => reviewSecretAccess(client, who),
    // Gateway API listeners' certificate conditions, for the Gateways this revision (or a tag of it) serves.
    gatewayStatus: new GatewayListenerStatus({
      client,
      log: log.child({ component: "gateway-status" }),
      serves: (gateway) => servesRevision(gateway.metadata?.labels?.["istio.io/rev"] || "default"),
    }),
    // Analysis findings in Istio config objects' status (and Events), for the objects this revision serves.
    analysisStatus: new AnalysisStatus({
      client,
      log: log.child({ component: "analysis" }),
      events,
      serves: servesRevision,
    }),
  });
  await retry("watching Services, EndpointSlices, Pods and Nodes", log, () => xds.start());
  discovery = xds;
  mark("service registry loaded");

  caServer = await startCaServer({
    reviewer,
    services: (grpcServer) => xds.ads.register(grpcServer),
    // Proxies may authenticate xDS with their workload certificate instead of a token.
    clientCaPem: ca.rootPem,
    host: options.host,
    port: options.grpcPort,
    tls: serving,
    ca,
    client,
    trustDomain: () => settings.mesh.trustDomain || "cluster.local",
    defaultTtlSeconds: options.workloadCertTtlSeconds,
    maxTtlSeconds: options.maxWorkloadCertTtlSeconds,
    registry: server.registry,
    log,
  });
  const roots = new RootDistribution({ cache, client, rootPem: () => ca.rootPem, log });
  await retry("distributing istio-ca-root-cert", log, () => roots.start());
  ca.onChange(() => {
    caServer?.setClientCa(ca.rootPem);
    roots.resyncAll();
    patcher.recheckAll();
    reissue("the CA changed");
  });

  const plaintext =
    options.plaintextXdsPort === undefined
      ? undefined
      : await startPlaintextXds(xds, options.host, options.plaintextXdsPort, log);
  log.info(
    {
      port: server.port,
      grpcPort: caServer.port,
      plaintextXdsPort: plaintext?.port,
      namespace: options.namespace,
      startupSeconds: Number(process.uptime().toFixed(2)),
    },
    "control plane serving",
  );
  return {
    port: server.port,
    grpcPort: caServer.port,
    plaintextXdsPort: plaintext?.port,
    close: async () => {
      stopped = true;
      plaintext?.server.forceShutdown();
      xds.stop();
      ca.stop();
      roots.stop();
      await caServer.close();
      clearInterval(renew);
      stopFollowing();
      cache.stop();
      patcher.stop();
      await server.close();
    },
  };
}

/** Upstream's 15010: ADS without TLS or authentication, only when the flag asks for it. */
async function startPlaintextXds(
  xds: Discovery,
  host: string,
  port: number,
  log: pino.Logger,
): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server({ "grpc.max_receive_message_length": 4 * 1024 * 1024 });
  xds.ads.register(server, { plaintext: true });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  log.warn({ port: bound }, "plaintext xDS serving without authentication (--plaintext-xds-port): for local debugging only");
  return { server, port: bound };
}
