// The xDS protocol of one proxy's stream, apart from gRPC: what to answer to each request and
// what to send when configuration changes, for state-of-the-world (DiscoveryRequest) and
// incremental (Delta) streams alike. Generators are called per type with what the proxy
// watches; they return resources with versions (a hash of their bytes), so a push sends only
// what changed and an unchanged configuration sends nothing.
//
// ACK and NACK follow the nonce: a request naming the last nonce sent either acknowledges it
// or (error_detail set) rejects it. A NACK is reported once and never answered with the same
// resources again (they are only re-sent when they change), so a config Envoy refuses cannot
// start a push loop. A request naming an older nonce is stale and only updates subscriptions.

import type {
  DeltaDiscoveryRequest,
  DeltaDiscoveryResponse,
  DiscoveryRequest,
  DiscoveryResponse,
} from "../envoy/third_party/envoy/service/discovery/v3/discovery.ts";
import type { Any } from "../envoy/third_party/google/protobuf/any.ts";
import { TypeUrl } from "../envoy/types.ts";

export interface Resource {
  name: string;
  /** Changes whenever the resource's content does (a hash of its bytes). */
  version: string;
  resource: Any;
}

export interface Subscription {
  /** Every resource of the type (CDS and LDS), rather than named ones. */
  wildcard: boolean;
  names: ReadonlySet<string>;
  /** A partial push: only resources of these names may have changed; a generator may skip the rest. */
  only?: ReadonlySet<string>;
}

/** Resources of `typeUrl` for this subscription; undefined when the type is not served. */
export type Generate = (typeUrl: string, subscription: Subscription) => Resource[] | undefined;

export interface StreamEvents {
  /** A response went out (for metrics and convergence). */
  sent?(typeUrl: string, nonce: string, resources: number): void;
  acked?(typeUrl: string, nonce: string): void;
  /** The proxy rejected what `nonce` carried (the names of the resources it carried). */
  nacked?(typeUrl: string, nonce: string, message: string, resources: string[]): void;
  /** A type nobody generates: answered empty, told once per stream and type. */
  unknownType?(typeUrl: string): void;
}

/** Types whose empty subscription means "everything" (Envoy's wildcard). */
const WILDCARD_TYPES = new Set<string>([TypeUrl.cluster, TypeUrl.listener]);

interface Watch {
  wildcard: boolean;
  names: Set<string>;
  /** Last nonce sent for this type; the last one the proxy acknowledged, or rejected (with its message). */
  nonce?: string;
  acked?: string;
  nacked?: { nonce: string; message: string };
  /** Names of the resources the last response carried (what a NACK of it refers to). */
  lastSent?: string[];
  /** SotW: the set version last sent. Delta: what the proxy holds, name → version. */
  sentVersion?: string;
  held: Map<string, string>;
}

let nonces = 0;
const nextNonce = () => `${Date.now().toString(36)}-${(++nonces).toString(36)}`;

abstract class Stream<Request, Response> {
  protected readonly watches = new Map<string, Watch>();
  private readonly unknown = new Set<string>();
  private pushCount = 0;

  protected readonly generate: Generate;
  protected readonly send: (response: Response) => void;
  protected readonly events: StreamEvents;

  constructor(generate: Generate, send: (response: Response) => void, events: StreamEvents = {}) {
    this.generate = generate;
    this.send = send;
    this.events = events;
  }

  abstract handle(request: Request): void;

  /** Types the proxy watches. */
  watched(): string[] {
    return [...this.watches.keys()];
  }

  /** Per watched type: the last nonce sent, acknowledged and rejected, and how many resources: for /debug/syncz. */
  state(): { typeUrl: string; sent?: string; acked?: string; nacked?: { nonce: string; message: string }; resources: number }[] {
    return [...this.watches].map(([typeUrl, w]) => ({
      typeUrl,
      sent: w.nonce,
      acked: w.acked,
      nacked: w.nacked,
      resources: w.held.size,
    }));
  }

  /** What the proxy subscribes to for a type (undefined when it does not watch it). */
  subscription(typeUrl: string): Subscription | undefined {
    const w = this.watches.get(typeUrl);
    return w && { wildcard: w.wildcard, names: new Set(w.names) };
  }

  /**
   * Configuration changed: send each watched type (or only `types`) whatever differs from what
   * the proxy has; with `only`, just resources of those names can have changed (Delta streams
   * look at no others; state-of-the-world ones must send every resource anyway).
   */
  push(types?: ReadonlySet<string>, only?: ReadonlySet<string>): void {
    this.pushCount++;
    for (const typeUrl of this.watches.keys()) if (!types || types.has(typeUrl)) this.respond(typeUrl, false, only);
  }

  protected version(): string {
    return `${Date.now()}/${this.pushCount}`;
  }

  /** The resources for a type, or undefined (answered empty) when nobody generates it. */
  protected resources(typeUrl: string, watch: Watch, only?: ReadonlySet<string>): Resource[] {
    const resources = this.generate(typeUrl, only ? { wildcard: watch.wildcard, names: watch.names, only } : watch);
    if (resources) return resources;
    if (!this.unknown.has(typeUrl)) {
      this.unknown.add(typeUrl);
      this.events.unknownType?.(typeUrl);
    }
    return [];
  }

  protected ackOrNack(typeUrl: string, watch: Watch, nonce: string, error: { message?: string } | undefined): boolean {
    if (!nonce || nonce !== watch.nonce) return false;
    if (error) {
      watch.nacked = { nonce, message: error.message ?? "" };
      this.events.nacked?.(typeUrl, nonce, error.message ?? "", watch.lastSent ?? []);
    } else {
      watch.acked = nonce;
      this.events.acked?.(typeUrl, nonce);
    }
    return true;
  }

  protected abstract respond(typeUrl: string, first: boolean, only?: ReadonlySet<string>): void;

  /**
   * Envoy warms a cluster it is sent again (a DestinationRule changed it, say) until it gets
   * that cluster's load assignment, and it does not ask for it: the name is already subscribed.
   * So after clusters go out, their load assignments go out again, changed or not (upstream
   * sends every load assignment on a full push for the same reason).
   */
  protected resendLoadAssignments(clusters: string[]): void {
    const eds = this.watches.get(TypeUrl.endpoint);
    const names = clusters.filter((name) => eds && (eds.wildcard || eds.names.has(name)));
    if (!eds || names.length === 0) return;
    for (const name of names) eds.held.delete(name);
    eds.sentVersion = undefined;
    this.respond(TypeUrl.endpoint, false, new Set(names));
  }

  protected newNonce(): string {
    return nextNonce();
  }
}

/** State of the world: every response carries all the resources of its type the proxy watches. */
export class SotwStream extends Stream<DiscoveryRequest, DiscoveryResponse> {
  handle(request: DiscoveryRequest): void {
    const typeUrl = request.typeUrl ?? "";
    const names = new Set(request.resourceNames ?? []);
    const wildcard = WILDCARD_TYPES.has(typeUrl) && (names.size === 0 || names.has("*"));
    names.delete("*");
    let watch = this.watches.get(typeUrl);
    if (!watch || !request.responseNonce) {
      // A new subscription, or the proxy starting over (a reconnect): answer in full.
      watch = { wildcard, names, held: new Map() };
      this.watches.set(typeUrl, watch);
      this.respond(typeUrl, true);
      return;
    }
    if (!this.ackOrNack(typeUrl, watch, request.responseNonce, request.errorDetail)) return; // stale
    if (request.errorDetail) return;
    const changed = wildcard !== watch.wildcard || names.size !== watch.names.size || [...names].some((n) => !watch.names.has(n));
    if (changed) {
      watch.wildcard = wildcard;
      watch.names = names;
      this.respond(typeUrl, true);
    }
  }

  protected respond(typeUrl: string, first: boolean): void {
    const watch = this.watches.get(typeUrl);
    if (!watch) return;
    const resources = this.resources(typeUrl, watch);
    const setVersion = resources.map((r) => `${r.name}@${r.version}`).join(",");
    if (!first && setVersion === watch.sentVersion) return;
    watch.sentVersion = setVersion;
    watch.held = new Map(resources.map((r) => [r.name, r.version]));
    const nonce = this.newNonce();
    watch.nonce = nonce;
    watch.lastSent = resources.map((r) => r.name);
    this.send({
      versionInfo: this.version(),
      resources: resources.map((r) => r.resource),
      typeUrl,
      nonce,
    } as DiscoveryResponse);
    this.events.sent?.(typeUrl, nonce, resources.length);
    if (typeUrl === TypeUrl.cluster) this.resendLoadAssignments(resources.map((r) => r.name));
  }
}

/** Incremental: responses carry only resources that changed, and the names of those removed. */
export class DeltaStream extends Stream<DeltaDiscoveryRequest, DeltaDiscoveryResponse> {
  handle(request: DeltaDiscoveryRequest): void {
    const typeUrl = request.typeUrl ?? "";
    const subscribe = request.resourceNamesSubscribe ?? [];
    const unsubscribe = request.resourceNamesUnsubscribe ?? [];
    let watch = this.watches.get(typeUrl);
    if (!watch) {
      // The first request of this type on this stream: a reconnecting proxy says what it holds.
      const names = new Set(subscribe);
      const wildcard = names.has("*") || (WILDCARD_TYPES.has(typeUrl) && names.size === 0);
      names.delete("*");
      const held = new Map(Object.entries(request.initialResourceVersions ?? {}));
      watch = { wildcard, names, held };
      this.watches.set(typeUrl, watch);
      this.respond(typeUrl, true);
      return;
    }
    this.ackOrNack(typeUrl, watch, request.responseNonce ?? "", request.errorDetail);
    let added = false;
    for (const name of subscribe) {
      if (name === "*") {
        added ||= !watch.wildcard;
        watch.wildcard = true;
      } else if (!watch.names.has(name)) {
        watch.names.add(name);
        added = true;
      }
    }
    for (const name of unsubscribe) {
      if (name === "*") watch.wildcard = false;
      watch.names.delete(name);
      watch.held.delete(name);
    }
    // A new name is answered even when the request also acknowledged (or was stale).
    if (added) this.respond(typeUrl, false);
  }

  protected respond(typeUrl: string, first: boolean, only?: ReadonlySet<string>): void {
    const watch = this.watches.get(typeUrl);
    if (!watch) return;
    const resources = only
      ? this.resources(typeUrl, watch, only).filter((r) => only.has(r.name))
      : this.resources(typeUrl, watch);
    const current = new Map(resources.map((r) => [r.name, r]));
    const changed = resources.filter((r) => watch.held.get(r.name) !== r.version);
    const inScope = (name: string) => watch.wildcard || watch.names.has(name);
    const removed = [...(only ?? watch.held.keys())].filter(
      (name) => watch.held.has(name) && !current.has(name) && inScope(name),
    );
    if (!first && changed.length === 0 && removed.length === 0) return;
    for (const r of changed) watch.held.set(r.name, r.version);
    for (const name of removed) watch.held.delete(name);
    const nonce = this.newNonce();
    watch.nonce = nonce;
    watch.lastSent = changed.map((r) => r.name);
    this.send({
      systemVersionInfo: this.version(),
      resources: changed.map((r) => ({ name: r.name, version: r.version, resource: r.resource, aliases: [] })),
      typeUrl,
      removedResources: removed,
      nonce,
    } as unknown as DeltaDiscoveryResponse);
    this.events.sent?.(typeUrl, nonce, changed.length);
    if (typeUrl === TypeUrl.cluster) this.resendLoadAssignments(changed.map((r) => r.name));
  }
}
