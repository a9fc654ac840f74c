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

/// mdadm's `parse_size`: a positive number with an optional suffix K, M,
/// G, T (binary; no suffix means K) or s (512-byte sectors); returns
/// sectors, or None when malformed.
pub fn parse_size(s: &str) -> Option<u64> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n: u64 = s[..digits].parse().ok()?;
    if n == 0 {
        return None;
    }
    let mult: u64 = match &s[digits..] {
        "" | "K" => 2,
        "M" => 2 << 10,
        "G" => 2 << 20,
        "T" => 2 << 30,
        "s" => 1,
        _ => return None,
    };
    n.checked_mul(mult)
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
