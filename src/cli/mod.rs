//! The `mdfuse` command line.  Each subcommand is a module with its clap
//! arguments (`XxxArgs`) and a `run` returning the exit status; `main.rs`
//! only dispatches.  Messages go to stderr prefixed `mdfuse: ` where mdadm
//! prints `mdadm: `, with mdadm's wording where mdadm has one.

pub mod assemble;
pub mod build;
pub mod create;
pub mod detail;
pub mod examine;
pub mod explain;
pub mod fmt;
pub mod json;
pub mod manage;
pub mod monitor;
pub mod mount;
pub mod probe;
pub mod sha1;
pub mod shape;
pub mod status;
pub mod tree;

use std::process::ExitCode;

/// Exit status for a refused request (bad device, wrong counts, ...).
pub const EXIT_REFUSED: u8 = 1;
/// Exit status for a malformed command line (clap's own errors use it too).
pub const EXIT_USAGE: u8 = 2;

/// A failure to report as one line on stderr, with its exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: u8,
    pub message: String,
}

impl Failure {
    pub fn refused(message: impl Into<String>) -> Failure {
        Failure {
            status: EXIT_REFUSED,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            status: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// Print as `mdfuse: MESSAGE` and give the exit status.
    pub fn report(&self) -> ExitCode {
        eprintln!("mdfuse: {}", self.message);
        ExitCode::from(self.status)
    }
}

/// C's `strtoll(s, &end, 10)`: white space, a sign and digits; the
/// value (held at i64's bounds when it does not fit, as strtoll holds
/// it) and what follows, or None when no digit was read.
fn strtoll(s: &str) -> Option<(i64, &str)> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let v = t[..digits].bytes().fold(0i64, |v, d| {
        let d = i64::from(d - b'0');
        if neg {
            v.saturating_mul(10).saturating_sub(d)
        } else {
            v.saturating_mul(10).saturating_add(d)
        }
    });
    Some((v, &t[digits..]))
}

/// mdadm's `parse_size` exactly: strtoll's number (white space and a
/// sign allowed before it), positive, with an optional suffix K, M, G, T
/// (binary; no suffix means K) or s (512-byte sectors); returns sectors,
/// or None where mdadm returns INVALID_SECTORS (1).  The product wraps
/// as mdadm's `long long` arithmetic does: a number too long for
/// strtoll is LLONG_MAX, and doubled it is a huge size, not a refusal.
pub fn parse_size_mdadm(s: &str) -> Option<u64> {
    let (n, mult) = size_parts(s)?;
    let sectors = n.wrapping_mul(mult) as u64;
    (sectors != 1).then_some(sectors)
}

/// `parse_size_mdadm`, but None also for a number or product past i64,
/// where the callers have no use for mdadm's wrapped value.
pub fn parse_size(s: &str) -> Option<u64> {
    let (n, mult) = size_parts(s)?;
    let sectors = u64::try_from(n.checked_mul(mult)?).ok()?;
    (n < i64::MAX && sectors != 1).then_some(sectors)
}

/// The positive number and the suffix's sectors of a size as mdadm's
/// `parse_size` reads it.
fn size_parts(s: &str) -> Option<(i64, i64)> {
    let (n, rest) = strtoll(s)?;
    if n <= 0 {
        return None;
    }
    let (mult, unit_len) = match rest.as_bytes().first() {
        Some(b'K') => (2, 1),
        Some(b'M') => (2 << 10, 1),
        Some(b'G') => (2 << 20, 1),
        Some(b'T') => (2 << 30, 1),
        Some(b's') => (1, 1),
        _ => (2, 0),
    };
    (rest.len() == unit_len).then_some((n, mult))
}

/// mdadm's `parse_num`: a non-negative decimal that fits an int.
pub fn parse_num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = s.parse().ok()?;
    (n <= i32::MAX as u64).then_some(n as u32)
}

/// mdadm's `parse_uuid`: 32 hex digits, with any of ":. -" between them;
/// the bytes in the order written.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let mut nibbles = Vec::with_capacity(32);
    for c in s.chars() {
        if let Some(d) = c.to_digit(16) {
            nibbles.push(d as u8);
        } else if !":. -".contains(c) {
            return None;
        }
    }
    if nibbles.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in nibbles.chunks_exact(2).enumerate() {
        out[i] = pair[0] << 4 | pair[1];
    }
    Some(out)
}

pub use crate::format::random_uuid;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16M"), Some(32768));
        assert_eq!(parse_size("100"), Some(200));
        assert_eq!(parse_size("100K"), Some(200));
        assert_eq!(parse_size("8s"), Some(8));
        assert_eq!(parse_size("1G"), Some(2 << 20));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("1X"), None);
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("99999999999999999999T"), None);
        assert_eq!(parse_size(" 8M"), Some(16384));
        assert_eq!(parse_size("+5"), Some(10));
        assert_eq!(parse_size("5 "), None);
        assert_eq!(parse_size("+ 5"), None);
        assert_eq!(parse_size("5k"), None);
    }

    #[test]
    fn sizes_as_mdadm() {
        assert_eq!(parse_size_mdadm("1s"), None);
        assert_eq!(parse_size_mdadm("7s"), Some(7));
        assert_eq!(parse_size_mdadm("3"), Some(6));
        assert_eq!(parse_size_mdadm("-5"), None);
        assert_eq!(parse_size_mdadm("\t+8M"), Some(16384));
        // strtoll's LLONG_MAX, doubled in a long long.
        assert_eq!(
            parse_size_mdadm("99999999999999999999"),
            Some(i64::MAX.wrapping_mul(2) as u64)
        );
        assert_eq!(
            parse_size_mdadm("99999999999999999999s"),
            Some(i64::MAX as u64)
        );
        assert_eq!(parse_size_mdadm("-99999999999999999999"), None);
    }

    #[test]
    fn uuids() {
        let u = parse_uuid("7868f761:0f6d997c:92524073:87110f36").unwrap();
        assert_eq!(
            crate::format::uuid_colon(&u),
            "7868f761:0f6d997c:92524073:87110f36"
        );
        assert!(parse_uuid("7868f761-0f6d-997c-9252-407387110f36").is_some());
        assert!(parse_uuid("7868f761").is_none());
        assert!(parse_uuid("zz68f761:0f6d997c:92524073:87110f36").is_none());
    }

    #[test]
    fn nums() {
        assert_eq!(parse_num("2"), Some(2));
        assert_eq!(parse_num("-1"), None);
        assert_eq!(parse_num("x"), None);
        assert_eq!(parse_num("99999999999"), None);
    }
}
