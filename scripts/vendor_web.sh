#!/bin/sh
# Refreshes web/vendor/ from the npm registry (see web/vendor/README.md).
# Run by hand when updating; the build uses the files in the tree.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent qrcode-generator@2.0.4 >/dev/null
tar xzf qrcode-generator-2.0.4.tgz
cp package/dist/qrcode.js "$root/web/vendor/qrcode.js"
echo "web/vendor/qrcode.js: qrcode-generator 2.0.4"
