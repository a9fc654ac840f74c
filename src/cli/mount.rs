//! `mdfuse mount MOUNTPOINT`: serve the md tree (see `crate::daemon`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::daemon::{self, DaemonOptions};
use crate::md::MdOptions;

/// Serve a sysfs-like tree of md arrays on MOUNTPOINT.
///
/// `echo md0 > MOUNTPOINT/new_array`, `echo /path/img > md0/md/new_dev`,
/// `echo active > md0/md/array_state` assemble and run an array;
/// `MOUNTPOINT/md0/data` is its contents.  Unmounting (umount,
/// fusermount3 -u) or SIGTERM stops every array cleanly first.
#[derive(Args, Debug)]
pub struct MountArgs {
    /// Where to mount (an existing directory).
    pub mountpoint: PathBuf,
    /// Stay in the foreground; otherwise return once mounted and serve
    /// from a background daemon.
    #[arg(short = 'f', long)]
    pub foreground: bool,
    /// Threads serving requests: as many requests are served at once
    /// (a loop device or a guest keeps 16 to 128 in flight).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
    /// Let other users see the tree (FUSE allow_other; writing still
    /// needs the mounting user, or root).
    #[arg(long)]
    pub allow_other: bool,
    /// System-wide minimum resync speed, KiB/s (/proc/sys/dev/raid/speed_limit_min).
    #[arg(long, default_value_t = 1000)]
    pub speed_limit_min: u32,
    /// System-wide maximum resync speed, KiB/s (/proc/sys/dev/raid/speed_limit_max).
    #[arg(long, default_value_t = 200_000)]
    pub speed_limit_max: u32,
    /// A personality's module parameter, as on the kernel's command line
    /// (e.g. raid0.default_layout=2); repeatable.  Also at the mount's
    /// root as PERSONALITY_NAME (raid0_default_layout).
    #[arg(long = "param", value_name = "PERS.NAME=VALUE")]
    pub params: Vec<String>,
    /// Directory for the arrays' NBD export sockets (MDN.sock; MDN/nbd
    /// reads the URI).  Default: one of the daemon's own under
    /// $XDG_RUNTIME_DIR, /run (root) or the temporary directory.
    #[arg(long, value_name = "DIR")]
    pub nbd_dir: Option<PathBuf>,
    /// How buffered opens of mdN/data are served: `none`, every read and
    /// write reaches md as it is made; `writethrough`, reads through the
    /// page cache (cached, read ahead) and every write reaching md before
    /// it returns; `writeback`, through the page cache, written back later
    /// as a block device's (errors then surface at fsync or close; a write
    /// past the end fails only there).  O_DIRECT opens reach md per
    /// request in every mode.
    #[arg(long, value_enum, default_value_t = DataCache::None)]
    pub data_cache: DataCache,
}

/// `--data-cache`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataCache {
    None,
    Writethrough,
    Writeback,
}

pub fn run(args: MountArgs) -> ExitCode {
    let opts = DaemonOptions {
        mountpoint: args.mountpoint,
        foreground: args.foreground,
        threads: args.threads as usize,
        allow_other: args.allow_other,
        params: args.params,
        nbd_dir: args.nbd_dir,
        page_cache: match args.data_cache {
            DataCache::None => sysfs_like::PageCache::Off,
            DataCache::Writethrough => sysfs_like::PageCache::WriteThrough,
            DataCache::Writeback => sysfs_like::PageCache::WriteBack,
        },
        md: MdOptions {
            speed_limit_min: args.speed_limit_min.max(1),
            speed_limit_max: args.speed_limit_max.max(1),
        },
    };
    match daemon::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::Failure::refused(e.to_string()).report(),
    }
}
