// Prints one plain closing line, `tests: N passed, N failed, N skipped`, after vitest's
// own summary, so CI logs can be read the same way whatever runner produced them.
import type { Reporter, TestModule } from "vitest/node";

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    const count = { passed: 0, failed: 0, skipped: 0 };
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") count.passed++;
        else if (state === "failed") count.failed++;
        else if (state === "skipped") count.skipped++;
      }
      // A file that failed to load has no tests to count; count it as a failure.
      if (module.state() === "failed" && !module.children.size) count.failed++;
    }
    count.failed += unhandledErrors.length;
    process.stdout.write(`\ntests: ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`);
  }
}
