# Guest half of cli_manage.sh (see probe_cli.sh): mdadm on real md.
# images: raid1-spare raid1-v1.2-nobitmap raid5-ls-bitmap raid0-v1.2
# blank: 1 16M
devs() { for d in "$@"; do case $d in -*|failed|detached) printf '%s ' "$d" ;; *) printf '/dev/%s ' "$d" ;; esac; done; }
# mdadm names the members it finds itself (failed, detached) MAJOR:MINOR.
majmin() { local s='' d; for d in /sys/block/vd*; do s="$s;s# $(cat "$d/dev") # /dev/${d##*/} #g"; done; sed -e "${s#;}"; }
say() { sed 's#^mdadm: #mdfuse: #' /tmp/o | majmin; echo "rc=$1"; }
c_assemble() { echo "+ assemble $*"; mdadm --assemble /dev/md0 $(devs "$@") >/tmp/o 2>&1; say $?; }
c_manage() { echo "+ manage $*"; mdadm /dev/md0 $(devs "$@") >/tmp/o 2>&1; say $?; }
c_stop() { echo "+ stop"; mdadm --stop /dev/md0 >/tmp/o 2>&1; say $?; }
c_grow() { echo "+ grow $*"; mdadm --grow /dev/md0 "$@" >/tmp/o 2>&1; say $?; }
c_detail() { echo "+ detail"; mdadm --detail /dev/md0 >/tmp/o 2>&1; sed 's#^mdadm: #mdfuse: #' /tmp/o | detail_filter; }
c_readonly() { echo "+ readonly"; mdadm --readonly /dev/md0 >/tmp/o 2>&1; say $?; cat /sys/block/md0/md/array_state; }
settle() { wait_idle md0 60 >/dev/null 2>&1 || true; }
cli_sequence
