#!/usr/bin/env bash
# Installs what the RCA suite runs on, on Debian bookworm as root: the third-party servers from
# Debian's packages (without letting apt start them as services: the suite starts its own, on
# loopback) and the shop's JavaScript packages from the committed lockfile. Idempotent: a second
# run only checks.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

[ "$(id -u)" = 0 ] || { echo "rca-deps: needs root (apt-get, and the suite loads eBPF programs)" >&2; exit 1; }

# command:package pairs; every command the suite runs that a minimal Debian may lack.
needed=(
  /usr/lib/postgresql/15/bin/postgres:postgresql-15
  /usr/lib/postgresql/15/bin/initdb:postgresql-15
  redis-server:redis-server
  redis-cli:redis-tools
  nginx:nginx
  nft:nftables
  ip:iproute2
  setpriv:util-linux
  losetup:mount
  mkfs.ext4:e2fsprogs
  kill:procps
  sysctl:procps
  node:nodejs
  npm:npm
)
missing=()
for pair in "${needed[@]}"; do
  cmd="${pair%%:*}" pkg="${pair##*:}"
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "$cmd" ]; then
    [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "rca-deps: installing ${missing[*]}"
  # policy-rc.d answering 101 tells invoke-rc.d not to start the packages' services.
  created_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  trap '[ -z "$created_policy" ] || rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The shop's npm packages, exactly as locked. npm keeps its download cache outside the repository
# (~/.npm); the installed tree is reused while the lockfile is unchanged.
js="$here/js"
stamp="$js/node_modules/.rca-lock.sha256"
want="$(sha256sum "$js/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "rca-deps: npm ci in $js"
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi
