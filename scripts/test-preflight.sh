#!/bin/sh
# Runs before `npm test` (the pretest script): the suite runs against real peers, and this says in
# one line what this machine lacks, before minutes of type-checking and building. `.ci/run` (as
# root) installs everything listed here.
missing=''
need() { missing="${missing:+$missing, }$1"; }
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

[ "$(id -u)" = 0 ] || need 'root (the real-systemd test boots a container)'
has victoria-metrics || need 'victoria-metrics (apt-get install victoria-metrics)'
has promtool || need "promtool (apt-get install prometheus)"
has systemd-nspawn || need 'systemd-nspawn (apt-get install systemd-container)'
has debootstrap || need 'debootstrap (apt-get install debootstrap)'
has nsenter || need 'nsenter (apt-get install util-linux)'
has script || need 'script (apt-get install bsdutils)'
has faketime || need 'faketime (apt-get install faketime)'
has chromium || need 'chromium (apt-get install chromium)'
has mosquitto || need 'mosquitto (apt-get install mosquitto)'
has openssl || need 'openssl (apt-get install openssl)'

if [ -n "$missing" ]; then
  echo "npm test cannot run here: missing $missing. Run .ci/run as root, which installs them (see README, Development)." >&2
  exit 1
fi
if [ ! -f /var/cache/kasa-monitor-test/rootfs/.kasa-monitor-rootfs ]; then
  echo 'npm test: the real-systemd test will download a Debian bookworm root file system once (debootstrap, about 200 MB) into /var/cache/kasa-monitor-test/rootfs.'
fi
