import { describe, expect, test } from "vitest";
import { FileAccessLog } from "../envoy/third_party/envoy/extensions/access_loggers/file/v3/file.ts";
import { fileAccessLog, ISTIO_JSON_FORMAT, ISTIO_TEXT_FORMAT } from "./access-log.ts";
import { DEFAULT_MESH, meshSettings } from "./context.ts";

const decoded = (mesh: Parameters<typeof meshSettings>[0], listener = false) => {
  const log = fileAccessLog({ ...DEFAULT_MESH, ...meshSettings(mesh) }, listener);
  return log && { ...log, config: FileAccessLog.decode(log.typedConfig?.value ?? new Uint8Array()) };
};

describe("access logs from the mesh config", () => {
  test("none without accessLogFile", () => {
    expect(decoded({})).toBeUndefined();
  });

  test("Istio's text format by default; a user's format gets its newline; the listener's logs only NR", () => {
    expect(decoded({ accessLogFile: "/dev/stdout" })?.config.logFormat?.textFormatSource?.inlineString).toBe(ISTIO_TEXT_FORMAT);
    expect(
      decoded({ accessLogFile: "/dev/stdout", accessLogFormat: "%RESPONSE_CODE%" })?.config.logFormat?.textFormatSource,
    ).toMatchObject({ inlineString: "%RESPONSE_CODE%\n" });
    expect(decoded({ accessLogFile: "/dev/stdout" }, true)?.filter).toEqual({ responseFlagFilter: { flags: ["NR"] } });
  });

  test("JSON: Istio's fields, or the user's object; a format that is not a JSON object falls back to Istio's", () => {
    expect(decoded({ accessLogFile: "/dev/stdout", accessLogEncoding: "JSON" })?.config.logFormat?.jsonFormat).toEqual(
      ISTIO_JSON_FORMAT,
    );
    expect(
      decoded({ accessLogFile: "/dev/stdout", accessLogEncoding: "JSON", accessLogFormat: '{"code":"%RESPONSE_CODE%"}' })?.config
        .logFormat?.jsonFormat,
    ).toEqual({ code: "%RESPONSE_CODE%" });
    expect(
      decoded({ accessLogFile: "/dev/stdout", accessLogEncoding: "JSON", accessLogFormat: "not json" })?.config.logFormat
        ?.jsonFormat,
    ).toEqual(ISTIO_JSON_FORMAT);
  });
});
