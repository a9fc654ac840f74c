//! `examine_super0`: the 0.90 superblock as mdadm 4.2's super0.c prints it.

use super::*;

/// `examine_super0`.  `devname` maps a major:minor to a /dev name as
/// mdadm's `map_dev` does.
pub fn write_super0(
    out: &mut Vec<u8>,
    sb: &Superblock0,
    homehost: Option<&str>,
    devname: &dyn Fn(u32, u32) -> Option<String>,
) {
    let _ = writeln!(out, "          Magic : {:08x}", sb.md_magic);
    let _ = writeln!(
        out,
        "        Version : {}.{:02}.{:02}",
        sb.major_version as i32, sb.minor_version as i32, sb.patch_version as i32
    );
    if sb.minor_version >= 90 {
        let _ = write!(
            out,
            "           UUID : {:08x}:{:08x}:{:08x}:{:08x}",
            sb.set_uuid0, sb.set_uuid1, sb.set_uuid2, sb.set_uuid3
        );
        if let Some(h) = homehost {
            if is_local_v090(sb, h) {
                let _ = write!(out, " (local to host {h})");
            }
        }
        out.push(b'\n');
    } else {
        let _ = writeln!(out, "           UUID : {:08x}", sb.set_uuid0);
    }
    if sb.not_persistent != 0 {
        out.extend_from_slice(b"           Eedk : not persistent\n");
    }
    let _ = writeln!(out, "  Creation Time : {}", ctime24(sb.ctime as i64));
    let _ = writeln!(
        out,
        "     Raid Level : {}",
        level_name(sb.level).unwrap_or("-unknown-")
    );
    if sb.level > 0 {
        let _ = writeln!(
            out,
            "  Used Dev Size : {}{}",
            sb.size as i32,
            human_size((sb.size as i64) << 10)
        );
        let (ddsks, denom) = data_disks(sb.level as u32, sb.raid_disks, sb.layout);
        if ddsks != 0 && denom != 0 {
            let asize = ((sb.size as i64) << 10)
                .wrapping_mul(ddsks)
                .wrapping_div(denom);
            let _ = writeln!(
                out,
                "     Array Size : {}{}",
                (asize >> 10) as u64,
                human_size(asize)
            );
        }
    }
    let _ = writeln!(out, "   Raid Devices : {}", sb.raid_disks as i32);
    let _ = writeln!(out, "  Total Devices : {}", sb.nr_disks as i32);
    let _ = writeln!(out, "Preferred Minor : {}", sb.md_minor as i32);
    out.push(b'\n');
    let mut delta_extra: u32 = 0;
    if sb.minor_version > 90 && sb.reshape_position != u64::MAX {
        let reshape = Reshape {
            position: sb.reshape_position,
            delta_disks: sb.delta_disks as i32,
            raid_disks: sb.raid_disks as i32,
            level: sb.level as u32,
            new_level: sb.new_level,
            layout: sb.layout,
            new_layout: sb.new_layout,
        };
        delta_extra = write_reshape(out, &reshape, r10layout_090);
        if sb.new_chunk != sb.chunk_size {
            let _ = writeln!(out, "  New Chunksize : {}", sb.new_chunk as i32);
        }
        out.push(b'\n');
    }
    let _ = writeln!(out, "    Update Time : {}", ctime24(sb.utime as i64));
    let state = if sb.state & sb_state::CLEAN != 0 {
        "clean"
    } else {
        "active"
    };
    let _ = writeln!(out, "          State : {state}");
    if sb.state & sb_state::BITMAP_PRESENT != 0 {
        out.extend_from_slice(b"Internal Bitmap : present\n");
    }
    let _ = writeln!(out, " Active Devices : {}", sb.active_disks as i32);
    let _ = writeln!(out, "Working Devices : {}", sb.working_disks as i32);
    let _ = writeln!(out, " Failed Devices : {}", sb.failed_disks as i32);
    let _ = writeln!(out, "  Spare Devices : {}", sb.spare_disks as i32);
    let calc = sb.compute_csum();
    if calc == sb.sb_csum {
        let _ = writeln!(out, "       Checksum : {:x} - correct", sb.sb_csum);
    } else {
        let _ = writeln!(
            out,
            "       Checksum : {:x} - expected {calc:x}",
            sb.sb_csum
        );
    }
    let _ = writeln!(out, "         Events : {}", sb.events());
    out.push(b'\n');
    if let Some(words) = layout_words(sb.level as u32, sb.layout) {
        let _ = writeln!(out, "         Layout :{words}");
    }
    match sb.level {
        0 | 4 | 5 | 6 | 10 => {
            let _ = writeln!(out, "     Chunk Size : {}K", (sb.chunk_size / 1024) as i32);
        }
        -1 => {
            let _ = writeln!(out, "       Rounding : {}K", (sb.chunk_size / 1024) as i32);
        }
        _ => {}
    }
    out.push(b'\n');
    out.extend_from_slice(b"      Number   Major   Minor   RaidDevice State\n");
    let rows = sb
        .raid_disks
        .wrapping_add(delta_extra)
        .wrapping_add(sb.spare_disks) as i32;
    // mdadm indexes disks[] without a bound; disks[27] is this_disk.
    let rows = rows.min(crate::format::super0::MD_SB_DISKS as i32 + 1);
    for d in -1..rows {
        let dp: &Disk0 = if d < 0 {
            &sb.this_disk
        } else {
            sb.disks.get(d as usize).unwrap_or(&sb.this_disk)
        };
        let label = if d < 0 {
            "this".to_string()
        } else {
            format!("{d:4}")
        };
        let _ = write!(
            out,
            "{label:>4} {:5}   {:5}    {:5}    {:5}     ",
            dp.number as i32, dp.major as i32, dp.minor as i32, dp.raid_disk as i32
        );
        let wonly = dp.state & disk_state::WRITEMOSTLY;
        let failfast = dp.state & disk_state::FAILFAST;
        let st = dp.state & !(wonly | failfast);
        if st & disk_state::FAULTY != 0 {
            out.extend_from_slice(b" faulty");
        }
        if st & disk_state::ACTIVE != 0 {
            out.extend_from_slice(b" active");
        }
        if st & disk_state::SYNC != 0 {
            out.extend_from_slice(b" sync");
        }
        if st & disk_state::REMOVED != 0 {
            out.extend_from_slice(b" removed");
        }
        if wonly != 0 {
            out.extend_from_slice(b" write-mostly");
        }
        if failfast != 0 {
            out.extend_from_slice(b" failfast");
        }
        if st == 0 {
            out.extend_from_slice(b" spare");
        }
        if let Some(name) = devname(dp.major, dp.minor) {
            let _ = write!(out, "   {name}");
        }
        out.push(b'\n');
        if d == -1 {
            out.push(b'\n');
        }
    }
}

/// A 0.90 array made by mdadm on `host` has SHA-1(host)[..8] as the last
/// two UUID words.
pub fn is_local_v090(sb: &Superblock0, host: &str) -> bool {
    let hash = crate::cli::sha1::sha1(host.as_bytes());
    let mut tail = [0u8; 8];
    tail[..4].copy_from_slice(&sb.set_uuid2.to_le_bytes());
    tail[4..].copy_from_slice(&sb.set_uuid3.to_le_bytes());
    tail == hash[..8]
}
