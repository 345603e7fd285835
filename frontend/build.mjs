// Builds the browser code into ../dispatchflow/web/static/dist/ (committed).
// Deterministic: same lockfile, same bytes (CI rebuilds and compares).
import { build } from "esbuild";
import { copyFileSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";

const out = "../dispatchflow/web/static/dist";
mkdirSync(out, { recursive: true });

await build({
  entryPoints: {
    "api-docs": "src/api-docs.js",
    "api-docs-style": "src/api-docs.css",
    "portal-live": "src/portal-live.js",
  },
  bundle: true,
  format: "esm",
  minify: true,
  target: ["es2020"],
  legalComments: "none", // collected into THIRD-PARTY-LICENSES.txt below
  outdir: out,
  logLevel: "warning",
});

copyFileSync("node_modules/swagger-ui-dist/favicon-32x32.png", `${out}/api-docs-icon.png`);

// Licence texts of everything bundled: the package's own licence and notice, and
// the licence comments of the libraries inside its prebuilt bundle.
const pkg = (name) => JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8"));
const dist = pkg("swagger-ui-dist");
const parts = [
  "Third-party software in this directory (built from frontend/ by `npm run build`).",
  "",
  `== ${dist.name} ${dist.version} (${dist.license}) — api-docs.js, api-docs-style.css, api-docs-icon.png`,
  readFileSync("node_modules/swagger-ui-dist/LICENSE", "utf8").trim(),
  "",
  "-- NOTICE",
  readFileSync("node_modules/swagger-ui-dist/NOTICE", "utf8").trim(),
  "",
  "-- libraries bundled inside swagger-ui-dist",
  readFileSync("node_modules/swagger-ui-dist/swagger-ui-es-bundle.js.LICENSE.txt", "utf8").trim(),
  "",
];
for (const name of ["htmx.org", "htmx-ext-sse"]) {
  const p = pkg(name);
  parts.push(`== ${p.name} ${p.version} (${p.license ?? "0BSD, see its LICENSE"}) — portal-live.js`,
             readFileSync(`node_modules/${name}/LICENSE`, "utf8").trim(), "");
}
writeFileSync(`${out}/THIRD-PARTY-LICENSES.txt`, parts.join("\n"));
