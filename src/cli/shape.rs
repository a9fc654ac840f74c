//! The shape options of `create` as mdadm reads them: `--level`,
//! `--chunk` (`--rounding`), `--layout` (`--parity`), and the defaults
//! and refusals mdadm 4.2 applies to each level (mdadm.c's option parsing,
//! `Create`'s `default_layout` and chunk rules, maps.c's layout names).

use super::{Failure, parse_size};
use crate::raid5::geometry as r5;

/// The levels `create` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Linear,
    Raid0,
    Raid1,
    Raid4,
    Raid5,
    Raid6,
    Raid10,
}

impl Level {
    /// mdadm's `pers[]` names: what `--level` accepts.  The levels mdfuse
    /// does not create are refused with their own message.
    pub fn parse(s: &str) -> Result<Level, Failure> {
        match s {
            "linear" | "-1" => Ok(Level::Linear),
            "raid0" | "0" | "stripe" => Ok(Level::Raid0),
            "raid1" | "1" | "mirror" => Ok(Level::Raid1),
            "raid4" | "4" => Ok(Level::Raid4),
            "raid5" | "5" => Ok(Level::Raid5),
            "raid6" | "6" => Ok(Level::Raid6),
            "raid10" | "10" => Ok(Level::Raid10),
            "multipath" | "mp" | "faulty" | "container" => Err(Failure::usage(format!(
                "raid level {s} is not supported: mdfuse creates linear, raid0, raid1, \
                 raid4, raid5, raid6 and raid10 arrays"
            ))),
            _ => Err(Failure::usage(format!("invalid raid level: {s}"))),
        }
    }

    /// The number md keeps in the superblock's `level`.
    pub fn number(self) -> i32 {
        match self {
            Level::Linear => -1,
            Level::Raid0 => 0,
            Level::Raid1 => 1,
            Level::Raid4 => 4,
            Level::Raid5 => 5,
            Level::Raid6 => 6,
            Level::Raid10 => 10,
        }
    }

    /// mdadm's `map_num(pers, level)`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Linear => "linear",
            Level::Raid0 => "raid0",
            Level::Raid1 => "raid1",
            Level::Raid4 => "raid4",
            Level::Raid5 => "raid5",
            Level::Raid6 => "raid6",
            Level::Raid10 => "raid10",
        }
    }

    /// The parity levels, which the raid456 personality runs.
    pub fn parity(self) -> bool {
        matches!(self, Level::Raid4 | Level::Raid5 | Level::Raid6)
    }

    /// Levels without redundancy (mdadm's `level <= 0`): no spares, no
    /// missing members, no bitmap, and created clean.
    pub fn striped_only(self) -> bool {
        matches!(self, Level::Linear | Level::Raid0)
    }
}

/// mdadm's refusal of `--raid-devices=1` without `--force` (mdadm.c).
pub const ONE_DRIVE: &str = "'1' is an unusual number of drives for an array, so it is probably\n     \
     a mistake.  If you really mean it you will need to specify --force before\n     \
     setting the number of drives.";

/// RAID0's multi-zone layouts (`RAID0_ORIG_LAYOUT`, `RAID0_ALT_MULTIZONE_LAYOUT`).
pub const RAID0_ORIG_LAYOUT: u32 = 1;

/// mdadm's default chunk for striped levels, KiB (`DEFAULT_CHUNK`).
pub const DEFAULT_CHUNK_KIB: u64 = 512;

/// `--chunk` as mdadm.c parses it: a size of at least 4 KiB in whole
/// KiB; returns KiB.
pub fn parse_chunk(s: &str) -> Result<u64, Failure> {
    match parse_size(s) {
        Some(sectors) if sectors >= 8 && sectors % 2 == 0 => Ok(sectors / 2),
        _ => Err(Failure::usage(format!("invalid chunk/rounding value: {s}"))),
    }
}

/// The chunk in KiB for `level`: the given one, mdadm's default, or the
/// refusal.  Linear keeps 0 ("rounding" is only what was asked).
pub fn chunk_for(level: Level, given: Option<u64>) -> Result<u64, Failure> {
    match (level, given) {
        (Level::Raid1, Some(_)) => Err(Failure::refused(
            "specifying chunk size is forbidden for this level",
        )),
        (Level::Raid1, None) | (Level::Linear, None) => Ok(0),
        (Level::Linear, Some(c)) => Ok(c),
        (Level::Raid0 | Level::Raid4 | Level::Raid5 | Level::Raid6 | Level::Raid10, c) => {
            Ok(c.unwrap_or(DEFAULT_CHUNK_KIB))
        }
    }
}

/// `--layout` for `level` as mdadm.c parses it, or the level's default
/// (`default_layout`: RAID0 original, RAID10 n2, RAID5 and RAID6
/// left-symmetric, else 0).  RAID4 takes no layout: md places its parity
/// on the last member whatever the word says, and mdadm records 0.
pub fn layout_for(level: Level, given: Option<&str>) -> Result<u32, Failure> {
    match (level, given) {
        (Level::Raid0, None) => Ok(RAID0_ORIG_LAYOUT),
        (Level::Raid10, None) => Ok(0x102),
        (Level::Raid5 | Level::Raid6, None) => Ok(r5::LEFT_SYMMETRIC as u32),
        (Level::Linear | Level::Raid1 | Level::Raid4, None) => Ok(0),
        (Level::Linear | Level::Raid1 | Level::Raid4, Some(_)) => Err(Failure::usage(format!(
            "layout not meaningful for {} arrays.",
            level.name()
        ))),
        (Level::Raid0, Some(s)) => match s {
            "original" | "1" => Ok(1),
            "alternate" | "2" => Ok(2),
            "dangerous" => Ok(0),
            _ => Err(Failure::usage(format!(
                "layout {s} not understood for raid0."
            ))),
        },
        (Level::Raid5, Some(s)) => r5_layout(s)
            .map(|l| l as u32)
            .ok_or_else(|| Failure::usage(format!("layout {s} not understood for raid5."))),
        (Level::Raid6, Some(s)) => r6_layout(s)
            .map(|l| l as u32)
            .ok_or_else(|| Failure::usage(format!("layout {s} not understood for raid6."))),
        (Level::Raid10, Some(s)) => parse_layout_10(s).ok_or_else(|| {
            Failure::usage(format!(
                "layout for raid10 must be 'nNN', 'oNN' or 'fNN' where NN is a number, not {s}"
            ))
        }),
    }
}

/// maps.c's `r5layout`: the names mdadm gives RAID5's algorithms.  The
/// DDF names are RAID5's own rotations under DDF's words.
pub fn r5_layout(s: &str) -> Option<i32> {
    Some(match s {
        "left-asymmetric" | "la" | "ddf-N-restart" => r5::LEFT_ASYMMETRIC,
        "right-asymmetric" | "ra" | "ddf-zero-restart" => r5::RIGHT_ASYMMETRIC,
        "left-symmetric" | "ls" | "default" | "ddf-N-continue" => r5::LEFT_SYMMETRIC,
        "right-symmetric" | "rs" => r5::RIGHT_SYMMETRIC,
        "parity-first" => r5::PARITY_0,
        "parity-last" => r5::PARITY_N,
        _ => return None,
    })
}

/// maps.c's `r6layout`: RAID5's names, DDF's own rotations, and the
/// `-6` layouts (a RAID5 layout with Q on the last member).
pub fn r6_layout(s: &str) -> Option<i32> {
    Some(match s {
        "ddf-zero-restart" => r5::ROTATING_ZERO_RESTART,
        "ddf-N-restart" => r5::ROTATING_N_RESTART,
        "ddf-N-continue" => r5::ROTATING_N_CONTINUE,
        "left-asymmetric-6" => r5::LEFT_ASYMMETRIC_6,
        "right-asymmetric-6" => r5::RIGHT_ASYMMETRIC_6,
        "left-symmetric-6" => r5::LEFT_SYMMETRIC_6,
        "right-symmetric-6" => r5::RIGHT_SYMMETRIC_6,
        "parity-first-6" => r5::PARITY_0_6,
        _ => return r5_layout(s),
    })
}

/// mdadm's `parse_layout_10`: `n`, `f` or `o` and a number of copies
/// from 1 to 200.
pub fn parse_layout_10(s: &str) -> Option<u32> {
    let kind = s.chars().next()?;
    let digits = &s[kind.len_utf8()..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let copies: u32 = digits.parse().ok().filter(|c| (1..=200).contains(c))?;
    match kind {
        'n' => Some(256 + copies),
        'o' => Some(0x10000 + (copies << 8) + 1),
        'f' => Some(1 + (copies << 8)),
        _ => None,
    }
}

/// Copies of each block a RAID10 layout keeps: near × far.
pub fn raid10_copies(layout: u32) -> u64 {
    u64::from(layout & 255) * u64::from((layout >> 8) & 255)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raid10_layouts_as_mdadm_numbers_them() {
        assert_eq!(parse_layout_10("n2"), Some(0x102));
        assert_eq!(parse_layout_10("f2"), Some(0x201));
        assert_eq!(parse_layout_10("o2"), Some(0x10201));
        assert_eq!(parse_layout_10("n3"), Some(0x103));
        assert_eq!(parse_layout_10("n0"), None);
        assert_eq!(parse_layout_10("n201"), None);
        assert_eq!(parse_layout_10("x2"), None);
        assert_eq!(parse_layout_10("n+2"), None);
        assert_eq!(parse_layout_10("n"), None);
        assert_eq!(parse_layout_10("é2"), None);
        assert_eq!(raid10_copies(0x10201), 2);
        assert_eq!(raid10_copies(0x102), 2);
    }

    #[test]
    fn parity_layouts_as_maps_c_names_them() {
        assert_eq!(layout_for(Level::Raid5, None).ok(), Some(2));
        assert_eq!(layout_for(Level::Raid6, None).ok(), Some(2));
        assert_eq!(layout_for(Level::Raid4, None).ok(), Some(0));
        assert!(layout_for(Level::Raid4, Some("parity-last")).is_err());
        assert_eq!(layout_for(Level::Raid5, Some("ra")).ok(), Some(1));
        assert_eq!(
            layout_for(Level::Raid5, Some("ddf-zero-restart")).ok(),
            Some(1)
        );
        assert_eq!(
            layout_for(Level::Raid6, Some("ddf-zero-restart")).ok(),
            Some(8)
        );
        assert_eq!(
            layout_for(Level::Raid6, Some("parity-first-6")).ok(),
            Some(20)
        );
        assert_eq!(layout_for(Level::Raid6, Some("parity-last")).ok(), Some(5));
        // No parity-last-6 in mdadm's table: it is parity-last.
        assert!(layout_for(Level::Raid6, Some("parity-last-6")).is_err());
        assert!(layout_for(Level::Raid5, Some("left-symmetric-6")).is_err());
        assert!(layout_for(Level::Raid5, Some("2")).is_err());
        assert!(layout_for(Level::Raid5, Some("LS")).is_err());
        for l in 0..32 {
            let named5 = ["la", "ra", "ls", "rs", "parity-first", "parity-last"]
                .iter()
                .any(|n| r5_layout(n) == Some(l));
            assert_eq!(named5, r5::algorithm_valid_raid5(l), "raid5 layout {l}");
            let named6 = [
                "la",
                "ra",
                "ls",
                "rs",
                "parity-first",
                "parity-last",
                "ddf-zero-restart",
                "ddf-N-restart",
                "ddf-N-continue",
                "left-asymmetric-6",
                "right-asymmetric-6",
                "left-symmetric-6",
                "right-symmetric-6",
                "parity-first-6",
            ]
            .iter()
            .any(|n| r6_layout(n) == Some(l));
            assert_eq!(named6, r5::algorithm_valid_raid6(l), "raid6 layout {l}");
        }
    }

    #[test]
    fn chunks_as_mdadm_parses_them() {
        assert_eq!(parse_chunk("64").ok(), Some(64));
        assert_eq!(parse_chunk("1M").ok(), Some(1024));
        assert_eq!(parse_chunk("8s").ok(), Some(4));
        assert!(parse_chunk("2").is_err());
        assert!(parse_chunk("9s").is_err());
        assert!(parse_chunk("x").is_err());
    }
}
