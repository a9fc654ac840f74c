//! mdadm's ways of printing numbers and times (util.c `human_size`,
//! bitmap.c `human_chunksize`, libc `ctime`), reproduced character for
//! character, overflow behaviour included.

use std::sync::Once;

/// `human_size`: "" below 5000 KiB, else " (x.yz MiB x.yz MB)", switching
/// to GiB/GB at 2 GiB and TiB/TB at 2 TiB.  Arithmetic is on signed 64-bit
/// values as in mdadm (which wraps on absurd sizes).
pub fn human_size(bytes: i64) -> String {
    let (unit_bin, unit_dec, shift, dec_div): (&str, &str, u32, i64) = if bytes < 5000 * 1024 {
        return String::new();
    } else if bytes < 2 * (1 << 30) {
        ("MiB", "MB", 20, 1_000_000 / 200)
    } else if bytes < 2 * (1 << 40) {
        ("GiB", "GB", 30, 1_000_000_000 / 200)
    } else {
        ("TiB", "TB", 40, 1_000_000_000_000 / 200)
    };
    let c_bin = (bytes.wrapping_mul(200) / (1i64 << shift) + 1) / 2;
    let c_dec = (bytes / dec_div + 1) / 2;
    format!(
        " ({}.{:02} {unit_bin} {}.{:02} {unit_dec})",
        c_bin / 100,
        c_bin % 100,
        c_dec / 100,
        c_dec % 100
    )
}

/// `human_chunksize`: "64 MB" for 64 MiB (binary steps, decimal-looking
/// suffixes, as mdadm prints them).
pub fn human_chunksize(mut bytes: u64) -> String {
    const SUFFIXES: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut i = 0;
    while bytes >> 10 != 0 && i < SUFFIXES.len() - 1 {
        bytes >>= 10;
        i += 1;
    }
    format!("{bytes} {}", SUFFIXES[i])
}

unsafe extern "C" {
    fn tzset();
}

/// `printf("%.24s", ctime(&t))`: local time as "Sat Nov 21 09:37:50 2026"
/// (glibc's asctime layout, cut to 24 characters), or "(null)" when the
/// time cannot be converted.
pub fn ctime24(t: i64) -> String {
    static TZ: Once = Once::new();
    // SAFETY: tzset only reads the TZ environment variable and initialises
    // libc's time zone state; Once keeps it to a single call.
    TZ.call_once(|| unsafe { tzset() });
    let tt: libc::time_t = t;
    // SAFETY: an all-zero `tm` is a valid value (integers and a null
    // tm_zone pointer).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers refer to live locals of the right types;
    // localtime_r writes only into `tm`.
    let r = unsafe { libc::localtime_r(&tt, &mut tm) };
    if r.is_null() {
        return "(null)".to_string();
    }
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day = usize::try_from(tm.tm_wday)
        .ok()
        .and_then(|i| DAYS.get(i))
        .unwrap_or(&"???");
    let mon = usize::try_from(tm.tm_mon)
        .ok()
        .and_then(|i| MONTHS.get(i))
        .unwrap_or(&"???");
    let s = format!(
        "{day} {mon}{:3} {:02}:{:02}:{:02} {}",
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        tm.tm_year as i64 + 1900
    );
    s.chars().take(24).collect()
}

/// The local host name (`gethostname`), as mdadm's default homehost.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname writes
    // at most that many bytes.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return None;
    }
    buf[buf.len() - 1] = 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// mdadm's homehost: `--homehost` if given, `<system>` meaning this host;
/// none for `<none>` or an empty name.
pub fn homehost(given: Option<&str>) -> Option<String> {
    let h = match given {
        None => hostname()?,
        Some(s) if s.eq_ignore_ascii_case("<system>") => hostname()?,
        Some(s) => s.to_string(),
    };
    if h.is_empty() || h.eq_ignore_ascii_case("<none>") {
        None
    } else {
        Some(h)
    }
}

/// `printf("%2.1f", x)`.
pub fn percent(dirty: u64, total: u64) -> String {
    let pct = 100.0 * dirty as f64 / total.max(1) as f64;
    format!("{pct:3.1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_mdadm() {
        assert_eq!(human_size(4096), "");
        assert_eq!(human_size(30720 << 9), " (15.00 MiB 15.73 MB)");
        assert_eq!(human_size(32736 << 9), " (15.98 MiB 16.76 MB)");
        assert_eq!(human_size(407552 << 9), " (199.00 MiB 208.67 MB)");
        assert_eq!(human_size(3 << 30), " (3.00 GiB 3.22 GB)");
        assert_eq!(human_size(5 << 40), " (5.00 TiB 5.50 TB)");
        assert_eq!(human_chunksize(64 << 20), "64 MB");
        assert_eq!(human_chunksize(512), "512 B");
    }

    #[test]
    fn percent_as_printf() {
        assert_eq!(percent(0, 0), "0.0");
        assert_eq!(percent(1, 1), "100.0");
        assert_eq!(percent(1, 3), "33.3");
    }
}
