#!/usr/bin/env bash
# Makes sure the system packages gridgov needs are present: PostgreSQL 15 + PostGIS 3, and Pango + CJK fonts
# for printing (WeasyPrint draws the PDFs with them), always; with --browser, Debian's Chromium for the
# browser tests. As root it installs what is missing
# from Debian's packages; otherwise it names the packages (and the conda alternative) and stops.
set -euo pipefail

want_browser=0
[ "${1:-}" = "--browser" ] && want_browser=1

missing=()
pg_sharedir=$( (command -v pg_config >/dev/null && pg_config --sharedir) || echo /usr/share/postgresql/15)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing+=(postgresql)
[ -f "$pg_sharedir/extension/postgis.control" ] || ls /usr/share/postgresql/*/extension/postgis.control \
    >/dev/null 2>&1 || missing+=(postgresql-15-postgis-3)
# Printing (layers/registry_print.py): WeasyPrint loads Pango by name; Chinese needs a CJK font.
ldconfig -p 2>/dev/null | grep "libpango-1.0.so.0" >/dev/null || missing+=(libpango-1.0-0)
ldconfig -p 2>/dev/null | grep "libpangoft2-1.0.so.0" >/dev/null || missing+=(libpangoft2-1.0-0)
ls /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc >/dev/null 2>&1 || fc-list 2>/dev/null \
    | grep -i "noto.*cjk" >/dev/null || missing+=(fonts-noto-cjk)
if [ "$want_browser" = 1 ]; then
  command -v chromium >/dev/null || missing+=(chromium)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "系统软件包已齐全 (system packages present)"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "缺少系统软件包: ${missing[*]}" >&2
  echo "请以 root 身份安装: apt-get install ${missing[*]}" >&2
  echo "或使用 conda 环境: conda env create -f environment.yml (PostgreSQL + PostGIS from conda-forge)" >&2
  exit 1
fi

echo "安装系统软件包 (installing): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's postgresql package starts its own main cluster on port 5432; gridgov runs its own, so leave
# that one alone but don't let it stand in the way of ours.
echo "已安装 (installed): ${missing[*]}"
