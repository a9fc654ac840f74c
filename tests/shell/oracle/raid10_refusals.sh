# Guest job for expected/raid10_refusals.txt: three raid10 arrays real md
# must refuse to run, bound through sysfs as tests/shell/raid10.sh binds
# them.  Regenerate with, from a scratch directory:
#   for c in a b c; do for i in 0 1 2 3; do
#     zstd -d ../shared/oracle/fixtures/raid10-n2-bitmap/d$i.img.zst -o $c$i.img; done; done
#   for i in 0 1 2 3; do
#     sbpatch.py a$i.img 8 layout=261          # 0x105: 5 near copies over 4
#     sbpatch.py b$i.img 8 chunksize=96        # not a power of two
#     sbpatch.py c$i.img 8 layout=393474; done # 3 << 17 | 0x102: no such far-set scheme
#   realmd shell-script a?.img b?.img c?.img -- tests/shell/oracle/raid10_refusals.sh \
#     | grep -v ^realmd >tests/shell/expected/raid10_refusals.txt
modprobe raid10
set -- $DISKS
for name in md1 md2 md3; do
	echo $name >/sys/module/md_mod/parameters/new_array
	S=/sys/block/$name/md
	echo 1.2 >$S/metadata_version
	for k in 1 2 3 4; do
		cat /sys/block/${1#/dev/}/dev >$S/new_dev
		shift
	done
	if r=$(echo active 2>&1 >$S/array_state); then echo "$name: ok"; else echo "$name: ${r##*: }"; fi
	echo "$name: $(cat $S/array_state)"
	echo clear >$S/array_state
done
dmesg | grep -E "md/raid10|pers->run|md: " | sed 's/^\[[^]]*\] //'
