import { describe, expect, test } from "vitest";
import { serviceEntryServices } from "./service-entry.ts";

const entry = (name: string, created: string, spec: object) => ({
  metadata: { name, namespace: "shop", creationTimestamp: created },
  spec,
});

describe("serviceEntryServices", () => {
  test("one service per host; the oldest entry keeps a host two entries claim", () => {
    const { services } = serviceEntryServices(
      [
        entry("new", "2026-02-01T00:00:00Z", { hosts: ["a.test"], ports: [{ number: 80, name: "http" }], resolution: "DNS" }),
        entry("old", "2026-01-01T00:00:00Z", {
          hosts: ["a.test", "b.test"],
          addresses: ["240.0.0.1"],
          ports: [{ number: 80, name: "http", protocol: "HTTP" }],
          location: "MESH_INTERNAL",
          resolution: "STATIC",
        }),
      ],
      [],
    );
    expect(services.map((s) => [s.hostname, s.resolution, s.clusterIp, s.meshExternal])).toEqual([
      ["a.test", "STATIC", "240.0.0.1", false],
      ["b.test", "STATIC", "240.0.0.1", false],
    ]);
    expect(services[0]?.ports).toEqual([{ name: "http", port: 80, protocol: "HTTP" }]);
  });

  test("endpoint ports: the endpoint's own for the port name, else targetPort, else the number", () => {
    const { endpoints } = serviceEntryServices(
      [
        entry("e", "2026-01-01T00:00:00Z", {
          hosts: ["e.test"],
          ports: [
            { number: 80, name: "http", protocol: "HTTP", targetPort: 8080 },
            { number: 90, name: "tcp", protocol: "TCP" },
          ],
          resolution: "STATIC",
          endpoints: [{ address: "10.0.0.1", ports: { tcp: 9999 } }],
        }),
      ],
      [],
    );
    expect(endpoints.get("e.test")?.map((e) => [e.servicePortName, e.port, e.health])).toEqual([
      ["http", 8080, "UNKNOWN"],
      ["tcp", 9999, "UNKNOWN"],
    ]);
  });

  test("DNS without endpoints: the host itself; a workloadSelector: the matching WorkloadEntries of the namespace", () => {
    const { endpoints } = serviceEntryServices(
      [
        entry("dns", "2026-01-01T00:00:00Z", {
          hosts: ["d.test"],
          ports: [{ number: 443, name: "tls", protocol: "TLS" }],
          resolution: "DNS",
        }),
        entry("vm", "2026-01-01T00:00:00Z", {
          hosts: ["vm.test"],
          ports: [{ number: 80, name: "http", protocol: "HTTP" }],
          resolution: "STATIC",
          workloadSelector: { labels: { app: "vm" } },
        }),
      ],
      [
        {
          metadata: { name: "vm-1", namespace: "shop" },
          spec: { address: "10.1.0.1", labels: { app: "vm" }, serviceAccount: "vm", locality: "r/z" },
        },
        { metadata: { name: "vm-2", namespace: "other" }, spec: { address: "10.1.0.2", labels: { app: "vm" } } },
        { metadata: { name: "db-1", namespace: "shop" }, spec: { address: "10.1.0.3", labels: { app: "db" } } },
      ],
    );
    expect(endpoints.get("d.test")?.map((e) => `${e.address}:${e.port}`)).toEqual(["d.test:443"]);
    const vm = endpoints.get("vm.test") ?? [];
    expect(vm.map((e) => [e.address, e.podName, e.serviceAccount, e.locality.region, e.locality.zone])).toEqual([
      ["10.1.0.1", "vm-1", "vm", "r", "z"],
    ]);
  });
});
