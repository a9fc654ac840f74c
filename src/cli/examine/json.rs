//! The JSON form of what `examine` prints: the same facts, one object per
//! superblock or bitmap.

use super::*;

/// The JSON facts of a v1 superblock (as shown).
pub fn json_super1(
    sb: &Superblock1,
    bitmap: Option<&BitmapSuper>,
    dev_sectors: u64,
    homehost: Option<&str>,
) -> Json {
    let minor = if sb.super_offset <= 4 {
        "1.1"
    } else if sb.super_offset <= 8 {
        "1.2"
    } else {
        "1.0"
    };
    let name = String::from_utf8_lossy(c_str(&sb.set_name)).into_owned();
    let local = homehost.is_some_and(|h| {
        let l = h.len();
        l > 0 && l < 32 && sb.set_name[l] == b':' && &sb.set_name[..l] == h.as_bytes()
    });
    let (before, after) = unused_space(sb, bitmap, dev_sectors);
    let r = own_role(sb);
    let role_json = if r >= role::FAULTY {
        Json::from("spare")
    } else if r == role::JOURNAL {
        Json::from("journal")
    } else {
        Json::from(r)
    };
    let mut flags = Vec::new();
    if sb.devflags & devflags::WRITE_MOSTLY != 0 {
        flags.push(Json::from("write-mostly"));
    }
    if sb.devflags & devflags::FAIL_FAST != 0 {
        flags.push(Json::from("failfast"));
    }
    let level = sb.level as u32;
    let (ddsks, denom) = data_disks(level, sb.raid_disks, sb.layout);
    let array_kib = (level > 0 && ddsks != 0 && denom != 0).then(|| {
        (((sb.size as i64) << 9)
            .wrapping_mul(ddsks)
            .wrapping_div(denom)
            >> 10) as u64
    });
    let calc = sb.compute_csum();
    Json::obj()
        .field("metadata", minor)
        .field("magic", format!("{:08x}", sb.magic))
        .field("feature_map", sb.feature_map)
        .field("array_uuid", uuid_colon(&sb.set_uuid))
        .field("name", name)
        .field("local", local)
        .field("creation_time", sb.ctime & 0xff_ffff_ffff)
        .field(
            "raid_level",
            level_name(sb.level).map_or(Json::from(sb.level), Json::from),
        )
        .field("raid_devices", sb.raid_disks)
        .field("avail_dev_size", sb.data_size)
        .opt("array_size_kib", array_kib)
        .field("used_dev_size", sb.size)
        .field("data_offset", sb.data_offset)
        .field("super_offset", sb.super_offset)
        .opt(
            "recovery_offset",
            sb.has(feature::RECOVERY_OFFSET)
                .then_some(sb.recovery_offset),
        )
        .field(
            "resync_offset",
            if sb.resync_offset == MAX_SECTOR {
                Json::Null
            } else {
                Json::from(sb.resync_offset)
            },
        )
        .opt(
            "unused_space",
            (after != 1).then(|| {
                Json::obj()
                    .field("before", before)
                    .field("after", after)
                    .build()
            }),
        )
        .field(
            "state",
            if sb.resync_offset != MAX_SECTOR {
                "active"
            } else {
                "clean"
            },
        )
        .field("device_uuid", uuid_colon(&sb.device_uuid))
        .field(
            "internal_bitmap_offset",
            sb.bitmap_offset_sectors().map_or(Json::Null, Json::from),
        )
        .field("flags", flags)
        .field("update_time", sb.utime & 0xff_ffff_ffff)
        .opt(
            "bad_block_log",
            (sb.bblog_size != 0 && sb.bblog_offset != 0).then(|| {
                Json::obj()
                    .field("entries", sb.bblog_size as u32 * 512 / 8)
                    .field("offset", sb.bblog_offset)
                    .field("bad_blocks_present", sb.has(feature::BAD_BLOCKS))
                    .build()
            }),
        )
        .field("checksum", format!("{:x}", sb.sb_csum))
        .field("checksum_expected", format!("{calc:x}"))
        .field("checksum_correct", calc == sb.sb_csum)
        .field("events", sb.events)
        .field("dev_number", sb.dev_number)
        .field("device_role", role_json)
        .field("replacement", sb.has(feature::REPLACEMENT))
        .field("array_state", array_state(sb, 0).0)
        .build()
}

/// The JSON facts of a 0.90 superblock (as shown).
pub fn json_super0(sb: &Superblock0, homehost: Option<&str>) -> Json {
    let disk = |d: &Disk0| {
        Json::obj()
            .field("number", d.number)
            .field("major", d.major)
            .field("minor", d.minor)
            .field("raid_device", d.raid_disk)
            .field("state", d.state)
            .build()
    };
    let rows = (sb.raid_disks.wrapping_add(sb.spare_disks) as i32)
        .clamp(0, crate::format::super0::MD_SB_DISKS as i32) as usize;
    Json::obj()
        .field("metadata", "0.90")
        .field("magic", format!("{:08x}", sb.md_magic))
        .field(
            "version",
            format!(
                "{}.{:02}.{:02}",
                sb.major_version as i32, sb.minor_version as i32, sb.patch_version as i32
            ),
        )
        .field(
            "uuid",
            format!(
                "{:08x}:{:08x}:{:08x}:{:08x}",
                sb.set_uuid0, sb.set_uuid1, sb.set_uuid2, sb.set_uuid3
            ),
        )
        .field("local", homehost.is_some_and(|h| is_local_v090(sb, h)))
        .field("creation_time", sb.ctime)
        .field(
            "raid_level",
            level_name(sb.level).map_or(Json::from(sb.level), Json::from),
        )
        .field("used_dev_size_kib", sb.size)
        .field("raid_devices", sb.raid_disks)
        .field("total_devices", sb.nr_disks)
        .field("preferred_minor", sb.md_minor)
        .field("update_time", sb.utime)
        .field(
            "state",
            if sb.state & sb_state::CLEAN != 0 {
                "clean"
            } else {
                "active"
            },
        )
        .field("internal_bitmap", sb.state & sb_state::BITMAP_PRESENT != 0)
        .field("active_devices", sb.active_disks)
        .field("working_devices", sb.working_disks)
        .field("failed_devices", sb.failed_disks)
        .field("spare_devices", sb.spare_disks)
        .field("checksum", format!("{:x}", sb.sb_csum))
        .field("checksum_expected", format!("{:x}", sb.compute_csum()))
        .field("checksum_correct", sb.compute_csum() == sb.sb_csum)
        .field("events", sb.events())
        .field("this", disk(&sb.this_disk))
        .field(
            "devices",
            sb.disks[..rows].iter().map(disk).collect::<Vec<_>>(),
        )
        .build()
}

pub(super) fn json_bitmap(
    name: &str,
    sb: &BitmapSuper,
    uuid_words: bool,
    bits: &BitCount,
    ok: bool,
) -> Json {
    Json::obj()
        .field("device", name)
        .field("magic", format!("{:08x}", sb.magic))
        .field("version", sb.version)
        .field("valid", ok && sb.magic == BITMAP_MAGIC)
        .field("uuid", bitmap_uuid(sb, uuid_words))
        .field("events", sb.events)
        .field("events_cleared", sb.events_cleared)
        .field("state", bitmap_state(sb.state))
        .field("chunksize", sb.chunksize)
        .field("daemon_sleep", sb.daemon_sleep)
        .field("write_behind", sb.write_behind)
        .field("sync_size", sb.sync_size)
        .field("bits", bits.total)
        .field("dirty", bits.dirty)
        .build()
}
