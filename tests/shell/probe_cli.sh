# The sequence of cli_manage.sh, shared by both sides: the host runs it
# with mdfuse's verbs on the tree, the guest (oracle/cli_manage.sh) with
# mdadm on real md, and both print the same transcript.  Each side
# defines: c_assemble ARGS..., c_manage OPS..., c_stop, c_detail,
# c_readonly, c_grow OPTS..., settle; devices are named vda..vdl
# (raid1-spare's three images, raid1-v1.2-nobitmap's two,
# raid5-ls-bitmap's three, raid0-v1.2's three, a blank one) and print as
# /dev/vdX.
# c_detail prints only what does not depend on timing: the state, the
# counts and the device table (Major/Minor masked).
cli_sequence() {
	c_assemble vdd
	c_assemble --run vdd
	c_detail
	c_stop
	c_assemble vda vdb vdc
	c_manage --fail vdb
	settle
	c_detail
	c_manage --remove vdb
	c_manage --remove vdb
	c_detail
	c_manage --re-add vdb
	c_manage --add vdb
	c_detail
	c_manage --fail vde
	c_manage --remove vde
	c_manage --fail nonexist
	c_manage --fail vdc --remove vdc --add vdc
	settle
	c_detail
	c_manage --remove vda
	c_manage --re-add vde
	c_readonly
	c_stop
	c_stop
	c_detail
	c_manage --fail vda
	c_assemble vda vdd
	c_assemble vda vdb
	c_detail
	c_stop
	c_grow
	c_assemble vdd vde
	c_grow --raid-devices=2
	c_grow --size=max
	c_stop
	c_assemble vdf vdg vdh
	c_manage --fail vdf
	c_manage --fail vdg
	c_manage --add vdl
	# md's thread takes vdg out of its slot after the add lets recovery
	# go again (sync_action idle): give it the time on both sides.
	sleep 1
	c_detail
	c_stop
	c_assemble vdi vdj vdk
	c_grow --size=max
	c_manage --add vdl
	c_stop
	# A read-only array takes no new member: md's ADD_NEW_DISK is EROFS.
	c_assemble vda vdb vdc
	c_readonly
	c_manage --add vdl
	c_detail
	c_stop
	# A member failed and removed from an array without a bitmap is
	# behind: md will not take it back in its slot, --add makes it a spare.
	c_assemble vdd vde
	settle
	c_manage --fail vdd --remove vdd
	c_manage --re-add vdd
	c_detail
	c_manage --add vdd
	settle
	c_detail
	c_stop
	# The words for members: 'failed' (every faulty member) with --remove,
	# 'detached' (every member whose device has gone) with --remove and
	# --fail; none is nothing to do.
	c_assemble vda vdb vdc
	c_manage --fail vdb
	settle
	c_manage --remove failed
	c_manage --remove failed
	c_manage --fail detached
	c_manage --remove detached
	c_manage --fail failed
	c_manage --add detached
	c_detail
	c_manage --add vdb
	settle
	c_detail
	# A member of another (stopped) array: --add writes this array's
	# superblock over its own, and it is a spare.
	c_manage --add vdf
	c_detail
	c_stop
}

# detail_filter: the timing-free lines of a detail report.
detail_filter() {
	sed -n -E 's/^( +([0-9]+|-)) +[0-9]+ +[0-9]+ /\1   MAJ   MIN /p; / (State|Devices) :/p; /cannot open/p'
}
