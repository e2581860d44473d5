// Writes an OCI image archive from layer tarballs, with no registry and no Docker daemon: the
// OCI image layout (oci-layout, index.json, blobs/sha256/…) plus Docker's manifest.json, so one
// file works with `ctr images import`, `docker load`, `kind load image-archive` and
// `skopeo copy oci-archive:…`. Layers are deterministic tarballs made by the caller.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, createReadStream, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createGunzip } from "node:zlib";

export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  user?: string;
  workingDir?: string;
  labels?: Record<string, string>;
}

/** A gzip-compressed layer tarball and the two digests an image names it by. */
export interface Layer {
  path: string;
  /** sha256 of the compressed blob: the manifest's layer digest. */
  digest: string;
  /** sha256 of the uncompressed tar: the config's diff_id. */
  diffId: string;
  size: number;
}

const MEDIA = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip",
};

function sha256(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

async function streamSha256(stream: NodeJS.ReadableStream): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

export async function describeLayer(path: string): Promise<Layer> {
  const digest = await streamSha256(createReadStream(path));
  const diffId = await streamSha256(createReadStream(path).pipe(createGunzip()));
  return { path, digest, diffId, size: statSync(path).size };
}

/** Makes a deterministic gzip layer of `dir` (sorted, mtime 0, numeric owners; `rootOwned` maps every file to 0:0). */
export function tarLayer(dir: string, out: string, rootOwned: boolean): void {
  const owner = rootOwned ? ["--owner=0", "--group=0"] : [];
  execFileSync(
    "bash",
    [
      "-o",
      "pipefail",
      "-c",
      'tar --sort=name --mtime=@0 --numeric-owner --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime "$@" -C "$DIR" -cf - . | gzip -n -6 > "$OUT"',
      "tar",
      ...owner,
    ],
    { env: { ...process.env, DIR: dir, OUT: out }, stdio: ["ignore", "ignore", "inherit"] },
  );
}

/**
 * The archive's JSON documents for an image named `name` (a full reference such as
 * docker.io/library/rigger:0.1.0). Pure: the unit test checks them.
 */
export function imageDocuments(name: string, layers: Omit<Layer, "path">[], config: ImageConfig) {
  const configJson = JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: {
      Entrypoint: config.entrypoint,
      Cmd: config.cmd,
      Env: config.env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      User: config.user,
      WorkingDir: config.workingDir,
      Labels: config.labels,
    },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: "1970-01-01T00:00:00Z", created_by: "rigger images/build.ts" })),
  });
  const configDigest = sha256(configJson);
  const manifestJson = JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    config: { mediaType: MEDIA.config, digest: configDigest, size: Buffer.byteLength(configJson) },
    layers: layers.map((l) => ({ mediaType: MEDIA.layer, digest: l.digest, size: l.size })),
  });
  const manifestDigest = sha256(manifestJson);
  const tag = name.slice(name.lastIndexOf(":") + 1);
  const indexJson = JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.index,
    manifests: [
      {
        mediaType: MEDIA.manifest,
        digest: manifestDigest,
        size: Buffer.byteLength(manifestJson),
        annotations: { "io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag },
      },
    ],
  });
  const blob = (digest: string) => `blobs/sha256/${digest.slice("sha256:".length)}`;
  const dockerManifest = JSON.stringify([
    { Config: blob(configDigest), RepoTags: [dockerTag(name)], Layers: layers.map((l) => blob(l.digest)) },
  ]);
  return { configJson, configDigest, manifestJson, manifestDigest, indexJson, dockerManifest, blob };
}

/** docker load names images without the docker.io/library/ prefix. */
export function dockerTag(name: string): string {
  return name.replace(/^docker\.io\/library\//, "").replace(/^docker\.io\//, "");
}

/** Writes the archive `out` (a tar of the OCI layout plus manifest.json). */
export async function writeImageArchive(name: string, layerPaths: string[], config: ImageConfig, out: string): Promise<string> {
  const layers = await Promise.all(layerPaths.map(describeLayer));
  const docs = imageDocuments(name, layers, config);
  const dir = `${out}.d`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "blobs", "sha256"), { recursive: true });
  for (const layer of layers) copyFileSync(layer.path, join(dir, docs.blob(layer.digest)));
  writeFileSync(join(dir, docs.blob(docs.configDigest)), docs.configJson);
  writeFileSync(join(dir, docs.blob(docs.manifestDigest)), docs.manifestJson);
  writeFileSync(join(dir, "index.json"), docs.indexJson);
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(join(dir, "manifest.json"), docs.dockerManifest);
  execFileSync("tar", ["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner", "-C", dir, "-cf", out, "."]);
  rmSync(dir, { recursive: true, force: true });
  return docs.manifestDigest;
}
