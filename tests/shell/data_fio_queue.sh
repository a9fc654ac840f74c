#!/bin/bash
# md0/data under queued direct I/O, as a guest or a loop device with
# --direct-io=on drives it: fio with libaio at queue depth 64 and crc32c
# verification, 4 KiB and 1 MiB writes, with the legs in sync and with a
# leg failed mid-run; check finds nothing after.  And that queued
# requests are served at once rather than one by one, and the legs of
# one large write written at once rather than in turn: with latency
# injected on the legs, the time a batch takes says which.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/data_lib.sh"

IMG=$(cached_images raid1-256M 256M --bitmap=internal)
start_daemon
D=$MNT/md0/data

cat >"$T/queue.fio" <<EOF
[global]
filename=$D
direct=1
ioengine=libaio
iodepth=64
verify=crc32c
verify_fatal=1
verify_state_save=0
[rand1]
rw=randwrite
bs=4k
offset=0
size=48M
[rand2]
rw=randwrite
bs=4k
offset=48M
size=48M
[big]
rw=randwrite
bs=1M
offset=96M
size=64M
[mixed]
rw=randwrite
bsrange=4k-256k
offset=160M
size=64M
EOF

log "queue depth 64, both legs in sync: verified, and the legs agree"
fresh_array "$IMG"
fio_start "$T/queue.fio" "$T/q1.out"
fio_wait "$T/q1.out"
put md0/md/sync_action check
wait_idle md0
expect_eq "$(attr md0/md/mismatch_cnt)" 0 mismatch_cnt
head -c $((224 * 1048576)) "$D" >"$T/md0.head"
for leg in vda vdb; do
	cmp <(leg_data "$T/img/$leg" "$(attr md0/md/dev-$leg/offset)" $((224 * 2048))) "$T/md0.head" ||
		fail "$leg differs from md0/data"
done

log "queue depth 64, vdb failed mid-run: verified from vda alone"
fresh_array "$IMG"
log_mark
fio_start "$T/queue.fio" "$T/q2.out" --rate=,40m
sleep 1
fio_running || fail "fio ended before the fault"
put md0/md/dev-vdb/state faulty
fio_wait "$T/q2.out"
log_has "md/raid1:md0: Disk failure on vdb, disabling device."
expect_eq "$(attr md0/md/degraded)" 1 degraded
head -c $((224 * 1048576)) "$D" >"$T/md0.head"
cmp <(leg_data "$T/img/vda" "$(attr md0/md/dev-vda/offset)" $((224 * 2048))) "$T/md0.head" ||
	fail "vda differs from md0/data"

# elapsed COMMAND...: seconds (with decimals) the command took.
elapsed() {
	local t0 t1
	t0=$(date +%s.%N)
	"$@" || fail "$* failed"
	t1=$(date +%s.%N)
	python3 -c "print('%.2f' % ($t1 - $t0))"
}
below() { python3 -c "import sys; sys.exit(0 if $1 < $2 else 1)"; }

fresh_array "$IMG"
# Only the data writes are to meet the delays: the array stays dirty
# (no superblock write when a write starts) and the bitmap bits of the
# region are set by a first pass without delays.
put md0/md/safe_mode_delay 60
fio --name=pre --filename="$D" --direct=1 --ioengine=psync --rw=write --bs=1M --size=64M \
	--output="$T/pre.out" || fail "fio pre"

log "64 writes of 4 KiB at queue depth 16, 200 ms on each leg: served at once"
put md0/md/dev-vda/fault "delay 200 write"
put md0/md/dev-vdb/fault "delay 200 write"
# One by one they would take 64 x 400 ms (the legs in turn): 25.6 s.  At
# once, 4 rounds of 16: 1.6 s.
t=$(elapsed fio --name=qd16 --filename="$D" --direct=1 --ioengine=libaio --iodepth=16 \
	--rw=randwrite --bs=4k --size=64M --number_ios=64 --output="$T/qd16.out")
log "took $t s"
below "$t" 6 || fail "64 writes at queue depth 16 took $t s: not served at once"

log "16 writes of 1 MiB one after the other, 300 ms on each leg: legs at once"
big=(fio --name=big --filename="$D" --direct=1 --ioengine=psync --rw=write --bs=1M --size=16M
	--output="$T/big.out")
# Rules add up: drop the 200 ms ones first.
put md0/md/dev-vda/fault clear
put md0/md/dev-vdb/fault clear
put md0/md/dev-vda/fault "delay 300 write"
put md0/md/dev-vdb/fault "delay 300 write"
# In turn each write would take 600 ms: 9.6 s.  At once, 300 ms: 4.8 s.
t=$(elapsed "${big[@]}")
log "took $t s"
below "$t" 7.5 || fail "16 writes of 1 MiB took $t s: the legs were written in turn"
below 4.7 "$t" || fail "16 writes of 1 MiB took $t s: faster than the injected delay"
put md0/md/dev-vda/fault clear
put md0/md/dev-vdb/fault clear

stop_daemon
