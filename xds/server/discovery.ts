// istiod's Pilot role, put together: the Kubernetes objects xDS needs, watched through
// istiod's shared informer cache (Services, EndpointSlices, Pods reduced to what the registry
// reads, Nodes' labels, PeerAuthentications, ServiceEntries, WorkloadEntries); a change starts a debounced push (upstream's PILOT_DEBOUNCE_AFTER
// 100 ms of quiet, PILOT_DEBOUNCE_MAX 10 s at most) that rebuilds the registry into a new
// PushContext and sends every proxy what changed; and the ADS server those proxies talk to.
import { createHash } from "node:crypto";
import type pino from "pino";
import type { Registry as Metrics } from "prom-client";
import type { AnalysisResource } from "../../analysis/analyze.ts";
import type { AnalysisStatus } from "../../istiod/analysis-status.ts";
import type { TokenReviewer } from "../../istiod/ca/authenticate.ts";
import type { Informer, SharedCache } from "../../kube/cache.ts";
import type { WatchedObject } from "../../kube/watcher.ts";
import { TypeUrl } from "../envoy/types.ts";
import { type AuthorizationPolicy, policyProblems } from "../generate/authorization.ts";
import { DEFAULT_MESH, type MeshSettings, outboundClusterName, type PushContext } from "../generate/context.ts";
import { type DestinationRule, subsetNamesOf, unresolvedDestinations } from "../generate/destination-rule.ts";
import { type IstioGateway, unservedServers } from "../generate/gateway.ts";
import {
  type KubeGateway,
  type KubeGrpcRoute,
  type KubeHttpRoute,
  type ReferenceGrant,
  withGatewayApi,
} from "../generate/gateway-api.ts";
import {
  type CredentialSecret,
  credentialOf,
  credentialProblems,
  type KubeSecret,
  referencedSecrets,
} from "../generate/gateway-secrets.ts";
import { gatewayGenerator, grpcGenerator, ResourceCache, sidecarGenerator } from "../generate/index.ts";
import type { PeerAuthentication } from "../generate/peer-authentication.ts";
import type { RequestAuthentication } from "../generate/request-authentication.ts";
import type { Sidecar } from "../generate/sidecar-scope.ts";
import type { Telemetry } from "../generate/telemetry.ts";
import type { VirtualService } from "../generate/virtual-service.ts";
import { mergedVirtualServices, shadowedHosts } from "../generate/virtual-service-scope.ts";
import { isProxylessGrpc } from "../proxy.ts";
import {
  buildRegistry,
  changedEndpoints,
  changedWorkloadPorts,
  type KubeEndpointSlice,
  type KubeNode,
  type KubePod,
  type KubeService,
} from "../registry/registry.ts";
import type { KubeServiceEntry, KubeWorkloadEntry } from "../registry/service-entry.ts";
import { AdsServer, type NackReport } from "./ads.ts";
import type { GatewayListenerStatus, LiveKubeGateway } from "./gateway-listener-status.ts";
import { JwksFetcher } from "./jwks.ts";
import { type Identity, SecretAccess } from "./secret-access.ts";

export interface DiscoveryOptions {
  cache: SharedCache;
  reviewer: TokenReviewer;
  metrics: Metrics;
  log: pino.Logger;
  mesh?: () => Partial<MeshSettings>;
  debounceAfterMs?: number;
  debounceMaxMs?: number;
  onNack?: (report: NackReport) => void;
  /** Asks whether a gateway's ServiceAccount may list its namespace's Secrets (SubjectAccessReview); unset: not checked. */
  reviewSecretAccess?: (who: Identity) => Promise<boolean>;
  /** Writes Gateway API listeners' certificate conditions (istiod's part of a Gateway's status); unset: not written. */
  gatewayStatus?: GatewayListenerStatus;
  /** Writes analysis findings into Istio config objects' status; unset: not analyzed. */
  analysisStatus?: AnalysisStatus;
}

/** What the registry reads of a pod; the rest is not kept in memory. */
function slimPod(object: WatchedObject): WatchedObject {
  const pod = object as KubePod & { spec?: { containers?: { name?: string }[]; initContainers?: { name?: string }[] } };
  return {
    metadata: {
      name: pod.metadata?.name,
      namespace: pod.metadata?.namespace,
      uid: pod.metadata?.uid,
      labels: pod.metadata?.labels,
    },
    spec: {
      serviceAccountName: pod.spec?.serviceAccountName,
      nodeName: pod.spec?.nodeName,
      hostNetwork: pod.spec?.hostNetwork,
      // Container names only (analysis: whether the pod runs istio-proxy).
      containers: (pod.spec?.containers ?? []).map((c) => ({ name: c.name })),
      initContainers: (pod.spec?.initContainers ?? []).map((c) => ({ name: c.name })),
    },
    status: { podIP: pod.status?.podIP, podIPs: pod.status?.podIPs, phase: pod.status?.phase },
  } as WatchedObject;
}

/** What istiod keeps of a Secret: its certificate keys (credentialOf), never anything else. */
function slimSecret(object: WatchedObject): WatchedObject {
  return credentialOf(object as KubeSecret) as unknown as WatchedObject;
}

function slimNode(object: WatchedObject): WatchedObject {
  return { metadata: { name: object.metadata?.name, labels: object.metadata?.labels } } as WatchedObject;
}

export class Discovery {
  readonly ads: AdsServer;
  private readonly options: DiscoveryOptions;
  private readonly informers: {
    services: Informer;
    slices: Informer;
    pods: Informer;
    nodes: Informer;
    peerAuthentications: Informer;
    serviceEntries: Informer;
    workloadEntries: Informer;
    virtualServices: Informer;
    destinationRules: Informer;
    sidecars: Informer;
    telemetries: Informer;
    authorizationPolicies: Informer;
    requestAuthentications: Informer;
    gateways: Informer;
    secrets: Informer;
    kubeGateways: Informer;
    httpRoutes: Informer;
    grpcRoutes: Informer;
    referenceGrants: Informer;
    namespaces: Informer;
  };
  /** VirtualService versions whose untranslated rules were already logged. */
  private readonly warned = new Set<string>();
  /** What was last logged about each Gateway's servers left out (JSON), by `<namespace>/<name>`. */
  private readonly gatewayProblems = new Map<string, string>();
  /** The Secrets Gateways name, for the push of `version`. */
  private referenced = { version: -1, keys: new Set<string>() };
  private readonly jwks: JwksFetcher;
  private readonly secretAccess: SecretAccess | undefined;
  /** Gateways' ServiceAccounts whose denied Secret access was logged. */
  private readonly deniedSecretReaders = new Set<string>();
  private readonly resources = new ResourceCache();
  private current: PushContext;
  private version = 0;
  private timer: NodeJS.Timeout | undefined;
  private firstChangeAt = 0;
  private pendingFull = false;
  private pendingRoutes = false;
  private unsubscribe: (() => void)[] = [];
  /** Pushes done (for tests and /debug). */
  pushes = 0;

  constructor(options: DiscoveryOptions) {
    this.options = options;
    this.jwks = new JwksFetcher(() => this.changed("full"), options.log);
    const review = options.reviewSecretAccess;
    this.secretAccess =
      review &&
      new SecretAccess({
        review,
        onAnswer: (who, allowed, changed) => {
          if (changed) this.changed("full");
          // A denial is logged once until that ServiceAccount is allowed again.
          const serviceAccount = `${who.namespace}/${who.serviceAccount}`;
          if (allowed) this.deniedSecretReaders.delete(serviceAccount);
          else if (!this.deniedSecretReaders.has(serviceAccount)) {
            this.deniedSecretReaders.add(serviceAccount);
            options.log.warn(
              { serviceAccount },
              "a gateway's ServiceAccount may not list Secrets in its namespace: it is sent no credentialName certificates",
            );
          }
        },
        // Kept fresh while a proxy that authenticated as that ServiceAccount is connected.
        active: (who) =>
          this.ads
            .connections()
            .some(
              (c) =>
                c.proxy.verifiedIdentity?.namespace === who.namespace &&
                c.proxy.verifiedIdentity.serviceAccount === who.serviceAccount,
            ),
        onError: (who, err) =>
          options.log.warn(
            { serviceAccount: `${who.namespace}/${who.serviceAccount}`, error: err.message },
            "SubjectAccessReview failed",
          ),
      });
    const cache = options.cache;
    this.informers = {
      services: cache.informer({ path: "/api/v1/services" }),
      slices: cache.informer({ path: "/apis/discovery.k8s.io/v1/endpointslices" }),
      pods: cache.informer({ path: "/api/v1/pods", transform: slimPod }),
      nodes: cache.informer({ path: "/api/v1/nodes", metadataOnly: true, transform: slimNode }),
      // Istio's CRDs may be installed after istiod starts: optional, picked up when they appear.
      peerAuthentications: cache.informer({ path: "/apis/security.istio.io/v1/peerauthentications", optional: true }),
      serviceEntries: cache.informer({ path: "/apis/networking.istio.io/v1/serviceentries", optional: true }),
      workloadEntries: cache.informer({ path: "/apis/networking.istio.io/v1/workloadentries", optional: true }),
      virtualServices: cache.informer({ path: "/apis/networking.istio.io/v1/virtualservices", optional: true }),
      destinationRules: cache.informer({ path: "/apis/networking.istio.io/v1/destinationrules", optional: true }),
      sidecars: cache.informer({ path: "/apis/networking.istio.io/v1/sidecars", optional: true }),
      telemetries: cache.informer({ path: "/apis/telemetry.istio.io/v1/telemetries", optional: true }),
      authorizationPolicies: cache.informer({ path: "/apis/security.istio.io/v1/authorizationpolicies", optional: true }),
      requestAuthentications: cache.informer({ path: "/apis/security.istio.io/v1/requestauthentications", optional: true }),
      gateways: cache.informer({ path: "/apis/networking.istio.io/v1/gateways", optional: true }),
      // The Gateway API (its CRDs may come any time): gateways' listeners and routes.
      kubeGateways: cache.informer({ path: "/apis/gateway.networking.k8s.io/v1/gateways", optional: true }),
      httpRoutes: cache.informer({ path: "/apis/gateway.networking.k8s.io/v1/httproutes", optional: true }),
      grpcRoutes: cache.informer({ path: "/apis/gateway.networking.k8s.io/v1/grpcroutes", optional: true }),
      // Namespaces' labels: Gateway API listeners that admit routes by namespace selector.
      namespaces: cache.informer({ path: "/api/v1/namespaces", metadataOnly: true, transform: slimNode, optional: true }),
      referenceGrants: cache.informer({ path: "/apis/gateway.networking.k8s.io/v1beta1/referencegrants", optional: true }),
      // Gateways' credentialName certificates. Optional: until istiod may read Secrets (its
      // revision's istiod-credentials binding), HTTPS servers get no chains and the rest works.
      // ServiceAccount tokens and Helm releases are never even listed (as upstream).
      secrets: cache.informer({
        path: "/api/v1/secrets",
        fieldSelector: "type!=kubernetes.io/service-account-token,type!=helm.sh/release.v1",
        transform: slimSecret,
        optional: true,
      }),
    };
    this.current = this.snapshot();
    this.ads = new AdsServer({
      reviewer: options.reviewer,
      trustDomain: () => options.mesh?.().trustDomain ?? DEFAULT_MESH.trustDomain,
      registry: options.metrics,
      log: options.log,
      onNack: options.onNack,
      // Proxyless gRPC asks for its own generator, as upstream's node metadata GENERATOR does.
      generatorFor: (proxy) =>
        (isProxylessGrpc(proxy) ? grpcGenerator : proxy.type === "router" ? gatewayGenerator : sidecarGenerator)(
          proxy,
          () => this.current,
          this.resources,
        ),
    });
  }

  /** Lists everything once (the first push has the whole mesh), then follows changes. */
  async start(): Promise<void> {
    const { services, slices, pods, nodes, ...istio } = this.informers;
    // Istio's kinds are optional (their CRDs may come later): started, not waited for.
    for (const optional of Object.values(istio)) void optional.start();
    const {
      peerAuthentications,
      serviceEntries,
      workloadEntries,
      virtualServices,
      destinationRules,
      sidecars,
      telemetries,
      authorizationPolicies,
      requestAuthentications,
      gateways,
      secrets,
      kubeGateways,
      httpRoutes,
      grpcRoutes,
      referenceGrants,
      namespaces,
    } = istio;
    await Promise.all([services.start(), slices.start(), pods.start(), nodes.start()]);
    this.current = this.snapshot();
    this.unsubscribe = [
      services.subscribe(() => this.changed("full")),
      slices.subscribe(() => this.changed("endpoints")),
      // Generators read pods only through endpoints (labels, ServiceAccount, node): the diff finds them.
      pods.subscribe(() => this.changed("endpoints")),
      nodes.subscribe(() => this.changed("endpoints")),
      peerAuthentications.subscribe(() => this.changed("full")),
      serviceEntries.subscribe(() => this.changed("full")),
      workloadEntries.subscribe(() => this.changed("full")),
      // Mesh VirtualServices make HTTP routes (and, with TCP rules, listeners: see push()).
      virtualServices.subscribe(() => this.changed("routes")),
      // Clusters, load assignments (subsets) and routes (hash policies): everything.
      destinationRules.subscribe(() => this.changed("full")),
      // What each proxy sees: everything.
      sidecars.subscribe(() => this.changed("full")),
      // Access logs in listeners.
      telemetries.subscribe(() => this.changed("full")),
      // RBAC filters in inbound listeners.
      authorizationPolicies.subscribe(() => this.changed("full")),
      // JWT filters in inbound listeners.
      requestAuthentications.subscribe(() => this.changed("full")),
      // Gateway pods' listeners and routes.
      gateways.subscribe(() => this.changed("full")),
      // Gateway API objects become Gateways and VirtualServices (gateway-api.ts).
      kubeGateways.subscribe(() => this.changed("full")),
      httpRoutes.subscribe(() => this.changed("full")),
      grpcRoutes.subscribe(() => this.changed("full")),
      // Labels matter only to Gateway API listeners selecting namespaces: pushed only then.
      namespaces.subscribe(() => {
        if (this.selectsNamespaces()) this.changed("full");
      }),
      referenceGrants.subscribe(() => this.changed("full")),
      // Only the Secrets Gateways name are pushed (a cluster's many others change often).
      secrets.subscribe((key) => {
        if (this.referencedSecrets().has(key)) this.changed("full");
      }),
    ];
    // Once Secrets can be read, HTTPS servers can be served: push (even when none is named yet).
    void secrets.start().then(() => this.changed("full"));
  }

  stop(): void {
    for (const u of this.unsubscribe) u();
    this.jwks.stop();
    this.secretAccess?.stop();
    this.options.gatewayStatus?.stop();
    this.options.analysisStatus?.stop();
    if (this.timer) clearTimeout(this.timer);
  }

  /** A pod's UID from the pod watch (Events name it). */
  podUid(namespace: string, name: string): string | undefined {
    return (this.informers.pods.get(`${namespace}/${name}`)?.metadata as { uid?: string } | undefined)?.uid;
  }

  /** The PushContext proxies are generated from now. */
  pushContext(): PushContext {
    return this.current;
  }

  private snapshot(): PushContext {
    const list = <T>(name: keyof Discovery["informers"]) => this.informers[name].list() as T[];
    const istioPush: PushContext = {
      virtualServices: list<VirtualService>("virtualServices"),
      destinationRules: list<DestinationRule>("destinationRules"),
      sidecars: list<Sidecar>("sidecars"),
      telemetries: list<Telemetry>("telemetries"),
      authorizationPolicies: list<AuthorizationPolicy>("authorizationPolicies"),
      requestAuthentications: list<RequestAuthentication>("requestAuthentications"),
      gateways: list<IstioGateway>("gateways"),
      ...(this.secretAccess ? { secretReaders: (who: Identity) => this.secretAccess?.allowed(who) ?? false } : {}),
      version: ++this.version,
      mesh: { ...DEFAULT_MESH, ...this.options.mesh?.() },
      peerAuthentications: list<PeerAuthentication>("peerAuthentications"),
      registry: buildRegistry({
        services: list<KubeService>("services"),
        endpointSlices: list<KubeEndpointSlice>("slices"),
        pods: list<KubePod>("pods"),
        nodes: list<KubeNode>("nodes"),
        serviceEntries: list<KubeServiceEntry>("serviceEntries"),
        workloadEntries: list<KubeWorkloadEntry>("workloadEntries"),
      }),
    };
    // The Gateway API's Gateways and HTTPRoutes, as the Istio Gateways and VirtualServices they make.
    const push = withGatewayApi(istioPush, {
      gateways: list<KubeGateway>("kubeGateways"),
      httpRoutes: list<KubeHttpRoute>("httpRoutes"),
      grpcRoutes: list<KubeGrpcRoute>("grpcRoutes"),
      namespaceLabels: new Map(
        list<WatchedObject>("namespaces").map((n) => [
          n.metadata?.name ?? "",
          (n.metadata?.labels ?? {}) as Record<string, string>,
        ]),
      ),
      referenceGrants: list<ReferenceGrant>("referenceGrants"),
    });
    if (this.informers.secrets.synced) {
      push.credentials = this.credentials(push.gateways ?? []);
      // Listener status needs every Secret a certificateRef names (granted or not): read from the informer.
      this.options.gatewayStatus?.update({
        gateways: list<LiveKubeGateway>("kubeGateways"),
        referenceGrants: list<ReferenceGrant>("referenceGrants"),
        secretOf: (key) => this.informers.secrets.get(key) as unknown as CredentialSecret | undefined,
      });
    }
    this.options.analysisStatus?.update(() => this.analysisInput());
    this.warnVirtualServices(push);
    this.warnAuthorizationPolicies(push);
    this.warnGateways(push);
    // Key sets named by jwksUri, as far as fetched (a fetched one that changed pushes again).
    const uris = (push.requestAuthentications ?? []).flatMap((r) =>
      (r.spec?.jwtRules ?? []).flatMap((rule) => (rule.jwksUri && !rule.jwks ? [rule.jwksUri] : [])),
    );
    if (uris.length > 0) push.jwks = this.jwks.keysFor(uris);
    return push;
  }

  /** What the informers hold, as objects to analyze (list items carry no apiVersion and kind: set here). */
  private analysisInput(): AnalysisResource[] {
    const kinds: [keyof Discovery["informers"], string, string][] = [
      ["services", "v1", "Service"],
      ["pods", "v1", "Pod"],
      ["namespaces", "v1", "Namespace"],
      ["slices", "discovery.k8s.io/v1", "EndpointSlice"],
      ["virtualServices", "networking.istio.io/v1", "VirtualService"],
      ["destinationRules", "networking.istio.io/v1", "DestinationRule"],
      ["gateways", "networking.istio.io/v1", "Gateway"],
      ["serviceEntries", "networking.istio.io/v1", "ServiceEntry"],
      ["workloadEntries", "networking.istio.io/v1", "WorkloadEntry"],
      ["sidecars", "networking.istio.io/v1", "Sidecar"],
      ["authorizationPolicies", "security.istio.io/v1", "AuthorizationPolicy"],
      ["peerAuthentications", "security.istio.io/v1", "PeerAuthentication"],
      ["requestAuthentications", "security.istio.io/v1", "RequestAuthentication"],
      ["telemetries", "telemetry.istio.io/v1", "Telemetry"],
      ["kubeGateways", "gateway.networking.k8s.io/v1", "Gateway"],
      ["httpRoutes", "gateway.networking.k8s.io/v1", "HTTPRoute"],
      ["grpcRoutes", "gateway.networking.k8s.io/v1", "GRPCRoute"],
      ["referenceGrants", "gateway.networking.k8s.io/v1beta1", "ReferenceGrant"],
    ];
    return kinds.flatMap(([informer, apiVersion, kind]) =>
      (this.informers[informer].list() as AnalysisResource["object"][]).map((o) => ({ object: { ...o, apiVersion, kind } })),
    );
  }

  /** Whether a Gateway API listener admits routes by namespace selector (namespace labels then matter). */
  private selectsNamespaces(): boolean {
    return (this.informers.kubeGateways.list() as KubeGateway[]).some((g) =>
      (g.spec?.listeners ?? []).some((l) => l.allowedRoutes?.namespaces?.from === "Selector"),
    );
  }

  /** The Secrets the current push's Gateways name (kept per push: asked once per Secret event). */
  private referencedSecrets(): Set<string> {
    if (this.referenced.version !== this.current.version)
      this.referenced = { version: this.current.version, keys: referencedSecrets(this.current.gateways ?? []) };
    return this.referenced.keys;
  }

  /** The Secrets Gateways name, by `<namespace>/<name>` (the informer keeps only their certificate keys). */
  private credentials(gateways: IstioGateway[]): Map<string, CredentialSecret> {
    const named = referencedSecrets(gateways);
    const out = new Map<string, CredentialSecret>();
    for (const key of named) {
      const secret = this.informers.secrets.get(key) as unknown as CredentialSecret | undefined;
      if (secret) out.set(key, secret);
    }
    return out;
  }

  /** Whether `key` (an object's version) is seen for the first time: warnings are logged once each. */
  private firstTime(key: string): boolean {
    if (this.warned.has(key)) return false;
    if (this.warned.size > 10_000) this.warned.clear();
    this.warned.add(key);
    return true;
  }

  /**
   * Logs a Gateway's servers gateways get no listener for, with why (not served yet, a Secret
   * missing or without certificates), whenever that list changes (a Secret created later
   * clears it).
   */
  private warnGateways(push: PushContext): void {
    const seen = new Set<string>();
    for (const gateway of push.gateways ?? []) {
      const meta = gateway.metadata as { namespace?: string; name?: string } | undefined;
      const name = `${meta?.namespace}/${meta?.name}`;
      seen.add(name);
      const problems = [
        ...unservedServers(gateway, push.credentials !== undefined),
        ...(push.credentials ? credentialProblems(push, gateway) : []),
      ];
      const said = JSON.stringify(problems);
      if (this.gatewayProblems.get(name) === said) continue;
      if (problems.length > 0) this.options.log.warn({ gateway: name, problems }, "Gateway: servers left out");
      else if (this.gatewayProblems.has(name)) this.options.log.info({ gateway: name }, "Gateway: every server served");
      this.gatewayProblems.set(name, said);
    }
    for (const name of this.gatewayProblems.keys()) if (!seen.has(name)) this.gatewayProblems.delete(name);
  }

  /** Logs, once per version of an AuthorizationPolicy, the rules proxies cannot be given (they fail closed). */
  private warnAuthorizationPolicies(push: PushContext): void {
    for (const policy of push.authorizationPolicies ?? []) {
      const meta = policy.metadata as { namespace?: string; name?: string; resourceVersion?: string } | undefined;
      const authorizationPolicy = `${meta?.namespace}/${meta?.name}`;
      const key = `authz:${authorizationPolicy}@${meta?.resourceVersion}`;
      if (!this.firstTime(key)) continue;
      const problems = policyProblems(push, policy);
      if (problems.length > 0)
        this.options.log.warn(
          { authorizationPolicy, problems },
          "AuthorizationPolicy: rules that cannot be translated are left out (an ALLOW allows less, a DENY denies more)",
        );
    }
  }

  /**
   * Logs, once per version of a VirtualService (with its delegates, and of the DestinationRules),
   * its delegations that went nowhere and its destinations that do not exist (requests there get 503).
   */
  private warnVirtualServices(push: PushContext): void {
    // The DestinationRules' versions, hashed: a key per VirtualService stays short however many there are.
    const rules = createHash("sha256")
      .update((push.destinationRules ?? []).map((d) => d.metadata?.resourceVersion).join(","))
      .digest("base64url")
      .slice(0, 12);
    const { virtualServices, problems } = mergedVirtualServices(push);
    const shadowed = shadowedHosts(push);
    const versions = new Map((push.virtualServices ?? []).map((v) => [`${v.metadata?.namespace}/${v.metadata?.name}`, v]));
    for (const vs of virtualServices) {
      const meta = vs.metadata;
      const virtualService = `${meta?.namespace}/${meta?.name}`;
      // A root's routes are its delegates' too: their versions are part of what was warned about.
      const delegates = (versions.get(virtualService)?.spec?.http ?? [])
        .map((r) => r.delegate && versions.get(`${r.delegate.namespace || meta?.namespace}/${r.delegate.name}`))
        .map((d) => (d ? d.metadata?.resourceVersion : "-"));
      const key = `${virtualService}@${meta?.resourceVersion}/${delegates.join(",")}/${rules}`;
      if (!this.firstTime(key)) continue;
      const left = problems.filter((p) => p.root.metadata?.namespace === meta?.namespace && p.root.metadata?.name === meta?.name);
      if (left.length > 0)
        this.options.log.warn(
          { virtualService, problems: left.map((p) => p.message) },
          "VirtualService delegation: rules left out of proxies' routes",
        );
      const lost = shadowed.get(virtualService);
      if (lost)
        this.options.log.warn(
          { virtualService, hosts: Object.fromEntries(lost) },
          "VirtualService hosts routed by an older VirtualService (the oldest wins, as upstream): this one's rules for them are not used",
        );
      const nowhere = unresolvedDestinations(push, vs);
      if (nowhere.length > 0)
        this.options.log.warn(
          { virtualService, destinations: nowhere },
          "VirtualService routes to destinations that do not exist: requests there get 503",
        );
    }
  }

  /** Debounces: pushes after `debounceAfterMs` without a change, or `debounceMaxMs` after the first. */
  /**
   * Something changed: `full` (services, pods, policies: everything is rebuilt and every type
   * pushed), `endpoints` (load assignments and clusters of the services whose endpoints differ),
   * or `routes` (route configurations only).
   */
  changed(what: "full" | "endpoints" | "routes"): void {
    const after = this.options.debounceAfterMs ?? 100;
    const max = this.options.debounceMaxMs ?? 10_000;
    const now = performance.now();
    if (!this.timer) this.firstChangeAt = now;
    this.pendingFull ||= what === "full";
    this.pendingRoutes ||= what === "routes";
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(after, this.firstChangeAt + max - now));
    this.timer = setTimeout(() => this.push(), wait);
  }

  private push(): void {
    this.timer = undefined;
    const full = this.pendingFull;
    const routes = this.pendingRoutes;
    this.pendingFull = false;
    this.pendingRoutes = false;
    const before = this.current;
    this.current = this.snapshot();
    this.pushes++;
    if (full) {
      this.ads.push();
      return;
    }
    // Otherwise what was built for the last push stays but for the route configurations (after a
    // VirtualService change) and the clusters and load assignments of the services whose
    // endpoints changed; only those are looked at.
    const hosts = changedEndpoints(before.registry, this.current.registry);
    // A headless Service's endpoints are listeners and routes too: everything is pushed.
    if ([...hosts].some((h) => this.current.registry.byHostname.get(h)?.resolution === "NONE")) {
      this.ads.push();
      return;
    }
    this.current.incremental = { from: before.version, hosts, routes };
    // A workload that serves other ports now (its pod got an IP, its Service changed targets)
    // needs its own inbound listeners and clusters: those proxies get everything, as upstream's
    // proxy update does.
    const moved = changedWorkloadPorts(before.registry, this.current.registry);
    if (moved.size > 0) this.ads.push(undefined, (c) => c.proxy.ipAddresses.some((ip) => moved.has(ip)));
    if (routes) {
      // TCP and TLS rules live in listeners: with any (before or now), listeners are looked at too.
      const tcp = (p: PushContext) =>
        (p.virtualServices ?? []).some((vs) => (vs.spec?.tcp?.length ?? 0) > 0 || (vs.spec?.tls?.length ?? 0) > 0);
      this.ads.push(new Set(tcp(before) || tcp(this.current) ? [TypeUrl.route, TypeUrl.listener] : [TypeUrl.route]));
    }
    if (hosts.size === 0) return;
    const only = new Set<string>();
    for (const host of hosts) {
      const subsets = ["", ...subsetNamesOf(this.current, host)];
      for (const port of this.current.registry.byHostname.get(host)?.ports ?? before.registry.byHostname.get(host)?.ports ?? [])
        for (const subset of subsets) only.add(outboundClusterName(port.port, host, subset));
    }
    this.ads.push(new Set([TypeUrl.endpoint, TypeUrl.cluster]), undefined, only);
  }
}
