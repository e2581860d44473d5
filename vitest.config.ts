import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    reporters: ["default", "./vitest.summary-reporter.ts"],
    projects: [
      {
        test: {
          name: "unit",
          include: [
            "{analysis,api,cmd,controllers,istiod,kube,manifests,webhooks,crds,pki,images,xds,e2e/cluster}/**/*.test.ts",
            "*.test.ts",
          ],
          exclude: ["e2e/*.test.ts", "node_modules/**"],
          // The CLI tests spawn `node`; on a loaded CI machine one spawn took over a second.
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["e2e/*.test.ts"],
          globalSetup: ["e2e/support/global-setup.ts"],
          // One shared cluster: files run one at a time so they do not fight over it.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
