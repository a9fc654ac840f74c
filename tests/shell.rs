//! Runs the shell-driven tests in tests/shell/, one #[test] each: they
//! mount mdfuse, drive it with `echo` and `cat`, and compare with what real
//! Linux md does (fixtures and the oracle).

mod common;

use std::path::Path;
use std::process::Command;

fn run_script(name: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/shell").join(name);
    let shared = common::shared_dir();
    let status = Command::new("bash")
        .arg(&script)
        .env("MDFUSE", env!("CARGO_BIN_EXE_mdfuse"))
        .env("SHARED", &shared)
        .status()
        .expect("running bash");
    assert!(status.success(), "{name} failed ({status})");
}

macro_rules! shell_tests {
    ($($t:ident),* $(,)?) => {
        $(
            #[test]
            fn $t() {
                run_script(concat!(stringify!($t), ".sh"));
            }
        )*
    };
}

shell_tests!(
    fixtures_assemble,
    striped,
    raid10,
    raid10_faults,
    raid10_sync,
    raid10_layouts,
    parity,
    parity_sync,
    parity_write,
    parity_layouts,
    parity_faults,
    parity_crash,
    parity_replace,
    data_placement,
    data_modes,
    data_loop,
    data_fio_write_faults,
    data_fio_read_faults,
    data_fio_shrink,
    data_fio_enospc,
    data_fio_queue,
    data_discard,
    data_cache,
    data_cache_wt,
    tree_bad_ops,
    nbd_member,
    nbd_readd,
    nbd_export,
    write_behind,
    nested,
    current_superblocks,
    data_bad_offset,
    data_bitmap,
    data_crash,
    crash_loop,
    sync_fixtures,
    sync_mismatch,
    sync_recovery,
    sync_controls,
    sync_fio,
    sync_crash,
    sync_replace,
    mdadm_01replace,
    stop_reassemble,
    array_state,
    member_state,
    geometry,
    member_block,
    bad_input,
    damaged_superblock,
    run_path,
    mount,
    cli_detail,
    cli_manage,
    cli_member_flags,
    cli_assemble,
    build,
    cli_monitor,
    cli_monitor_alerts,
    cli_explain,
    grow_size,
    cli_grow,
);
