//! `examine_super1`: the 1.x superblock as mdadm 4.2's super1.c prints it.

use super::*;

/// `getinfo_super1`'s free space around the data: (before, after), with
/// after = 1 meaning "none either side" (then mdadm prints no line).
pub fn unused_space(
    sb: &Superblock1,
    bitmap: Option<&BitmapSuper>,
    dev_sectors: u64,
) -> (u64, u64) {
    let bitmap_offset = if sb.has(feature::BITMAP_OFFSET) {
        sb.bitmap_offset as i32 as i64
    } else {
        0
    };
    let (ppl_offset, ppl_size) = if !sb.has(feature::BITMAP_OFFSET) && any_ppl(sb) {
        (
            (sb.bitmap_offset & 0xffff) as i64,
            (sb.bitmap_offset >> 16) as u64,
        )
    } else {
        (0, 0)
    };
    let data_size = if sb.level <= 0 { sb.data_size } else { sb.size };
    let so = sb.super_offset;
    let has_log = sb.bblog_offset != 0 && sb.bblog_size != 0;
    let (before, mut after);
    if sb.data_offset < so {
        before = sb.data_offset;
        let mut end = so;
        if has_log {
            let bb = so.wrapping_add(sb.bblog_offset as i64 as u64);
            end = end.min(bb);
        }
        let bm = so
            .wrapping_add(bitmap_offset as u64)
            .wrapping_add(ppl_offset as u64);
        end = end.min(bm);
        after = if sb.data_offset.wrapping_add(data_size) < end {
            end.wrapping_sub(data_size).wrapping_sub(sb.data_offset)
        } else {
            0
        };
    } else {
        let mut earliest = so.wrapping_add((32 + 4) * 2);
        if bitmap_offset > 0 {
            let bms_sectors = match bitmap {
                // calc_bitmap_size returns an unsigned int.
                Some(b) => {
                    (bitmap_bytes(b.sync_size, b.chunksize as u64, 4096) as u32 / 512) as u64
                }
                None => 0,
            };
            earliest = earliest.max((bitmap_offset as u64).wrapping_add(bms_sectors));
        } else if ppl_offset > 0 {
            earliest = earliest.max((ppl_offset as u64).wrapping_add(ppl_size));
        }
        if has_log {
            let bbend = so
                .wrapping_add(sb.bblog_offset as i64 as u64)
                .wrapping_add(sb.bblog_size as u64);
            earliest = earliest.max(bbend);
        }
        before = sb.data_offset.saturating_sub(earliest);
        after = dev_sectors
            .wrapping_sub(data_size)
            .wrapping_sub(sb.data_offset);
    }
    if before == 0 && after == 0 {
        after = 1;
    }
    (before, after)
}

pub(super) fn any_ppl(sb: &Superblock1) -> bool {
    sb.feature_map & (feature::PPL | feature::MULTIPLE_PPLS) != 0
}

/// The role in a device's own superblock, as `role_from_sb`.
pub(super) fn own_role(sb: &Superblock1) -> u16 {
    sb.role_of(sb.dev_number)
}

/// Highest slot the "Array State" line walks to (mdadm walks
/// `raid_disks + delta_extra`; roles are 16-bit, so nothing past 0xffff
/// can be active).
pub(super) const ARRAY_STATE_CAP: u64 = 1 << 16;

/// `examine_super1`.
pub fn write_super1(
    out: &mut Vec<u8>,
    sb: &Superblock1,
    bitmap: Option<&BitmapSuper>,
    dev_sectors: u64,
    homehost: Option<&str>,
) {
    let fm = sb.feature_map;
    let level = sb.level as u32;
    let _ = writeln!(out, "          Magic : {:08x}", sb.magic);
    let minor = if sb.super_offset <= 4 {
        ".1"
    } else if sb.super_offset <= 8 {
        ".2"
    } else {
        ".0"
    };
    let _ = writeln!(out, "        Version : 1{minor}");
    let _ = writeln!(out, "    Feature Map : 0x{fm:x}");
    let _ = writeln!(out, "     Array UUID : {}", uuid_colon(&sb.set_uuid));
    out.extend_from_slice(b"           Name : ");
    out.extend_from_slice(c_str(&sb.set_name));
    if let Some(h) = homehost {
        let l = h.len();
        if l > 0 && l < 32 && sb.set_name[l] == b':' && &sb.set_name[..l] == h.as_bytes() {
            let _ = write!(out, "  (local to host {h})");
        }
    }
    out.push(b'\n');
    if let Some(b) = bitmap {
        if b.nodes > 0 && fm & feature::BITMAP_OFFSET != 0 {
            out.extend_from_slice(b"   Cluster Name : ");
            let name = c_str(&b.cluster_name);
            out.extend_from_slice(name);
            out.extend(std::iter::repeat_n(
                b' ',
                64usize.saturating_sub(name.len()),
            ));
            out.push(b'\n');
        }
    }
    let _ = writeln!(
        out,
        "  Creation Time : {}",
        ctime24((sb.ctime & 0xff_ffff_ffff) as i64)
    );
    let _ = writeln!(
        out,
        "     Raid Level : {}",
        level_name(sb.level).unwrap_or("-unknown-")
    );
    let _ = writeln!(out, "   Raid Devices : {}", sb.raid_disks as i32);
    out.push(b'\n');
    let _ = writeln!(
        out,
        " Avail Dev Size : {} sectors{}",
        sb.data_size,
        human_size((sb.data_size << 9) as i64)
    );
    if level > 0 {
        let (ddsks, denom) = data_disks(level, sb.raid_disks, sb.layout);
        if ddsks != 0 && denom != 0 {
            let asize = ((sb.size as i64) << 9)
                .wrapping_mul(ddsks)
                .wrapping_div(denom);
            let _ = writeln!(
                out,
                "     Array Size : {} KiB{}",
                (asize >> 10) as u64,
                human_size(asize)
            );
        }
        if sb.size != sb.data_size {
            let _ = writeln!(
                out,
                "  Used Dev Size : {} sectors{}",
                sb.size,
                human_size((sb.size << 9) as i64)
            );
        }
    }
    if sb.data_offset != 0 {
        let _ = writeln!(out, "    Data Offset : {} sectors", sb.data_offset);
    }
    if sb.new_offset != 0 && fm & feature::NEW_OFFSET != 0 {
        let off = sb
            .data_offset
            .wrapping_add(sb.new_offset as i32 as i64 as u64);
        let _ = writeln!(out, "     New Offset : {off} sectors");
    }
    let _ = writeln!(out, "   Super Offset : {} sectors", sb.super_offset);
    if fm & feature::RECOVERY_OFFSET != 0 {
        let _ = writeln!(out, "Recovery Offset : {} sectors", sb.recovery_offset);
    }
    let (before, after) = unused_space(sb, bitmap, dev_sectors);
    if after != 1 && fm & feature::NEW_OFFSET == 0 {
        let _ = writeln!(
            out,
            "   Unused Space : before={before} sectors, after={after} sectors"
        );
    }
    let state = if sb.resync_offset != MAX_SECTOR {
        "active"
    } else {
        "clean"
    };
    let _ = writeln!(out, "          State : {state}");
    let _ = writeln!(out, "    Device UUID : {}", uuid_colon(&sb.device_uuid));
    out.push(b'\n');
    if fm & feature::BITMAP_OFFSET != 0 {
        let _ = writeln!(
            out,
            "Internal Bitmap : {} sectors from superblock",
            sb.bitmap_offset as i32
        );
    } else if any_ppl(sb) {
        let _ = writeln!(
            out,
            "            PPL : {} sectors at offset {} sectors from superblock",
            sb.bitmap_offset >> 16,
            sb.bitmap_offset & 0xffff
        );
    }
    let mut delta_extra: u32 = 0;
    if fm & feature::RESHAPE_ACTIVE != 0 {
        let reshape = Reshape {
            position: sb.reshape_position,
            delta_disks: sb.delta_disks as i32,
            raid_disks: sb.raid_disks as i32,
            level,
            new_level: sb.new_level,
            layout: sb.layout,
            new_layout: sb.new_layout,
        };
        delta_extra = write_reshape(out, &reshape, r10layout);
        if sb.new_chunk != sb.chunksize {
            let _ = writeln!(out, "  New Chunksize : {}K", (sb.new_chunk / 2) as i32);
        }
        out.push(b'\n');
    }
    if sb.devflags != 0 {
        out.extend_from_slice(b"          Flags :");
        if sb.devflags & devflags::WRITE_MOSTLY != 0 {
            out.extend_from_slice(b" write-mostly");
        }
        if sb.devflags & devflags::FAIL_FAST != 0 {
            out.extend_from_slice(b" failfast");
        }
        out.push(b'\n');
    }
    let _ = writeln!(
        out,
        "    Update Time : {}",
        ctime24((sb.utime & 0xff_ffff_ffff) as i64)
    );
    if sb.bblog_size != 0 && sb.bblog_offset != 0 {
        let _ = write!(
            out,
            "  Bad Block Log : {} entries available at offset {} sectors",
            sb.bblog_size as u32 * 512 / 8,
            sb.bblog_offset
        );
        if fm & feature::BAD_BLOCKS != 0 {
            out.extend_from_slice(b" - bad blocks present.");
        }
        out.push(b'\n');
    }
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
    let _ = writeln!(out, "         Events : {}", sb.events);
    out.push(b'\n');
    if level == 0 && fm & feature::RAID0_LAYOUT != 0 {
        let _ = writeln!(
            out,
            "         Layout : {}",
            r0layout(sb.layout).unwrap_or("-unknown-")
        );
    }
    if let Some(words) = layout_words(level, sb.layout) {
        let _ = writeln!(out, "         Layout :{words}");
    }
    match level {
        0 | 4 | 5 | 6 | 10 => {
            let _ = writeln!(out, "     Chunk Size : {}K", (sb.chunksize / 2) as i32);
        }
        0xffff_ffff => {
            let _ = writeln!(out, "       Rounding : {}K", (sb.chunksize / 2) as i32);
        }
        _ => {}
    }
    out.push(b'\n');
    let r = own_role(sb);
    let role_text = if r >= role::FAULTY {
        "spare".to_string()
    } else if r == role::JOURNAL {
        "Journal".to_string()
    } else if fm & feature::REPLACEMENT != 0 {
        format!("Replacement device {r}")
    } else {
        format!("Active device {r}")
    };
    let _ = writeln!(out, "   Device Role : {role_text}");
    out.extend_from_slice(b"   Array State : ");
    let (state, inconsistent) = array_state(sb, delta_extra);
    out.extend_from_slice(state.as_bytes());
    out.extend_from_slice(b" ('A' == active, '.' == missing, 'R' == replacing)\n");
    if inconsistent {
        out.extend_from_slice(
            b"WARNING Array state is inconsistent - each number should appear only once\n",
        );
        for (d, &r) in sb.dev_roles.iter().enumerate() {
            if r >= role::FAULTY {
                let _ = write!(out, " {d}:-");
            } else {
                let _ = write!(out, " {d}:{r}");
            }
        }
        out.push(b'\n');
    }
}

/// The "Array State" letters and whether the roles are inconsistent.
pub(super) fn array_state(sb: &Superblock1, delta_extra: u32) -> (String, bool) {
    let mut count: HashMap<u16, u32> = HashMap::new();
    for &r in &sb.dev_roles {
        *count.entry(r).or_default() += 1;
    }
    let slots = sb.raid_disks.wrapping_add(delta_extra);
    let mut s = String::new();
    let mut inconsistent = false;
    for d in 0..(slots as u64).min(ARRAY_STATE_CAP) {
        let cnt = u16::try_from(d)
            .ok()
            .and_then(|d| count.get(&d).copied())
            .unwrap_or(0);
        s.push(match cnt {
            2 if sb.level != 0 => 'R',
            1 => 'A',
            0 => '.',
            _ => {
                inconsistent = true;
                '?'
            }
        });
    }
    for &r in &sb.dev_roles {
        if r <= role::MAX && r as u32 > slots {
            inconsistent = true;
        }
    }
    (s, inconsistent)
}
