#!/usr/bin/env bash
# Fetches the book's third-party JavaScript with npm (exact versions from package-lock.json) and
# copies only the files the built HTML loads into _static/vendor/, so the book renders with no
# network access. _static/vendor/ and node_modules/ are git-ignored: third-party JS is never
# committed. `make static` runs this when package.json, package-lock.json or this script change.
#
#   _static/vendor/require/require.js           RequireJS (the AMD loader embed-amd.js needs)
#   _static/vendor/html-manager/embed-amd.js    @jupyter-widgets/html-manager: renders the widget
#                                               views saved in executed notebooks (ipywidgets 8)
#   _static/vendor/html-manager/*.woff2 ...     Font Awesome fonts its CSS references; found via
#                                               _static/jupyter-widgets-offline.js
#   _static/vendor/mathjax/tex-mml-chtml.js     MathJax 3 plus the files it lazy-loads: TeX
#                                               extensions, CHTML woff2 fonts, menu, a11y, SRE
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v npm >/dev/null || { echo "vendor_static: npm not found (need Node.js >= 18)" >&2; exit 1; }

# --ignore-scripts: nothing here needs an install script (Font Awesome's only prints attribution).
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null

nm=node_modules
out=_static/vendor
tmp=$(mktemp -d "_static/.vendor.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# RequireJS
mkdir -p "$tmp/require"
cp "$nm/requirejs/require.js" "$tmp/require/"

# ipywidgets HTML manager: the self-contained AMD bundle plus the font files its CSS points at.
hm="$nm/@jupyter-widgets/html-manager/dist"
mkdir -p "$tmp/html-manager"
cp "$hm/embed-amd.js" "$tmp/html-manager/"
find "$hm" -maxdepth 1 -type f \( -name '*.woff2' -o -name '*.woff' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
  -exec cp {} "$tmp/html-manager/" \;
# The bundle ends with sourceMappingURL comments for maps we don't ship; drop them (avoids 404s
# when someone opens the browser's dev tools).
sed -i -E 's#^//\# sourceMappingURL=.*$##' "$tmp/html-manager/embed-amd.js"

# MathJax 3: the combined component Sphinx loads plus what it fetches on demand.
mj="$nm/mathjax/es5"
mkdir -p "$tmp/mathjax/output/chtml/fonts"
cp "$nm/mathjax/LICENSE" "$mj/tex-mml-chtml.js" "$tmp/mathjax/"
cp -r "$mj/input" "$mj/ui" "$mj/a11y" "$mj/sre" "$tmp/mathjax/"
cp -r "$mj/output/chtml/fonts/woff-v2" "$tmp/mathjax/output/chtml/fonts/"

# Versions, for the record (and so a version bump is visible in the built site).
node -e '
  const l = require("./package-lock.json").packages;
  for (const p of ["@jupyter-widgets/html-manager", "mathjax", "requirejs"])
    console.log(p + " " + l["node_modules/" + p].version + " " + (l["node_modules/" + p].license || ""));
' > "$tmp/VERSIONS.txt"

rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
touch "$out/.complete"
echo "vendor_static: $(du -sh "$out" | cut -f1) in $out ($(tr '\n' ';' < "$out/VERSIONS.txt"))"
