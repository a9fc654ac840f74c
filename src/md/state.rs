//! What an array is doing, in md's words, and the machines behind writing
//! them: `enum array_state` with md.c's `array_states[]` and
//! `array_state_store`, and the sync actions (`action_show`,
//! `action_store`).  The tree only parses a word and calls here.

use std::sync::Arc;

use super::flags::{mddev as mf, recovery as rec, sb as sbf};
use super::run::{self, StopMode};
use super::{Config, Errno, Mddev, ro};
use crate::kstr::cmd_match;

/// `enum array_state`, in md.c's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayState {
    Clear,
    Inactive,
    Suspended,
    Readonly,
    ReadAuto,
    Clean,
    Active,
    WritePending,
    ActiveIdle,
    Broken,
}

impl ArrayState {
    const ALL: [ArrayState; 10] = [
        ArrayState::Clear,
        ArrayState::Inactive,
        ArrayState::Suspended,
        ArrayState::Readonly,
        ArrayState::ReadAuto,
        ArrayState::Clean,
        ArrayState::Active,
        ArrayState::WritePending,
        ArrayState::ActiveIdle,
        ArrayState::Broken,
    ];

    /// `array_states[]`: each state's word, indexed by the enum.
    const NAMES: [&'static str; 10] = [
        "clear",
        "inactive",
        "suspended",
        "readonly",
        "read-auto",
        "clean",
        "active",
        "write-pending",
        "active-idle",
        "broken",
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// `match_word(page, array_states)`: the state a written word names.
    pub fn match_word(s: &str) -> Option<ArrayState> {
        Self::ALL.into_iter().find(|st| cmd_match(s, st.name()))
    }
}

impl std::fmt::Display for ArrayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `enum sync_action`, in the kernel's order (6.11's `action_name[]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncAction {
    Resync,
    Recover,
    Check,
    Repair,
    Reshape,
    Frozen,
    Idle,
}

impl SyncAction {
    const ALL: [SyncAction; 7] = [
        SyncAction::Resync,
        SyncAction::Recover,
        SyncAction::Check,
        SyncAction::Repair,
        SyncAction::Reshape,
        SyncAction::Frozen,
        SyncAction::Idle,
    ];

    /// `action_name[]`: each action's word, indexed by the enum.
    const NAMES: [&'static str; 7] = [
        "resync", "recover", "check", "repair", "reshape", "frozen", "idle",
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The action a written word names.
    pub fn match_word(s: &str) -> Option<SyncAction> {
        Self::ALL.into_iter().find(|a| cmd_match(s, a.name()))
    }
}

impl std::fmt::Display for SyncAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `array_state_show`.
pub fn array_state(m: &Mddev) -> ArrayState {
    use ArrayState::*;
    if m.is_running() && !m.flags.test(mf::NOT_READY) {
        let st = match m.ro() {
            ro::RDONLY => Readonly,
            ro::AUTO_READ => ReadAuto,
            _ => {
                let cs = m.lock.lock();
                if m.sb_flags.test(sbf::CHANGE_PENDING) {
                    WritePending
                } else if cs.in_sync {
                    Clean
                } else if cs.safemode != 0 {
                    ActiveIdle
                } else {
                    Active
                }
            }
        };
        if m.flags.test(mf::BROKEN) && st == Clean {
            Broken
        } else {
            st
        }
    } else {
        let cfg = m.cfg.lock();
        if cfg.rdevs.is_empty() && cfg.raid_disks == 0 && cfg.dev_sectors == 0 {
            Clear
        } else {
            Inactive
        }
    }
}

/// `array_state_store`: move the array to `want`.
pub fn array_state_store(m: &Arc<Mddev>, want: ArrayState) -> Result<(), Errno> {
    use ArrayState::*;
    match want {
        Suspended | WritePending | ActiveIdle | Broken => return Err(Errno::EINVAL),
        // do_md_stop and md_set_readonly (Linux 6.1) refuse while the array
        // is open, read-only or not; read-auto only stops writes of a
        // read-write array (a read-only one is restarted instead).
        Clear | Readonly | Inactive | ReadAuto
            if m.is_running() && (want != ReadAuto || m.is_rdwr()) && m.data_open() =>
        {
            m.log().warn(format!("md: {} still in use.", m.name));
            return Err(Errno::EBUSY);
        }
        _ => {}
    }
    if m.is_running() && (want == Active || want == Clean) && m.ro() != ro::RDONLY {
        // Toggling clean/active does not take the reconfig mutex.
        let cfg = m.cfg.lock();
        let _ = run::restart_array(m, &cfg);
        drop(cfg);
        if want == Active {
            m.sb_flags.clear(sbf::CHANGE_PENDING);
            m.wakeup();
            let _g = m.lock.lock();
            m.sb_wait.notify_all();
        } else if !run::set_in_sync(m) {
            return Err(Errno::EBUSY);
        }
        m.notify("array_state");
        return Ok(());
    }
    let mut cfg = m.cfg.lock();
    let r = match want {
        Inactive => {
            if m.is_running() {
                run::do_md_stop(m, &mut cfg, StopMode::Inactive)
            } else {
                Ok(())
            }
        }
        Clear => run::do_md_stop(m, &mut cfg, StopMode::Clear),
        Readonly => {
            if m.is_running() {
                run::md_set_readonly(m, &mut cfg)
            } else {
                m.set_ro(ro::RDONLY);
                run::do_md_run(m, &mut cfg)
            }
        }
        ReadAuto => {
            if m.is_running() {
                // Already read-auto: nothing matches, EINVAL (6.1).
                let r = if m.is_rdwr() {
                    run::md_set_readonly(m, &mut cfg)
                } else if m.ro() == ro::RDONLY {
                    run::restart_array(m, &cfg)
                } else {
                    Err(Errno::EINVAL)
                };
                if r.is_ok() {
                    m.set_ro(ro::AUTO_READ);
                }
                r
            } else {
                m.set_ro(ro::AUTO_READ);
                run::do_md_run(m, &mut cfg)
            }
        }
        Clean => {
            if m.is_running() {
                run::restart_array(m, &cfg).and_then(|_| {
                    if run::set_in_sync(m) {
                        Ok(())
                    } else {
                        Err(Errno::EBUSY)
                    }
                })
            } else {
                Err(Errno::EINVAL)
            }
        }
        Active => {
            if m.is_running() {
                run::restart_array(m, &cfg).map(|_| {
                    m.sb_flags.clear(sbf::CHANGE_PENDING);
                    let _g = m.lock.lock();
                    m.sb_wait.notify_all();
                })
            } else {
                m.set_ro(ro::RDWR);
                run::do_md_run(m, &mut cfg)
            }
        }
        Suspended | WritePending | ActiveIdle | Broken => Err(Errno::EINVAL),
    };
    // md_free: a cleared array goes, and so does one left empty by any
    // state change (new_array's hold on mdN lasts until the first
    // successful array_state write; md_NAME is held until cleared).
    let empty =
        cfg.rdevs.is_empty() && cfg.raid_disks == 0 && cfg.ctime == 0 && !m.name.starts_with("md_");
    let cleared = r.is_ok() && (want == Clear || empty);
    drop(cfg);
    if r.is_ok() {
        m.notify("array_state");
    }
    if cleared {
        // The array disappears, as md_free does once nobody holds it.
        m.md.remove_array(m);
    }
    r
}

/// `action_show` of Linux 6.1.
pub fn sync_action(m: &Mddev) -> SyncAction {
    use SyncAction::*;
    let r = &m.recovery;
    if r.test(rec::FROZEN) {
        return Frozen;
    }
    if r.test(rec::RUNNING) || (m.is_rdwr() && r.test(rec::NEEDED)) {
        if r.test(rec::RESHAPE) {
            return Reshape;
        } else if r.test(rec::SYNC) {
            if !r.test(rec::REQUESTED) {
                return Resync;
            } else if r.test(rec::CHECK) {
                return Check;
            } else {
                return Repair;
            }
        } else if r.test(rec::RECOVER) {
            return Recover;
        }
    }
    Idle
}

/// `action_store`: ask for `action`, or (`None`) for a word md does not
/// know, which 6.1 refuses as busy while a sync runs.
pub fn action_store(
    m: &Arc<Mddev>,
    cfg: &mut Config,
    action: Option<SyncAction>,
) -> Result<(), Errno> {
    use SyncAction::*;
    let r = &m.recovery;
    match action {
        Some(Idle) => {
            if r.test(rec::RUNNING) {
                // idle_sync_thread: interrupt, wait, and let a still-needed
                // resync or recovery start again from its checkpoint.
                super::sync::stop_sync_thread(m, cfg);
            }
            r.clear(rec::FROZEN);
        }
        Some(Frozen) => {
            r.set(rec::FROZEN);
            if r.test(rec::RUNNING) {
                super::sync::stop_sync_thread(m, cfg);
            }
            m.notify("sync_action");
            return Ok(());
        }
        // Linux 6.1 refuses every other word, known or not, while a sync
        // runs or md has yet to look at what was asked last (6.11 and later
        // look at RUNNING only, and say EINVAL for unknown words).
        _ if r.test(rec::RUNNING) || r.test(rec::NEEDED) => return Err(Errno::EBUSY),
        Some(Resync) => r.clear(rec::FROZEN),
        Some(Recover) => {
            r.clear(rec::FROZEN);
            r.set(rec::RECOVER);
        }
        Some(Reshape) | None => return Err(Errno::EINVAL),
        Some(Check) => {
            r.set(rec::CHECK | rec::REQUESTED | rec::SYNC);
            r.clear(rec::FROZEN);
        }
        Some(Repair) => {
            r.set(rec::REQUESTED | rec::SYNC);
            r.clear(rec::FROZEN);
        }
    }
    if m.ro() == ro::AUTO_READ {
        m.set_ro(ro::RDWR);
    }
    r.set(rec::NEEDED);
    m.wakeup();
    m.notify("sync_action");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_names_its_own_state() {
        for st in ArrayState::ALL {
            assert_eq!(ArrayState::match_word(st.name()), Some(st));
        }
        for a in SyncAction::ALL {
            assert_eq!(SyncAction::match_word(a.name()), Some(a));
        }
        assert_eq!(ArrayState::match_word("Active"), None);
        assert_eq!(SyncAction::match_word("checks"), None);
    }
}
