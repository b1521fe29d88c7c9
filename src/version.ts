import pkg from "../package.json" with { type: "json" };

declare const PM_BUILD_COMMIT: string | undefined;

export const VERSION: string = pkg.version;
/** The git commit the binary was built from (`bun run build` defines it); "source" when run from source. */
export const BUILD_COMMIT: string = typeof PM_BUILD_COMMIT === "string" ? PM_BUILD_COMMIT : "source";
/** `--version`: the version, the commit and the Bun runtime, for bug reports and upgrades. */
export const VERSION_LINE = `${VERSION} (commit ${BUILD_COMMIT}, bun ${Bun.version})`;
