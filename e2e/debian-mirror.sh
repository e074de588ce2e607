#!/bin/sh
# debian-mirror.sh [SUITE] prints the URI of the first Debian archive in
# this machine's own apt sources that serves SUITE or this machine's
# release (VERSION_CODENAME of /etc/os-release), for debootstrap: the
# systemd image of `make e2e` comes from where this machine's packages
# come from, and no mirror host is written into the Makefile. It reads
# deb822 files (/etc/apt/sources.list.d/*.sources) first, then one-line
# ones (/etc/apt/sources.list, /etc/apt/sources.list.d/*.list), skipping
# deb-src and disabled (Enabled: no) entries. It prints nothing when no
# entry fits.
set -u
want=${1:-}
release=$(. /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-}")
{
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk -v a="$want" -v b="$release" '
      function flush(   n, i, s, u) {
        if (deb && enabled && uris != "") {
          n = split(suites, s, " ")
          for (i = 1; i <= n; i++)
            if (s[i] != "" && (s[i] == a || s[i] == b)) { split(uris, u, " "); print u[1]; break }
        }
        deb = 0; enabled = 1; uris = ""; suites = ""
      }
      BEGIN { enabled = 1 }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]*#/ { next }
      tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      tolower($1) == "uris:" { $1 = ""; uris = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "enabled:" { enabled = (tolower($2) != "no") }
      END { flush() }
    ' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk -v a="$want" -v b="$release" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
        if ($(i + 1) != "" && ($(i + 1) == a || $(i + 1) == b)) print $i
      }
    ' "$f"
  done
} | head -n 1
