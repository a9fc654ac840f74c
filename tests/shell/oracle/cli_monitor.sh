# Guest half of cli_monitor.sh: mdadm --monitor on real md while a leg
# fails, is removed, and a blank device recovers in its place.
# images: raid1-v1.2-bitmap
# blank: 1 16M
cat >/tmp/prog <<'P'
#!/bin/sh
echo "$*" >>/tmp/events
P
chmod +x /tmp/prog
mdadm --assemble /dev/md0 /dev/vda /dev/vdb 2>&1
echo 2000 >/sys/block/md0/md/sync_speed_max
mdadm --monitor --delay 1 --program /tmp/prog /dev/md0 &
MP=$!
sleep 2
mdadm /dev/md0 --fail /dev/vdb --remove /dev/vdb 2>&1
sleep 2
mdadm /dev/md0 --add /dev/vdc 2>&1
i=0
while [ $i -lt 60 ] && ! grep -q SpareActive /tmp/events 2>/dev/null; do sleep 1; i=$((i + 1)); done
sleep 2
kill $MP
echo "--- events"
sed 's/^Rebuild[0-9][0-9] /RebuildNN /' /tmp/events | uniq
mdadm --monitor --oneshot --test /dev/md0 2>&1 | sed 's/^.*: TestMessage/TestMessage/'
mdadm --monitor --oneshot --scan --program /tmp/prog 2>&1; : >/tmp/events
mdadm --monitor --oneshot --scan --program /tmp/prog 2>&1; cat /tmp/events
mdadm /dev/md0 --fail /dev/vda 2>&1
: >/tmp/events
mdadm --monitor --oneshot --program /tmp/prog /dev/md0 2>&1; cat /tmp/events
mdadm --stop /dev/md0 2>&1
: >/tmp/events
mdadm --monitor --oneshot --program /tmp/prog /dev/md0 2>&1; cat /tmp/events
