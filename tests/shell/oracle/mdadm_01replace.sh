# Guest half of mdadm_01replace.sh (see probe_replace.sh): real mdadm on
# six blank 20000 KiB disks, as mdadm's test suite makes them.
# blank: 6 20000K
echo 0 >/sys/module/md_mod/parameters/start_ro
S=/sys/block/md0/md
r_dev() { echo "/dev/$(r_name "$1")"; }
r_devs() { for _n in "$@"; do r_dev "$_n"; done; }
r_create() { mdadm -CR /dev/md0 -l1 -n4 -x2 $DISKS >/dev/null 2>&1; }
r_replace() {
	if [ -n "${2:-}" ]; then
		mdadm /dev/md0 --replace "$(r_dev "$1")" --with "$(r_dev "$2")" >/dev/null 2>&1
	else
		mdadm /dev/md0 --replace "$(r_dev "$1")" >/dev/null 2>&1
	fi
}
r_remove() { mdadm /dev/md0 --remove $(r_devs "$@") >/dev/null 2>&1; }
r_add() { mdadm /dev/md0 --add $(r_devs "$@") >/dev/null 2>&1; }
r_fail() { mdadm /dev/md0 --fail $(r_devs "$@") >/dev/null 2>&1; }
r_stop() { mdadm -S /dev/md0 >/dev/null 2>&1; }
r_zero() { dd if=/dev/zero of="$(r_dev "$1")" bs=1M 2>/dev/null || :; }
r_fill() { dd if=/dev/urandom of=/dev/md0 bs=1M 2>/dev/null || :; }
r_sum() { sha1sum </dev/md0 | cut -d' ' -f1; }
r_speed() { echo "$1" >/proc/sys/dev/raid/speed_limit_max; }
r_mdstat() { mdstat_line /dev/md0; }
probe_replace
