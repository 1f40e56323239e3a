#!/usr/bin/env bash
# Installs kasa-monitor as a systemd service, from this checkout:
#
#   sudo scripts/install.sh              build, install to /opt/kasa-monitor, enable and start
#   scripts/install.sh --dry-run         print what it would do, change nothing
#
# Also puts the `kasa-monitor` command into /usr/local/bin (a wrapper running the installed build).
# Safe to run again (an upgrade): the program under the prefix is replaced, an existing
# /etc/kasa-monitor/config.yaml is never overwritten, and a running service is restarted.
set -euo pipefail

MIN_NODE_MAJOR=20
UNIT_NAME=kasa-monitor.service
PREFIX=/opt/kasa-monitor
CONFIG_DIR=/etc/kasa-monitor
UNIT_DIR=/etc/systemd/system
BIN_DIR=/usr/local/bin
NODE=
DRY_RUN=0
BUILD=1
START=1
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  cat <<EOF
Usage: sudo $0 [--prefix DIR] [--node PATH] [--skip-build] [--no-start] [--dry-run]

Builds kasa-monitor from this checkout, installs it under a prefix, creates
$CONFIG_DIR/config.yaml from the example (never overwriting an existing one), installs
the systemd unit, runs daemon-reload, then enables and starts (or restarts) the service.

  --prefix DIR     where the program goes (default $PREFIX)
  --node PATH      the Node.js binary the service runs (default: node on PATH; $MIN_NODE_MAJOR or newer)
  --skip-build     use the existing build (dist/ and node_modules/) as it is
  --no-start       install and enable, but do not start or restart
  -n, --dry-run    print what would be done; change nothing
  --bin-dir DIR    where the kasa-monitor command goes (default $BIN_DIR, on root's PATH)
  --config-dir DIR, --unit-dir DIR
                   other places for config.yaml and the unit (packaging, tests)
  -h, --help       this text
EOF
}

say() { printf 'kasa-monitor install: %s\n' "$*"; }
die() {
  printf 'kasa-monitor install: error: %s\n' "$*" >&2
  exit 1
}
# Runs a command, or with --dry-run prints it.
run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '  would run:'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

while [ $# -gt 0 ]; do
  case "$1" in
  --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
  --prefix=*) PREFIX=${1#*=}; shift ;;
  --node) NODE=${2:?--node needs a path}; shift 2 ;;
  --node=*) NODE=${1#*=}; shift ;;
  --config-dir) CONFIG_DIR=${2:?--config-dir needs a directory}; shift 2 ;;
  --config-dir=*) CONFIG_DIR=${1#*=}; shift ;;
  --unit-dir) UNIT_DIR=${2:?--unit-dir needs a directory}; shift 2 ;;
  --unit-dir=*) UNIT_DIR=${1#*=}; shift ;;
  --bin-dir) BIN_DIR=${2:?--bin-dir needs a directory}; shift 2 ;;
  --bin-dir=*) BIN_DIR=${1#*=}; shift ;;
  --skip-build) BUILD=0; shift ;;
  --no-start) START=0; shift ;;
  -n | --dry-run) DRY_RUN=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; die "unknown option: $1" ;;
  esac
done

if [ "$DRY_RUN" = 1 ]; then say "dry run: nothing is changed"; fi

# --- Checks -----------------------------------------------------------------------------------------
case "$PREFIX" in
/ | /usr | /usr/local | /opt | /etc | /var | /home | /root) die "--prefix $PREFIX would replace a system directory; use a directory of its own such as /opt/kasa-monitor" ;;
esac
[[ "$PREFIX" =~ ^/[A-Za-z0-9._/-]+$ ]] || die "--prefix must be an absolute path of letters, digits and . _ - / (it goes into ExecStart=): $PREFIX"
PREFIX=${PREFIX%/}
if [ -e "$PREFIX" ] && ! grep -qs '"name": "kasa-monitor"' "$PREFIX/package.json"; then
  die "$PREFIX exists and is not a kasa-monitor installation; refusing to replace it"
fi

if [ -z "$NODE" ]; then
  NODE=$(command -v node || true)
  [ -n "$NODE" ] || die "Node.js was not found on PATH. kasa-monitor needs Node.js $MIN_NODE_MAJOR or newer:
  install it from your distribution (Debian 13: apt install nodejs) or from https://nodejs.org/en/download
  (e.g. the NodeSource packages for Debian and Raspberry Pi OS), then run this again
  (or pass --node /path/to/node)."
fi
# The service cannot read home directories (ProtectHome=yes): nvm and the like will not do.
refuse_home() {
  case "$1" in
  /home/* | /root/* | /run/user/*)
    die "Node.js at $1 lives in a home directory, which the service cannot read (ProtectHome=yes).
  Install Node.js system-wide (/usr/bin or /usr/local/bin), or pass --node PATH."
    ;;
  esac
}
refuse_home "$NODE"
[ -x "$NODE" ] || die "$NODE is not an executable Node.js binary"
NODE=$(readlink -f "$NODE")
refuse_home "$NODE"
NODE_VERSION=$("$NODE" --version 2>/dev/null) || die "$NODE --version failed: is it a working Node.js?"
NODE_MAJOR=${NODE_VERSION#v}
NODE_MAJOR=${NODE_MAJOR%%.*}
if ! [[ "$NODE_MAJOR" =~ ^[0-9]+$ ]] || [ "$NODE_MAJOR" -lt "$MIN_NODE_MAJOR" ]; then
  die "Node.js $NODE_VERSION ($NODE) is too old: kasa-monitor needs Node.js $MIN_NODE_MAJOR or newer.
  Upgrade it (https://nodejs.org/en/download, or the NodeSource packages), or pass --node PATH to a newer one."
fi
[[ "$NODE" =~ ^/[A-Za-z0-9._/+-]+$ ]] || die "the path of Node.js must not contain spaces or special characters (it goes into ExecStart=): $NODE"
say "Node.js $NODE_VERSION at $NODE"

if [ "$DRY_RUN" = 0 ]; then
  [ "$(id -u)" = 0 ] || die "run as root (sudo $0 ...), or see what would happen with --dry-run"
  command -v systemctl >/dev/null || die "systemctl not found: kasa-monitor installs as a systemd service"
fi

# --- Build ------------------------------------------------------------------------------------------
# As the owner of the checkout when run through sudo, so no root-owned files land in it.
as_owner() {
  if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && command -v sudo >/dev/null; then
    run sudo -u "$SUDO_USER" env "PATH=$(dirname "$NODE"):$PATH" "$@"
  else
    run env "PATH=$(dirname "$NODE"):$PATH" "$@"
  fi
}
if [ "$BUILD" = 1 ]; then
  NPM=$(PATH="$(dirname "$NODE"):$PATH" command -v npm || true)
  [ -n "$NPM" ] || die "npm was not found (it comes with Node.js); it is needed to build. Or build elsewhere and pass --skip-build."
  say "building in $SRC"
  if [ ! -d "$SRC/node_modules" ]; then
    as_owner "$NPM" --prefix "$SRC" ci --no-audit --no-fund
  fi
  as_owner "$NPM" --prefix "$SRC" run build --silent
elif [ ! -f "$SRC/dist/src/cli/bin.js" ] || [ ! -d "$SRC/node_modules" ]; then
  die "--skip-build, but $SRC has no build (dist/src/cli/bin.js and node_modules/): run npm ci && npm run build first"
fi

# --- Program ----------------------------------------------------------------------------------------
# Staged next to the prefix, then swapped in, so a failed copy never leaves half an installation.
STAGE="$PREFIX.new"
say "installing the program into $PREFIX"
run rm -rf "$STAGE"
run mkdir -p "$STAGE/dist" "$STAGE/node_modules"
run cp -a "$SRC/package.json" "$SRC/package-lock.json" "$SRC/config" "$SRC/systemd" "$STAGE/"
for doc in README.md README-systemd.md LICENSE; do
  if [ -f "$SRC/$doc" ]; then run cp -a "$SRC/$doc" "$STAGE/"; fi
done
if [ "$DRY_RUN" = 1 ] && [ ! -d "$SRC/dist/src" ]; then
  printf '  would copy: %q (after the build)\n' "$SRC/dist/src"
else
  run cp -a "$SRC/dist/src" "$STAGE/dist/"
  # The dashboard: compiled frontend modules and its pages.
  run cp -a "$SRC/dist/web" "$STAGE/dist/"
  run mkdir -p "$STAGE/web"
  run cp -a "$SRC/web/static" "$STAGE/web/"
fi
# Only what the program needs at run time: package-lock.json marks development-only packages.
RUNTIME_PACKAGES=$("$NODE" -e '
  const lock = require(process.argv[1]);
  for (const [path, entry] of Object.entries(lock.packages ?? {})) {
    if (/^node_modules\/(@[^/]+\/)?[^/]+$/.test(path) && entry.dev !== true) console.log(path.slice(13));
  }' "$SRC/package-lock.json")
count=0
for package in $RUNTIME_PACKAGES; do
  [ -d "$SRC/node_modules/$package" ] || continue
  if [ "$DRY_RUN" = 0 ]; then
    mkdir -p "$(dirname "$STAGE/node_modules/$package")"
    cp -a "$SRC/node_modules/$package" "$STAGE/node_modules/$package"
  fi
  count=$((count + 1))
done
if [ "$DRY_RUN" = 1 ]; then
  printf '  would copy: %s run-time packages from %q (development tools left out)\n' "$count" "$SRC/node_modules"
fi
run chown -R root:root "$STAGE"
run chmod -R u=rwX,go=rX "$STAGE"
if [ -e "$PREFIX" ]; then
  run rm -rf "$PREFIX.old"
  run mv "$PREFIX" "$PREFIX.old"
fi
run mv "$STAGE" "$PREFIX"
run rm -rf "$PREFIX.old"

# --- Configuration ----------------------------------------------------------------------------------
run install -d -m 0755 "$CONFIG_DIR"
run install -m 0644 "$SRC/config/kasa-monitor.schema.json" "$CONFIG_DIR/kasa-monitor.schema.json"
if [ -e "$CONFIG_DIR/config.yaml" ]; then
  say "keeping the existing $CONFIG_DIR/config.yaml (never overwritten); every key is documented in $PREFIX/config/kasa-monitor.example.yaml"
else
  say "creating $CONFIG_DIR/config.yaml from the example (every key at its default)"
  run install -m 0644 "$SRC/config/kasa-monitor.example.yaml" "$CONFIG_DIR/config.yaml"
fi
if [ "$DRY_RUN" = 0 ]; then
  "$NODE" "$PREFIX/dist/src/cli/bin.js" check-config -c "$CONFIG_DIR/config.yaml" >/dev/null ||
    die "$CONFIG_DIR/config.yaml has problems (listed above); fix them, then run this again"
fi

# --- Command ----------------------------------------------------------------------------------------
# A tiny wrapper on PATH that runs the installed build with the service's Node, so `kasa-monitor
# export` and friends read what the service reads. Marked, so uninstall.sh removes only its own.
COMMAND="$BIN_DIR/kasa-monitor"
COMMAND_MARK='# installed by kasa-monitor scripts/install.sh'
COMMAND_TEXT="#!/bin/sh
$COMMAND_MARK (removed by scripts/uninstall.sh)
exec $NODE $PREFIX/dist/src/cli/bin.js \"\$@\""
if [ -e "$COMMAND" ] && ! grep -qsF "$COMMAND_MARK" "$COMMAND"; then
  say "leaving $COMMAND alone (not made by this installer: an npm link or global install?); the installed command is: $NODE $PREFIX/dist/src/cli/bin.js"
else
  say "installing the command $COMMAND"
  run install -d -m 0755 "$BIN_DIR"
  if [ "$DRY_RUN" = 0 ]; then
    printf '%s\n' "$COMMAND_TEXT" >"$COMMAND.tmp"
    chmod 0755 "$COMMAND.tmp"
    mv "$COMMAND.tmp" "$COMMAND"
  fi
fi

# --- Unit -------------------------------------------------------------------------------------------
UNIT_TEXT=$(sed -e "s#^ExecStart=.*#ExecStart=$NODE $PREFIX/dist/src/cli/bin.js run#" \
  -e "s#file:///opt/kasa-monitor/#file://$PREFIX/#" "$SRC/systemd/$UNIT_NAME")
if [ -f "$UNIT_DIR/$UNIT_NAME" ] && [ "$(cat "$UNIT_DIR/$UNIT_NAME")" = "$UNIT_TEXT" ]; then
  say "the unit $UNIT_DIR/$UNIT_NAME is up to date"
else
  say "installing the unit $UNIT_DIR/$UNIT_NAME (ExecStart=$NODE $PREFIX/dist/src/cli/bin.js run)"
  run install -d -m 0755 "$UNIT_DIR"
  if [ "$DRY_RUN" = 0 ]; then
    printf '%s\n' "$UNIT_TEXT" >"$UNIT_DIR/$UNIT_NAME.tmp"
    chmod 0644 "$UNIT_DIR/$UNIT_NAME.tmp"
    mv "$UNIT_DIR/$UNIT_NAME.tmp" "$UNIT_DIR/$UNIT_NAME"
  fi
fi
run systemctl daemon-reload
run systemctl enable "$UNIT_NAME"

# --- Start ------------------------------------------------------------------------------------------
if [ "$START" = 0 ]; then
  say "installed and enabled; start it with: systemctl start kasa-monitor"
elif [ "$DRY_RUN" = 1 ]; then
  run systemctl restart "$UNIT_NAME"
  say "(restart when it is running, else start)"
elif systemctl is-active --quiet "$UNIT_NAME"; then
  say "restarting the running service with the new program"
  systemctl restart "$UNIT_NAME" || die "the service did not restart; see: journalctl -u kasa-monitor -p warning -n 50"
else
  say "starting the service"
  systemctl start "$UNIT_NAME" || die "the service did not start; see: journalctl -u kasa-monitor -p warning -n 50"
fi
if [ "$DRY_RUN" = 0 ] && [ "$START" = 1 ]; then
  systemctl --no-pager --lines=0 status "$UNIT_NAME" || true
  say "done. Logs: journalctl -u kasa-monitor -f; problems only: journalctl -u kasa-monitor -p warning"
  say "the command: kasa-monitor status, kasa-monitor export, kasa-monitor backup (as root; they read $CONFIG_DIR/config.yaml)"
  say "edit $CONFIG_DIR/config.yaml, then apply it with: systemctl reload kasa-monitor"
fi
