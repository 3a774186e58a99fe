#!/usr/bin/env bash
# Regenerate the vendored browser files under src/chinwag/server/static/ from pinned
# npm versions. Run it after changing a version below; commit what it writes. Nothing
# here runs at install or start-up: the files ship inside the Python package.
set -euo pipefail
cd "$(dirname "$0")/.."
STATIC=src/chinwag/server/static

MARKED=18.2.1            # markdown -> HTML (then sanitised)
DOMPURIFY=3.4.18         # the HTML sanitiser
SWAGGER_UI=5.35.0        # /docs
REDOC=2.5.4              # /redoc

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fetch() {  # fetch NAME VERSION: unpack the package into $work/NAME
  (cd "$work" && npm pack --silent "$1@$2" >/dev/null && mkdir -p "$1" &&
   tar xzf "$1-$2.tgz" -C "$1" --strip-components=1)
}
fetch marked "$MARKED"
fetch dompurify "$DOMPURIFY"
fetch swagger-ui-dist "$SWAGGER_UI"
fetch redoc "$REDOC"

mkdir -p "$STATIC/vendor" "$STATIC/docs"
cp "$work/marked/lib/marked.esm.js" "$STATIC/vendor/marked.esm.js"
cp "$work/dompurify/dist/purify.es.mjs" "$STATIC/vendor/purify.es.js"
cp "$work/swagger-ui-dist/swagger-ui-bundle.js" "$work/swagger-ui-dist/swagger-ui.css" \
   "$work/swagger-ui-dist/favicon-32x32.png" "$STATIC/docs/"
cp "$work/redoc/bundles/redoc.standalone.js" "$STATIC/docs/"
# Source-map comments point at files we do not ship.
sed -i '/^\/\/# sourceMappingURL=/d' "$STATIC/vendor/"*.js \
  "$STATIC/docs/"*.js
sed -i 's#/\*\# sourceMappingURL=[^*]*\*/##' "$STATIC/docs/swagger-ui.css"
# ReDoc fetches its "powered by" logo from its CDN: nothing loads from another host.
sed -i 's#https://cdn.redoc.ly/redoc/logo-mini.svg#data:,#' "$STATIC/docs/redoc.standalone.js"
for pkg in marked dompurify swagger-ui-dist redoc; do
  printf '%s %s %s\n' "$pkg" "$(node -p "require('$work/$pkg/package.json').version")" \
    "$(node -p "require('$work/$pkg/package.json').license")"
done > "$STATIC/vendor/VERSIONS"
cat "$STATIC/vendor/VERSIONS"
