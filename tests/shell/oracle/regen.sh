#!/bin/bash
# Regenerate tests/shell/expected/NAME.txt from real md: runs
# tests/shell/oracle/NAME.sh in the oracle's VM, after the probe_*.sh
# helpers, on the images of the fixtures its "# images:" line names (in
# that order: vda, vdb, ...), then on the blank images its "# blank: COUNT
# SIZE" line asks for.
#   tests/shell/oracle/regen.sh NAME...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shared=${SHARED:-$(cd "$here/../../../../shared" && pwd)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for name in "$@"; do
	job=$here/$name.sh
	imgs=()
	n=0
	for fx in $(sed -n 's/^# images: //p' "$job"); do
		n=$((n + 1))
		for z in "$shared/oracle/fixtures/$fx"/d*.img.zst; do
			zstd -q -d -f "$z" -o "$tmp/$n-$(basename "$z" .zst)"
			imgs+=("$tmp/$n-$(basename "$z" .zst)")
		done
	done
	nblank=0 size=
	read -r nblank size < <(sed -n 's/^# blank: //p' "$job") || true
	for ((i = 0; i < ${nblank:-0}; i++)); do
		truncate -s "$size" "$tmp/blank-$i.img"
		imgs+=("$tmp/blank-$i.img")
	done
	cat "$here"/../probe_*.sh "$job" >"$tmp/job.sh"
	"$shared/oracle/realmd" shell-script "${imgs[@]}" -- "$tmp/job.sh" >"$tmp/out.txt" 2>&1 || true
	grep -v '^realmd' "$tmp/out.txt" >"$here/../expected/$name.txt"
	echo "$name: $(wc -l <"$here/../expected/$name.txt") lines"
done
