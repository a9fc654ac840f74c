//! The NBD export of each running array: a unix socket per array in the
//! mount's export directory (`mdfuse mount --nbd-dir DIR`), serving the
//! array's contents to qemu, qemu-img, nbdinfo, nbdcopy or nbd-client
//! without FUSE.  `mdN/nbd` in the tree reads its URI.
//!
//! The server speaks the fixed newstyle handshake (`NBD_OPT_GO`,
//! `NBD_OPT_INFO`, `NBD_OPT_LIST`, `NBD_OPT_EXPORT_NAME`) and simple
//! replies; a connection's requests run on a few threads, so a client that
//! keeps many in flight gets them served side by side.  Every request
//! goes through the entry points `mdN/data` uses: READ and WRITE are the
//! data file's reads and writes, FLUSH its fsync, FUA a write then a flush,
//! TRIM a punched hole (md's discard) and WRITE_ZEROES a zeroed range.  A
//! read-only array is exported read-only.  A connected client holds the
//! array open, as an open block device does: md refuses to stop it.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use crate::errno::Errno;
use crate::md::{Md, Mddev, ro};

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

const FLAG_FIXED_NEWSTYLE: u16 = 1;
const FLAG_NO_ZEROES: u16 = 2;

const OPT_EXPORT_NAME: u32 = 1;
const OPT_ABORT: u32 = 2;
const OPT_LIST: u32 = 3;
const OPT_INFO: u32 = 6;
const OPT_GO: u32 = 7;

const REP_ACK: u32 = 1;
const REP_SERVER: u32 = 2;
const REP_INFO: u32 = 3;
const REP_ERR_UNSUP: u32 = (1 << 31) + 1;
const REP_ERR_INVALID: u32 = (1 << 31) + 3;
const REP_ERR_UNKNOWN: u32 = (1 << 31) + 6;

const INFO_EXPORT: u16 = 0;
const INFO_BLOCK_SIZE: u16 = 3;

const TFLAG_HAS_FLAGS: u16 = 1 << 0;
const TFLAG_READ_ONLY: u16 = 1 << 1;
const TFLAG_SEND_FLUSH: u16 = 1 << 2;
const TFLAG_SEND_FUA: u16 = 1 << 3;
const TFLAG_SEND_TRIM: u16 = 1 << 5;
const TFLAG_SEND_WRITE_ZEROES: u16 = 1 << 6;
/// A flush on one connection covers writes done on every other: md's
/// flush goes to every member.
const TFLAG_CAN_MULTI_CONN: u16 = 1 << 8;

const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;
const CMD_TRIM: u16 = 4;
const CMD_WRITE_ZEROES: u16 = 6;
const CMD_FLAG_FUA: u16 = 1;

/// The largest request payload taken (and advertised).
const MAX_PAYLOAD: u32 = 32 << 20;
/// Threads serving one connection's requests.
const WORKERS: usize = 4;
const TICK: Duration = Duration::from_millis(100);

/// `nbd+unix:///NAME?socket=PATH`, the socket path percent-encoded where
/// a URI needs it.
pub fn uri(dir: &Path, name: &str) -> String {
    let sock = socket_path(dir, name);
    let mut enc = String::new();
    for &b in sock.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            enc.push(char::from(b));
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("nbd+unix:///{name}?socket={enc}")
}

pub fn socket_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sock"))
}

/// The export directory used when the mount names none: under
/// `$XDG_RUNTIME_DIR`, else `/run` for root, else the temporary directory,
/// one per daemon.
pub fn default_dir() -> PathBuf {
    let pid = std::process::id();
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join(format!("mdfuse-nbd.{pid}"));
    }
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 && Path::new("/run").is_dir() {
        return PathBuf::from(format!("/run/mdfuse-nbd.{pid}"));
    }
    std::env::temp_dir().join(format!("mdfuse-nbd.{uid}.{pid}"))
}

/// The exports of one mount.
pub struct Exports {
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
    /// Created by us (removed at the end), not named by the user.
    own_dir: bool,
}

struct Shared {
    dir: PathBuf,
    servers: Mutex<HashMap<String, Server>>,
    /// When starting an array's server last failed: tried again only
    /// after `RETRY`, so a directory we cannot use is not logged at every
    /// tick.
    failed: Mutex<HashMap<String, std::time::Instant>>,
}

const RETRY: Duration = Duration::from_secs(5);

impl Shared {
    /// Start serving `m` if it runs and is not served yet.
    fn ensure(&self, m: &Arc<Mddev>) {
        if !m.is_running() {
            return;
        }
        let mut servers = self.servers.lock();
        if servers.contains_key(&m.name) {
            return;
        }
        let mut failed = self.failed.lock();
        if failed.get(&m.name).is_some_and(|t| t.elapsed() < RETRY) {
            return;
        }
        match Server::start(m, &self.dir) {
            Ok(s) => {
                failed.remove(&m.name);
                servers.insert(m.name.clone(), s);
            }
            Err(e) => {
                failed.insert(m.name.clone(), std::time::Instant::now());
                log::warn!("{}: no NBD export: {e}", m.name);
            }
        }
    }
}

impl Exports {
    /// Serve every running array of `md` from `dir` (created if missing).
    pub fn start(md: Arc<Md>, dir: PathBuf, own_dir: bool) -> io::Result<Exports> {
        std::fs::create_dir_all(&dir)?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            dir,
            servers: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
        });
        let (s, sh) = (stop.clone(), shared.clone());
        let thread = std::thread::Builder::new()
            .name("nbd-export".into())
            .spawn(move || manage(&md, &sh, &s))?;
        Ok(Exports {
            stop,
            thread: Mutex::new(Some(thread)),
            shared,
            own_dir,
        })
    }

    /// An array started or stopped running: serve it at once if it runs
    /// (so its socket is there when `mdN/nbd` can be read); stopped ones
    /// are closed by the export thread, outside md's locks.
    pub fn running_changed(&self, m: &Arc<Mddev>) {
        if !self.stop.load(Ordering::Acquire) {
            self.shared.ensure(m);
        }
    }

    /// Close every export and connection, remove the sockets.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
            let servers: Vec<Server> = self.shared.servers.lock().drain().map(|(_, s)| s).collect();
            for mut s in servers {
                s.stop();
            }
            if self.own_dir {
                let _ = std::fs::remove_dir(&self.shared.dir);
            }
        }
    }
}

impl Drop for Exports {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Start a server for each array that runs, stop those of arrays that do
/// not.
fn manage(md: &Arc<Md>, shared: &Shared, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        let arrays = md.arrays();
        let gone: Vec<Server> = {
            let mut servers = shared.servers.lock();
            let names: Vec<String> = servers
                .iter()
                .filter(|(_, s)| {
                    !s.mddev.upgrade().is_some_and(|m| {
                        m.is_running() && arrays.iter().any(|a| Arc::ptr_eq(a, &m))
                    })
                })
                .map(|(n, _)| n.clone())
                .collect();
            names.iter().filter_map(|n| servers.remove(n)).collect()
        };
        // Closed outside the lock: a connection may still be finishing a
        // request.
        for mut s in gone {
            s.stop();
        }
        for m in &arrays {
            shared.ensure(m);
        }
        std::thread::sleep(TICK);
    }
}

/// The listener of one array, and its connections.
struct Server {
    mddev: Weak<Mddev>,
    path: PathBuf,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<UnixStream>>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(m: &Arc<Mddev>, dir: &Path) -> io::Result<Server> {
        let path = socket_path(dir, &m.name);
        // A socket left by a daemon that died: nobody listens on it.
        if UnixStream::connect(&path).is_err() {
            let _ = std::fs::remove_file(&path);
        }
        let listener = UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (s, c, w) = (stop.clone(), conns.clone(), Arc::downgrade(m));
        let thread = std::thread::Builder::new()
            .name(format!("nbd-{}", m.name))
            .spawn(move || listen(&listener, &w, &s, &c))?;
        log::info!("{}: NBD export on {}", m.name, path.display());
        Ok(Server {
            mddev: Arc::downgrade(m),
            path,
            stop,
            conns,
            thread: Some(thread),
        })
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for c in self.conns.lock().iter() {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Wait up to `TICK` for the listener to become readable.
fn wait_readable(l: &UnixListener) {
    let mut pfd = libc::pollfd {
        fd: l.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd, live for the call.
    unsafe {
        libc::poll(&mut pfd, 1, TICK.as_millis() as libc::c_int);
    }
}

fn listen(
    l: &UnixListener,
    m: &Weak<Mddev>,
    stop: &AtomicBool,
    conns: &Arc<Mutex<Vec<UnixStream>>>,
) {
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        wait_readable(l);
        threads.retain(|t| !t.is_finished());
        let s = match l.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => {
                log::warn!("NBD export: accept: {e}");
                std::thread::sleep(TICK);
                continue;
            }
        };
        if s.set_nonblocking(false).is_err() {
            continue;
        }
        let Ok(ctl) = s.try_clone() else { continue };
        conns.lock().push(ctl);
        let (m, c) = (m.clone(), conns.clone());
        let raw = s.as_raw_fd();
        let spawned = std::thread::Builder::new()
            .name("nbd-conn".into())
            .spawn(move || {
                if let Err(e) = serve(s, &m) {
                    log::debug!("NBD export: connection ended: {e}");
                }
                c.lock().retain(|x| x.as_raw_fd() != raw);
            });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => log::warn!("NBD export: no thread for a client: {e}"),
        }
    }
    for t in threads {
        let _ = t.join();
    }
}

fn read_u32(s: &mut impl Read) -> io::Result<u32> {
    let mut b = [0; 4];
    s.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_u64(s: &mut impl Read) -> io::Result<u64> {
    let mut b = [0; 8];
    s.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

fn opt_reply(s: &mut UnixStream, opt: u32, rtype: u32, data: &[u8]) -> io::Result<()> {
    let mut b = Vec::with_capacity(20 + data.len());
    b.extend_from_slice(&OPT_REPLY_MAGIC.to_be_bytes());
    b.extend_from_slice(&opt.to_be_bytes());
    b.extend_from_slice(&rtype.to_be_bytes());
    b.extend_from_slice(&(data.len() as u32).to_be_bytes());
    b.extend_from_slice(data);
    s.write_all(&b)
}

/// The transmission flags of the array as it is now.
fn tflags(m: &Mddev) -> u16 {
    let mut f = TFLAG_HAS_FLAGS
        | TFLAG_SEND_FLUSH
        | TFLAG_SEND_FUA
        | TFLAG_SEND_TRIM
        | TFLAG_SEND_WRITE_ZEROES
        | TFLAG_CAN_MULTI_CONN;
    if m.ro() == ro::RDONLY {
        f |= TFLAG_READ_ONLY;
    }
    f
}

/// An export name this array answers to: its own, or the default ("").
fn ours(m: &Mddev, name: &[u8]) -> bool {
    name.is_empty() || name == m.name.as_bytes()
}

/// The handshake; true to go on to transmission.
fn handshake(s: &mut UnixStream, m: &Mddev) -> io::Result<bool> {
    let mut hello = Vec::with_capacity(18);
    hello.extend_from_slice(&NBDMAGIC.to_be_bytes());
    hello.extend_from_slice(&IHAVEOPT.to_be_bytes());
    hello.extend_from_slice(&(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
    s.write_all(&hello)?;
    let cflags = read_u32(s)?;
    if cflags & !u32::from(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES) != 0 {
        return Err(bad("unknown client flags"));
    }
    let no_zeroes = cflags & u32::from(FLAG_NO_ZEROES) != 0;
    loop {
        if read_u64(s)? != IHAVEOPT {
            return Err(bad("bad option magic"));
        }
        let opt = read_u32(s)?;
        let len = read_u32(s)?;
        if len > 65536 {
            return Err(bad("option too long"));
        }
        let mut data = vec![0u8; len as usize];
        s.read_exact(&mut data)?;
        match opt {
            OPT_EXPORT_NAME => {
                if !ours(m, &data) {
                    return Ok(false);
                }
                let mut b = Vec::with_capacity(134);
                b.extend_from_slice(&m.array_bytes().to_be_bytes());
                b.extend_from_slice(&tflags(m).to_be_bytes());
                if !no_zeroes {
                    b.extend_from_slice(&[0u8; 124]);
                }
                s.write_all(&b)?;
                return Ok(true);
            }
            OPT_ABORT => {
                let _ = opt_reply(s, opt, REP_ACK, &[]);
                return Ok(false);
            }
            OPT_LIST => {
                if len != 0 {
                    opt_reply(s, opt, REP_ERR_INVALID, &[])?;
                    continue;
                }
                let mut b = Vec::new();
                b.extend_from_slice(&(m.name.len() as u32).to_be_bytes());
                b.extend_from_slice(m.name.as_bytes());
                opt_reply(s, opt, REP_SERVER, &b)?;
                opt_reply(s, opt, REP_ACK, &[])?;
            }
            OPT_INFO | OPT_GO => {
                let parsed = (|| {
                    let n = u32::from_be_bytes(data.get(0..4)?.try_into().ok()?) as usize;
                    let name = data.get(4..4 + n)?;
                    let k = u16::from_be_bytes(data.get(4 + n..6 + n)?.try_into().ok()?) as usize;
                    let reqs = data.get(6 + n..)?;
                    if reqs.len() != 2 * k {
                        return None;
                    }
                    let infos: Vec<u16> = reqs
                        .chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                    Some((name.to_vec(), infos))
                })();
                let Some((name, infos)) = parsed else {
                    opt_reply(s, opt, REP_ERR_INVALID, &[])?;
                    continue;
                };
                if !ours(m, &name) {
                    opt_reply(s, opt, REP_ERR_UNKNOWN, &[])?;
                    continue;
                }
                let mut b = Vec::with_capacity(12);
                b.extend_from_slice(&INFO_EXPORT.to_be_bytes());
                b.extend_from_slice(&m.array_bytes().to_be_bytes());
                b.extend_from_slice(&tflags(m).to_be_bytes());
                opt_reply(s, opt, REP_INFO, &b)?;
                if infos.contains(&INFO_BLOCK_SIZE) {
                    // Any alignment works (md0/data's rules), 4 KiB is
                    // best, 32 MiB at most.
                    let mut b = Vec::with_capacity(14);
                    b.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
                    b.extend_from_slice(&1u32.to_be_bytes());
                    b.extend_from_slice(&4096u32.to_be_bytes());
                    b.extend_from_slice(&MAX_PAYLOAD.to_be_bytes());
                    opt_reply(s, opt, REP_INFO, &b)?;
                }
                opt_reply(s, opt, REP_ACK, &[])?;
                if opt == OPT_GO {
                    return Ok(true);
                }
            }
            _ => opt_reply(s, opt, REP_ERR_UNSUP, &[])?,
        }
    }
}

/// The errno an NBD reply may carry (the protocol names a few).
fn nbd_error(e: Errno) -> u32 {
    let n = e.raw();
    match n {
        libc::EPERM
        | libc::EIO
        | libc::ENOMEM
        | libc::EINVAL
        | libc::ENOSPC
        | libc::EOVERFLOW
        | libc::EOPNOTSUPP
        | libc::ESHUTDOWN => n as u32,
        libc::EROFS => libc::EPERM as u32,
        _ => libc::EIO as u32,
    }
}

struct Request {
    cmd: u16,
    flags: u16,
    handle: u64,
    offset: u64,
    len: u32,
    payload: Vec<u8>,
}

/// Holds the array open while a client is connected.
struct Opener(Arc<Mddev>);

impl Drop for Opener {
    fn drop(&mut self) {
        self.0.close_data();
    }
}

fn serve(mut s: UnixStream, m: &Weak<Mddev>) -> io::Result<()> {
    let m = m.upgrade().ok_or_else(|| bad("array gone"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    if !handshake(&mut s, &m)? {
        return Ok(());
    }
    s.set_read_timeout(None)?;
    m.open_data();
    let _open = Opener(m.clone());
    let writer = Arc::new(Mutex::new(s.try_clone()?));
    let (tx, rx) = crossbeam_channel::bounded::<Request>(WORKERS * 4);
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (rx, w, m) = (rx.clone(), writer.clone(), m.clone());
        workers.push(std::thread::spawn(move || {
            for r in rx {
                let (err, data) = execute(&m, &r);
                let mut b = Vec::with_capacity(16 + data.len());
                b.extend_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
                b.extend_from_slice(&err.to_be_bytes());
                b.extend_from_slice(&r.handle.to_be_bytes());
                b.extend_from_slice(&data);
                if w.lock().write_all(&b).is_err() {
                    break;
                }
            }
        }));
    }
    let r = (|| -> io::Result<()> {
        loop {
            let mut h = [0u8; 28];
            s.read_exact(&mut h)?;
            if u32::from_be_bytes([h[0], h[1], h[2], h[3]]) != REQUEST_MAGIC {
                return Err(bad("bad request magic"));
            }
            let flags = u16::from_be_bytes([h[4], h[5]]);
            let cmd = u16::from_be_bytes([h[6], h[7]]);
            let handle = u64::from_be_bytes(h[8..16].try_into().unwrap_or_default());
            let offset = u64::from_be_bytes(h[16..24].try_into().unwrap_or_default());
            let len = u32::from_be_bytes([h[24], h[25], h[26], h[27]]);
            if cmd == CMD_DISC {
                return Ok(());
            }
            let mut payload = Vec::new();
            if cmd == CMD_WRITE {
                if len > MAX_PAYLOAD {
                    // Its payload cannot be skipped safely.
                    return Err(bad("write too large"));
                }
                payload = vec![0u8; len as usize];
                s.read_exact(&mut payload)?;
            }
            let req = Request {
                cmd,
                flags,
                handle,
                offset,
                len,
                payload,
            };
            if tx.send(req).is_err() {
                return Err(bad("workers gone"));
            }
        }
    })();
    drop(tx);
    for w in workers {
        let _ = w.join();
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    r
}

/// Run one request; the reply's error and (for a read) data.
fn execute(m: &Mddev, r: &Request) -> (u32, Vec<u8>) {
    let size = m.array_bytes();
    let len = u64::from(r.len);
    let in_range = r.offset.checked_add(len).is_some_and(|e| e <= size);
    let ro = m.ro() == ro::RDONLY;
    // A write that passes by mdN/data's page cache: as an O_DIRECT write
    // to a block device, it writes back what is dirty in its range first
    // (the older bytes must not land over it later) and drops the range
    // afterwards (cached copies of the older bytes must not be served).
    let changes = matches!(r.cmd, CMD_WRITE | CMD_TRIM | CMD_WRITE_ZEROES) && in_range && !ro;
    if changes {
        m.observer().data_changed(m, r.offset, len.max(1));
    }
    let res: Result<Vec<u8>, Errno> = match r.cmd {
        CMD_READ => {
            if !in_range || r.len > MAX_PAYLOAD {
                Err(Errno::EINVAL)
            } else {
                let mut buf = vec![0u8; r.len as usize];
                read_full(m, &mut buf, r.offset).map(|()| buf)
            }
        }
        CMD_WRITE | CMD_TRIM | CMD_WRITE_ZEROES if ro => Err(Errno::EPERM),
        CMD_WRITE => {
            if !in_range {
                Err(Errno::ENOSPC)
            } else {
                write_full(m, &r.payload, r.offset).and_then(|()| fua(m, r.flags))
            }
        }
        CMD_FLUSH => m.flush_data().map(|()| Vec::new()),
        CMD_TRIM => {
            if !in_range {
                Err(Errno::ENOSPC)
            } else {
                // A discard is advice: the whole sectors inside the range.
                let start = r.offset.next_multiple_of(512);
                let end = (r.offset + len) & !511;
                let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
                let done = if start < end {
                    m.fallocate_data(start, end - start, punch)
                } else {
                    Ok(())
                };
                done.and_then(|()| fua(m, r.flags))
            }
        }
        CMD_WRITE_ZEROES => {
            if !in_range {
                Err(Errno::ENOSPC)
            } else {
                zero(m, r.offset, len).and_then(|()| fua(m, r.flags))
            }
        }
        _ => Err(Errno::EINVAL),
    };
    if changes {
        m.observer().data_changed(m, r.offset, len.max(1));
    }
    match res {
        Ok(data) => (0, data),
        Err(e) => (nbd_error(e), Vec::new()),
    }
}

fn fua(m: &Mddev, flags: u16) -> Result<Vec<u8>, Errno> {
    if flags & CMD_FLAG_FUA != 0 {
        m.flush_data()?;
    }
    Ok(Vec::new())
}

fn read_full(m: &Mddev, buf: &mut [u8], offset: u64) -> Result<(), Errno> {
    let mut done = 0;
    while done < buf.len() {
        let n = m.read_data(&mut buf[done..], offset + done as u64)?;
        if n == 0 {
            return Err(Errno::EIO);
        }
        done += n;
    }
    Ok(())
}

fn write_full(m: &Mddev, data: &[u8], offset: u64) -> Result<(), Errno> {
    let mut done = 0;
    while done < data.len() {
        let n = m.write_data(&data[done..], offset + done as u64)?;
        if n == 0 {
            return Err(Errno::EIO);
        }
        done += n;
    }
    Ok(())
}

/// Zeroes over a range: md's zero range for the whole sectors, written
/// zeroes for partial ones at the ends.
fn zero(m: &Mddev, offset: u64, len: u64) -> Result<(), Errno> {
    let end = offset + len;
    let start_a = offset.next_multiple_of(512);
    let end_a = end & !511;
    if start_a < end_a {
        m.fallocate_data(start_a, end_a - start_a, libc::FALLOC_FL_ZERO_RANGE)?;
        if offset < start_a {
            write_full(m, &vec![0u8; (start_a - offset) as usize], offset)?;
        }
        if end_a < end {
            write_full(m, &vec![0u8; (end - end_a) as usize], end_a)?;
        }
        Ok(())
    } else {
        write_full(m, &vec![0u8; len as usize], offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_encode_the_socket() {
        assert_eq!(
            uri(Path::new("/run/x"), "md0"),
            "nbd+unix:///md0?socket=/run/x/md0.sock"
        );
        assert_eq!(
            uri(Path::new("/t/a b?&"), "md_x"),
            "nbd+unix:///md_x?socket=/t/a%20b%3F%26/md_x.sock"
        );
    }
}
