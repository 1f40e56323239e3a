#!/usr/bin/env bash
# Removes the kasa-monitor service and program installed by scripts/install.sh:
#
#   sudo scripts/uninstall.sh            stop, disable, remove the unit, /opt/kasa-monitor and the command
#   sudo scripts/uninstall.sh --purge    also remove the configuration and the database
#   scripts/uninstall.sh --dry-run       print what it would do, change nothing
#
# Without --purge, /etc/kasa-monitor (config) and /var/lib/kasa-monitor (readings) are kept.
set -euo pipefail

UNIT_NAME=kasa-monitor.service
PREFIX=/opt/kasa-monitor
CONFIG_DIR=/etc/kasa-monitor
UNIT_DIR=/etc/systemd/system
BIN_DIR=/usr/local/bin
STATE_DIRS=(/var/lib/kasa-monitor /var/lib/private/kasa-monitor)
DRY_RUN=0
PURGE=0

usage() {
  cat <<EOF
Usage: sudo $0 [--prefix DIR] [--purge] [--dry-run]

  --prefix DIR     where the program was installed (default $PREFIX)
  --purge          also delete $CONFIG_DIR and the database in /var/lib/kasa-monitor
  -n, --dry-run    print what would be done; change nothing
  --config-dir DIR, --unit-dir DIR, --bin-dir DIR   as given to install.sh
  -h, --help       this text
EOF
}

say() { printf 'kasa-monitor uninstall: %s\n' "$*"; }
die() {
  printf 'kasa-monitor uninstall: error: %s\n' "$*" >&2
  exit 1
}
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
  --config-dir) CONFIG_DIR=${2:?--config-dir needs a directory}; shift 2 ;;
  --config-dir=*) CONFIG_DIR=${1#*=}; shift ;;
  --unit-dir) UNIT_DIR=${2:?--unit-dir needs a directory}; shift 2 ;;
  --unit-dir=*) UNIT_DIR=${1#*=}; shift ;;
  --bin-dir) BIN_DIR=${2:?--bin-dir needs a directory}; shift 2 ;;
  --bin-dir=*) BIN_DIR=${1#*=}; shift ;;
  --purge) PURGE=1; shift ;;
  -n | --dry-run) DRY_RUN=1; shift ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; die "unknown option: $1" ;;
  esac
done

if [ "$DRY_RUN" = 1 ]; then say "dry run: nothing is changed"; fi
PREFIX=${PREFIX%/}
if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "run as root (sudo $0 ...), or see what would happen with --dry-run"
fi

if [ -f "$UNIT_DIR/$UNIT_NAME" ]; then
  say "stopping and disabling the service"
  run systemctl disable --now "$UNIT_NAME"
  run rm -f "$UNIT_DIR/$UNIT_NAME"
  run systemctl daemon-reload
  if [ "$DRY_RUN" = 0 ]; then systemctl reset-failed "$UNIT_NAME" 2>/dev/null || true; fi
else
  say "no unit at $UNIT_DIR/$UNIT_NAME"
fi

# The command install.sh put on PATH, only if it is the installer's wrapper.
if grep -qsF '# installed by kasa-monitor scripts/install.sh' "$BIN_DIR/kasa-monitor"; then
  say "removing the command $BIN_DIR/kasa-monitor"
  run rm -f "$BIN_DIR/kasa-monitor"
fi

if [ -e "$PREFIX" ]; then
  grep -qs '"name": "kasa-monitor"' "$PREFIX/package.json" ||
    die "$PREFIX is not a kasa-monitor installation; refusing to delete it"
  say "removing $PREFIX"
  run rm -rf "$PREFIX"
fi

if [ "$PURGE" = 1 ]; then
  say "removing the configuration and the database (--purge)"
  run rm -rf "$CONFIG_DIR" "${STATE_DIRS[@]}"
else
  say "kept $CONFIG_DIR (configuration) and /var/lib/kasa-monitor (the database); --purge removes them"
fi
