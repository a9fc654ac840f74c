//! The kernel's message log: every message md prints goes to a bounded ring
//! (served as the tree's `log` file, oldest first, `dmesg` style with a
//! timestamp) and to stderr through the `log` crate.

use std::collections::VecDeque;
use std::time::Instant;

use parking_lot::Mutex;

/// Lines kept; older ones are dropped.
const KEEP: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Err,
    Warn,
    Info,
    Debug,
}

#[derive(Debug)]
pub struct KernelLog {
    start: Instant,
    lines: Mutex<VecDeque<String>>,
}

impl Default for KernelLog {
    fn default() -> Self {
        KernelLog {
            start: Instant::now(),
            lines: Mutex::new(VecDeque::new()),
        }
    }
}

impl KernelLog {
    /// Record one message (it may hold several lines, as the kernel's
    /// multi-line printks do).
    pub fn msg(&self, level: Level, text: &str) {
        match level {
            Level::Err => log::error!("{text}"),
            Level::Warn => log::warn!("{text}"),
            Level::Info => log::info!("{text}"),
            Level::Debug => {
                log::debug!("{text}");
                return;
            }
        }
        let t = self.start.elapsed();
        let mut lines = self.lines.lock();
        for l in text.lines() {
            if lines.len() == KEEP {
                lines.pop_front();
            }
            lines.push_back(format!("[{:5}.{:06}] {l}", t.as_secs(), t.subsec_micros()));
        }
    }

    pub fn warn(&self, text: impl AsRef<str>) {
        self.msg(Level::Warn, text.as_ref())
    }

    pub fn info(&self, text: impl AsRef<str>) {
        self.msg(Level::Info, text.as_ref())
    }

    pub fn err(&self, text: impl AsRef<str>) {
        self.msg(Level::Err, text.as_ref())
    }

    /// Every kept line, oldest first, each ending in a newline.
    pub fn contents(&self) -> String {
        let lines = self.lines.lock();
        let mut s = String::with_capacity(lines.len() * 64);
        for l in lines.iter() {
            s.push_str(l);
            s.push('\n');
        }
        s
    }

    /// Lines matching `needle`, for tests and the CLI.
    pub fn grep(&self, needle: &str) -> Vec<String> {
        self.lines
            .lock()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }
}
