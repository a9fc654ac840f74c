//! The kernel's string parsers (lib/kstrtox.c, lib/vsprintf.c and md.c's
//! own), with their errnos: what md and its sysfs rows use to read numbers
//! and words.  Below md, so that md and the tree share one set.  Input
//! arrives with one trailing newline already removed (the tree does that,
//! as the kernel's `kstrto*` and `cmd_match` accept one).

use crate::errno::Errno;

/// `kstrtoull(s, 10)`: optional `+`, decimal digits, nothing else.
/// ERANGE on overflow, EINVAL otherwise.
pub fn kstrtoull(s: &str) -> Result<u64, Errno> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Errno::EINVAL);
    }
    let mut v: u64 = 0;
    for b in digits.bytes() {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((b - b'0') as u64))
            .ok_or(Errno::ERANGE)?;
    }
    Ok(v)
}

/// `kstrtouint`.
pub fn kstrtouint(s: &str) -> Result<u32, Errno> {
    let v = kstrtoull(s)?;
    u32::try_from(v).map_err(|_| Errno::ERANGE)
}

/// `kstrtol(s, 10)`: optional sign.
pub fn kstrtol(s: &str) -> Result<i64, Errno> {
    if let Some(rest) = s.strip_prefix('-') {
        let v = kstrtoull(rest.strip_prefix('+').map_or(rest, |_| "x"))?;
        if v > i64::MAX as u64 + 1 {
            return Err(Errno::ERANGE);
        }
        return Ok((v as i64).wrapping_neg());
    }
    let v = kstrtoull(s)?;
    i64::try_from(v).map_err(|_| Errno::ERANGE)
}

/// `kstrtoint`.
pub fn kstrtoint(s: &str) -> Result<i32, Errno> {
    let v = kstrtol(s)?;
    i32::try_from(v).map_err(|_| Errno::ERANGE)
}

/// `kstrtobool`: y/Y/t/T/1/on true, n/N/f/F/0/off false (by the first
/// letters, so `true`, `false`, `yes` and `no` work too).
pub fn kstrtobool(s: &str) -> Result<bool, Errno> {
    let b = s.as_bytes();
    match b.first() {
        Some(b'y' | b'Y' | b't' | b'T' | b'1') => Ok(true),
        Some(b'n' | b'N' | b'f' | b'F' | b'0') => Ok(false),
        Some(b'o' | b'O') => match b.get(1) {
            Some(b'n' | b'N') => Ok(true),
            Some(b'f' | b'F') => Ok(false),
            _ => Err(Errno::EINVAL),
        },
        _ => Err(Errno::EINVAL),
    }
}

/// `cmd_match`: exact word (the newline is already gone).
pub fn cmd_match(s: &str, word: &str) -> bool {
    s == word
}

/// `strict_strtoul_scaled(s, scale)`: digits with at most one `.`,
/// returned multiplied by 10^scale.  As md.c's: digits past `scale`
/// decimals are ignored, nothing at all reads as 0, and the arithmetic
/// wraps (an unsigned long).  The newline it allows is already gone.
pub fn strict_strtoul_scaled(s: &str, scale: u32) -> Result<u64, Errno> {
    let mut result: u64 = 0;
    let mut decimals: i64 = -1;
    let mut rest = s.as_bytes();
    while let Some((&c, tail)) = rest.split_first() {
        if c == b'.' && decimals < 0 {
            decimals = 0;
        } else if c.is_ascii_digit() {
            if decimals < scale as i64 {
                result = result.wrapping_mul(10).wrapping_add((c - b'0') as u64);
                if decimals >= 0 {
                    decimals += 1;
                }
            }
        } else {
            break;
        }
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(Errno::EINVAL);
    }
    let decimals = decimals.max(0) as u32;
    Ok(result.wrapping_mul(10u64.wrapping_pow(scale - decimals)))
}

/// `strict_blocks_to_sectors`: KiB to sectors, EINVAL on overflow.
pub fn strict_blocks_to_sectors(s: &str) -> Result<u64, Errno> {
    let blocks = kstrtoull(s).map_err(|_| Errno::EINVAL)?;
    blocks.checked_mul(2).ok_or(Errno::EINVAL)
}

/// `simple_strtoul(s, &end, 10)`: the leading digits (0 if none) and the
/// rest of the string.
pub fn simple_strtoul(s: &str) -> (u64, &str) {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let v = s[..end].bytes().fold(0u64, |v, b| {
        v.wrapping_mul(10).wrapping_add((b - b'0') as u64)
    });
    (v, &s[end..])
}

/// `proc_dointvec` writing one int, as a sysctl such as
/// /proc/sys/dev/raid/speed_limit_min takes it: leading white space
/// (`isspace`), an optional `-`, a number in C's bases (`0x` hex, a
/// leading `0` octal), which with its sign must be shorter than 21
/// bytes, then nothing or a space, tab or newline, after which the rest
/// is ignored; the value within an int.  EINVAL for everything else, an
/// empty value included.
pub fn proc_dointvec(s: &str) -> Result<i32, Errno> {
    let b = s.as_bytes();
    // The kernel's isspace: \t \n \v \f \r and space.
    let start = b
        .iter()
        .position(|&c| !matches!(c, b'\t'..=b'\r' | b' '))
        .ok_or(Errno::EINVAL)?;
    let rest = &b[start..];
    // proc_get_long looks at the first TMPBUFLEN - 1 = 21 bytes.
    let tmp = &rest[..rest.len().min(21)];
    let neg = tmp[0] == b'-' && rest.len() > 1;
    let num = &tmp[neg as usize..];
    if !num.first().is_some_and(u8::is_ascii_digit) {
        return Err(Errno::EINVAL);
    }
    // strtoul_lenient(base 0): _parse_integer_fixup_radix, then digits.
    let (base, skip) = match num {
        [b'0', x, h, ..] if x | 0x20 == b'x' && h.is_ascii_hexdigit() => (16, 2),
        [b'0', ..] => (8, 0),
        _ => (10, 0),
    };
    let mut v: u64 = 0;
    let mut used = skip;
    for &c in &num[skip..] {
        let Some(d) = (c as char).to_digit(base) else {
            break;
        };
        v = v
            .checked_mul(base as u64)
            .and_then(|v| v.checked_add(d as u64))
            .ok_or(Errno::EINVAL)?;
        used += 1;
    }
    let len = neg as usize + used;
    if len == 21 {
        return Err(Errno::EINVAL);
    }
    if len < rest.len() && !matches!(rest[len], b' ' | b'\t' | b'\n') {
        return Err(Errno::EINVAL);
    }
    // do_proc_dointvec_conv.
    if neg {
        if v > i32::MAX as u64 + 1 {
            return Err(Errno::EINVAL);
        }
        Ok((v as i64).wrapping_neg() as i32)
    } else {
        i32::try_from(v).map_err(|_| Errno::EINVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kstrto() {
        assert_eq!(kstrtoull("42"), Ok(42));
        assert_eq!(kstrtoull("+42"), Ok(42));
        assert_eq!(kstrtoull("-1"), Err(Errno::EINVAL));
        assert_eq!(kstrtoull(""), Err(Errno::EINVAL));
        assert_eq!(kstrtoull("4 2"), Err(Errno::EINVAL));
        assert_eq!(kstrtoull("99999999999999999999"), Err(Errno::ERANGE));
        assert_eq!(kstrtouint("4294967296"), Err(Errno::ERANGE));
        assert_eq!(kstrtol("-5"), Ok(-5));
        assert_eq!(kstrtoint("-2147483649"), Err(Errno::ERANGE));
        assert_eq!(kstrtobool("on"), Ok(true));
        assert_eq!(kstrtobool("off"), Ok(false));
        assert_eq!(kstrtobool("yes"), Ok(true));
        assert_eq!(kstrtobool("true"), Ok(true));
        assert_eq!(kstrtobool("F"), Ok(false));
        assert_eq!(kstrtobool("of"), Ok(false));
        assert_eq!(kstrtobool("o"), Err(Errno::EINVAL));
        assert_eq!(kstrtobool("2"), Err(Errno::EINVAL));
    }

    #[test]
    fn dointvec() {
        assert_eq!(proc_dointvec("1000"), Ok(1000));
        assert_eq!(proc_dointvec(" \t1"), Ok(1));
        assert_eq!(proc_dointvec("1 "), Ok(1));
        assert_eq!(proc_dointvec("1 2"), Ok(1));
        assert_eq!(proc_dointvec("1\n\n"), Ok(1));
        assert_eq!(proc_dointvec("-1"), Ok(-1));
        assert_eq!(proc_dointvec("-0"), Ok(0));
        assert_eq!(proc_dointvec("0x10"), Ok(16));
        assert_eq!(proc_dointvec("0X1f"), Ok(31));
        assert_eq!(proc_dointvec("010"), Ok(8));
        assert_eq!(proc_dointvec("0"), Ok(0));
        assert_eq!(proc_dointvec("2147483647"), Ok(i32::MAX));
        assert_eq!(proc_dointvec("-2147483648"), Ok(i32::MIN));
        assert_eq!(proc_dointvec("000000000000000000001"), Err(Errno::EINVAL));
        assert_eq!(proc_dointvec("00000000000000000001"), Ok(1));
        for bad in [
            "",
            " ",
            "\n",
            "-",
            "+1",
            "1\r",
            "1x",
            "1.5",
            "0x",
            "08",
            "--1",
            "- 1",
            "2147483648",
            "-2147483649",
            "99999999999999999999",
            "none",
        ] {
            assert_eq!(proc_dointvec(bad), Err(Errno::EINVAL), "{bad:?}");
        }
    }

    #[test]
    fn scaled() {
        assert_eq!(strict_strtoul_scaled("0.204", 3), Ok(204));
        assert_eq!(strict_strtoul_scaled("1", 3), Ok(1000));
        assert_eq!(strict_strtoul_scaled("1.5", 3), Ok(1500));
        assert_eq!(strict_strtoul_scaled(".5", 3), Ok(500));
        assert_eq!(strict_strtoul_scaled("0.2041", 3), Ok(204));
        assert_eq!(strict_strtoul_scaled("", 3), Ok(0));
        assert_eq!(strict_strtoul_scaled("1.", 3), Ok(1000));
        assert_eq!(strict_strtoul_scaled("18446744073709551616", 3), Ok(0));
        assert_eq!(strict_strtoul_scaled("1.5.", 3), Err(Errno::EINVAL));
        assert_eq!(strict_strtoul_scaled("\n", 3), Err(Errno::EINVAL));
        assert_eq!(strict_strtoul_scaled("abc", 3), Err(Errno::EINVAL));
        assert_eq!(strict_strtoul_scaled("-1", 3), Err(Errno::EINVAL));
    }
}
