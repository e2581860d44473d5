import { createHash } from "node:crypto";
import { expect, test } from "vitest";
import { dockerTag, imageDocuments } from "./oci.ts";

const sha = (s: string) => `sha256:${createHash("sha256").update(s).digest("hex")}`;
const layer = { digest: `sha256:${"a".repeat(64)}`, diffId: `sha256:${"b".repeat(64)}`, size: 123 };

test("the manifest names the config and layers by digest, and the index names the manifest", () => {
  const docs = imageDocuments("localhost/istio/proxyv2:1.27.9", [layer], {
    entrypoint: ["/usr/local/bin/pilot-agent"],
    user: "1337:1337",
  });
  const config = JSON.parse(docs.configJson);
  expect(config.rootfs.diff_ids).toEqual([layer.diffId]);
  expect(config.config.Entrypoint).toEqual(["/usr/local/bin/pilot-agent"]);
  expect(config.config.User).toBe("1337:1337");
  expect(docs.configDigest).toBe(sha(docs.configJson));

  const manifest = JSON.parse(docs.manifestJson);
  expect(manifest.config).toEqual({
    mediaType: "application/vnd.oci.image.config.v1+json",
    digest: docs.configDigest,
    size: Buffer.byteLength(docs.configJson),
  });
  expect(manifest.layers).toEqual([
    { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layer.digest, size: 123 },
  ]);
  expect(docs.manifestDigest).toBe(sha(docs.manifestJson));

  const index = JSON.parse(docs.indexJson);
  expect(index.manifests[0].digest).toBe(docs.manifestDigest);
  expect(index.manifests[0].annotations["io.containerd.image.name"]).toBe("localhost/istio/proxyv2:1.27.9");
  expect(index.manifests[0].annotations["org.opencontainers.image.ref.name"]).toBe("1.27.9");

  // docker load reads manifest.json: the same blobs, the short tag.
  const [docker] = JSON.parse(docs.dockerManifest);
  expect(docker.RepoTags).toEqual(["localhost/istio/proxyv2:1.27.9"]);
  expect(docker.Config).toBe(`blobs/sha256/${docs.configDigest.slice(7)}`);
  expect(docker.Layers).toEqual([`blobs/sha256/${"a".repeat(64)}`]);
});

test("the same inputs give the same digests (archives are reproducible)", () => {
  const a = imageDocuments("docker.io/library/rigger:0.1.0", [layer], { entrypoint: ["/x"] });
  const b = imageDocuments("docker.io/library/rigger:0.1.0", [layer], { entrypoint: ["/x"] });
  expect(a.manifestDigest).toBe(b.manifestDigest);
  expect(imageDocuments("docker.io/library/rigger:0.1.0", [layer], { entrypoint: ["/y"] }).manifestDigest).not.toBe(
    a.manifestDigest,
  );
});

test("docker tags drop docker.io/library/ as docker load shows them", () => {
  expect(dockerTag("docker.io/library/rigger:0.1.0")).toBe("rigger:0.1.0");
  expect(dockerTag("docker.io/istio/proxyv2:1.27.9")).toBe("istio/proxyv2:1.27.9");
  expect(dockerTag("localhost/pause:1.37.2")).toBe("localhost/pause:1.37.2");
});
