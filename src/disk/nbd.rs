//! A member on another host: an NBD export, reached by an `nbd://` or
//! `nbd+unix://` URI (the syntax of qemu and libnbd).  The client speaks
//! the fixed newstyle handshake with `NBD_OPT_GO` and simple replies, and
//! keeps many requests in flight on one connection: every caller sends its
//! request under a short lock and waits for its own reply, which one
//! reader thread per connection hands over by handle.
//!
//! Every request has a deadline.  A request past it, a dropped connection
//! or a reply that breaks the protocol ends the connection: every request
//! in flight and every later one fails with EIO at once, so md sees what a
//! pulled disk gives it and never waits on a dead link.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The deadline of a request unless the member's `nbd_timeout_ms` says
/// otherwise: well under any FUSE request timeout, and long enough for a
/// loaded server.
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;

/// The largest payload one request carries (the protocol's advice when the
/// server names no maximum).
const MAX_PAYLOAD: u64 = 32 << 20;

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;

const FLAG_FIXED_NEWSTYLE: u16 = 1;
const FLAG_NO_ZEROES: u16 = 2;

const OPT_ABORT: u32 = 2;
const OPT_GO: u32 = 7;
const REP_ACK: u32 = 1;
const REP_INFO: u32 = 3;
const REP_FLAG_ERROR: u32 = 1 << 31;
const INFO_EXPORT: u16 = 0;
const INFO_BLOCK_SIZE: u16 = 3;

pub const TFLAG_HAS_FLAGS: u16 = 1 << 0;
pub const TFLAG_READ_ONLY: u16 = 1 << 1;
pub const TFLAG_SEND_FLUSH: u16 = 1 << 2;
pub const TFLAG_SEND_FUA: u16 = 1 << 3;
pub const TFLAG_SEND_TRIM: u16 = 1 << 5;
pub const TFLAG_SEND_WRITE_ZEROES: u16 = 1 << 6;

const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;
const CMD_TRIM: u16 = 4;
const CMD_WRITE_ZEROES: u16 = 6;
const CMD_FLAG_FUA: u16 = 1;

/// Where an export is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

/// A parsed NBD URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NbdUri {
    pub addr: Addr,
    pub export: String,
    /// The URI as given.
    pub text: String,
}

/// True if `s` is meant as an NBD URI (then `parse` says whether it is one).
pub fn is_uri(s: &str) -> bool {
    s.starts_with("nbd://") || s.starts_with("nbd+unix://")
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

impl NbdUri {
    /// `nbd://HOST[:PORT][/EXPORT]` (port 10809 by default, `[v6]` hosts
    /// too) or `nbd+unix:///[EXPORT]?socket=PATH`.
    pub fn parse(text: &str) -> Result<NbdUri, String> {
        let bad = |why: &str| format!("not an NBD URI ({why})");
        let (unix, rest) = if let Some(r) = text.strip_prefix("nbd+unix://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("nbd://") {
            (false, r)
        } else {
            return Err(bad("nbd:// or nbd+unix:// expected"));
        };
        if rest.contains('#') {
            return Err(bad("fragments are not allowed"));
        }
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let export = percent_decode(path).map_err(|e| bad(&e))?;
        let mut socket = None;
        for kv in query.into_iter().flat_map(|q| q.split('&')) {
            match kv.split_once('=') {
                Some(("socket", v)) if unix => {
                    socket = Some(percent_decode(v).map_err(|e| bad(&e))?);
                }
                _ => return Err(bad(&format!("unsupported query parameter {kv:?}"))),
            }
        }
        let addr = if unix {
            if !authority.is_empty() {
                return Err(bad("nbd+unix:// takes no host"));
            }
            match socket {
                Some(s) if s.starts_with('/') => Addr::Unix(PathBuf::from(s)),
                Some(_) => return Err(bad("the socket path must be absolute")),
                None => return Err(bad("socket= missing")),
            }
        } else {
            let (host, port) = if let Some(r) = authority.strip_prefix('[') {
                let (h, p) = r.split_once(']').ok_or_else(|| bad("unclosed ["))?;
                (h, p.strip_prefix(':'))
            } else {
                match authority.rsplit_once(':') {
                    Some((h, p)) => (h, Some(p)),
                    None => (authority, None),
                }
            };
            if host.is_empty() {
                return Err(bad("no host"));
            }
            let port = match port {
                None => 10809,
                Some(p) => p.parse::<u16>().map_err(|_| bad("bad port"))?,
            };
            Addr::Tcp {
                host: host.to_owned(),
                port,
            }
        };
        Ok(NbdUri {
            addr,
            export,
            text: text.to_owned(),
        })
    }

    /// The server, as `dev-NAME/nbd_server` shows it.
    pub fn server(&self) -> String {
        match &self.addr {
            Addr::Tcp { host, port } if host.contains(':') => format!("[{host}]:{port}"),
            Addr::Tcp { host, port } => format!("{host}:{port}"),
            Addr::Unix(p) => format!("unix:{}", p.display()),
        }
    }
}

/// One end of a connection.
#[derive(Debug)]
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn connect(addr: &Addr, timeout: Duration) -> io::Result<Stream> {
        match addr {
            Addr::Unix(p) => Ok(Stream::Unix(UnixStream::connect(p)?)),
            Addr::Tcp { host, port } => {
                let mut last = io::Error::from_raw_os_error(libc::EHOSTUNREACH);
                for sa in (host.as_str(), *port).to_socket_addrs()? {
                    match TcpStream::connect_timeout(&sa, timeout) {
                        Ok(s) => {
                            s.set_nodelay(true)?;
                            return Ok(Stream::Tcp(s));
                        }
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }

    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
        })
    }

    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)
            }
            Stream::Unix(s) => {
                s.set_read_timeout(read)?;
                s.set_write_timeout(write)
            }
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The errno an error of the handshake stands for, by its kind.
pub fn errno_of(e: &io::Error) -> i32 {
    if let Some(n) = e.raw_os_error() {
        return n;
    }
    match e.kind() {
        io::ErrorKind::NotFound => libc::ENOENT,
        io::ErrorKind::PermissionDenied => libc::EPERM,
        io::ErrorKind::Unsupported => libc::EOPNOTSUPP,
        io::ErrorKind::ReadOnlyFilesystem => libc::EROFS,
        io::ErrorKind::InvalidData => libc::EPROTO,
        io::ErrorKind::InvalidInput => libc::EINVAL,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => libc::ETIMEDOUT,
        io::ErrorKind::UnexpectedEof => libc::ECONNRESET,
        _ => libc::EIO,
    }
}

fn proto(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_u16(s: &mut impl Read) -> io::Result<u16> {
    let mut b = [0; 2];
    s.read_exact(&mut b)?;
    Ok(u16::from_be_bytes(b))
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

/// What the handshake learnt.
#[derive(Debug, Clone, Copy)]
pub struct ExportInfo {
    pub size: u64,
    pub flags: u16,
    pub max_payload: u64,
}

/// The fixed newstyle handshake up to `NBD_OPT_GO`'s acknowledgement.
fn handshake(s: &mut Stream, export: &str) -> io::Result<ExportInfo> {
    if read_u64(s)? != NBDMAGIC {
        return Err(proto("not an NBD server (no NBDMAGIC)"));
    }
    if read_u64(s)? != IHAVEOPT {
        return Err(proto(
            "oldstyle NBD server: newstyle negotiation is required",
        ));
    }
    let hflags = read_u16(s)?;
    if hflags & FLAG_FIXED_NEWSTYLE == 0 {
        return Err(proto(
            "the server does not offer fixed newstyle negotiation",
        ));
    }
    let cflags = u32::from(hflags & (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES));
    let name = export.as_bytes();
    let name_len = u32::try_from(name.len())
        .ok()
        .filter(|&n| n <= 4096)
        .ok_or_else(|| proto("export name too long"))?;
    let mut msg = Vec::with_capacity(32 + name.len());
    msg.extend_from_slice(&cflags.to_be_bytes());
    msg.extend_from_slice(&IHAVEOPT.to_be_bytes());
    msg.extend_from_slice(&OPT_GO.to_be_bytes());
    msg.extend_from_slice(&(4 + name_len + 2 + 2).to_be_bytes());
    msg.extend_from_slice(&name_len.to_be_bytes());
    msg.extend_from_slice(name);
    msg.extend_from_slice(&1u16.to_be_bytes());
    msg.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
    s.write_all(&msg)?;
    let mut info: Option<(u64, u16)> = None;
    let mut max_payload = MAX_PAYLOAD;
    loop {
        if read_u64(s)? != OPT_REPLY_MAGIC {
            return Err(proto("bad option reply magic"));
        }
        let opt = read_u32(s)?;
        let rtype = read_u32(s)?;
        let len = read_u32(s)?;
        if opt != OPT_GO {
            return Err(proto(format!("reply to option {opt}, not NBD_OPT_GO")));
        }
        if len > 1 << 20 {
            return Err(proto("option reply too long"));
        }
        let mut data = vec![0u8; len as usize];
        s.read_exact(&mut data)?;
        if rtype & REP_FLAG_ERROR != 0 {
            let text = String::from_utf8_lossy(&data).into_owned();
            // Say goodbye properly; the server may already be gone.
            let mut abort = Vec::with_capacity(16);
            abort.extend_from_slice(&IHAVEOPT.to_be_bytes());
            abort.extend_from_slice(&OPT_ABORT.to_be_bytes());
            abort.extend_from_slice(&0u32.to_be_bytes());
            let _ = s.write_all(&abort);
            let errno = match rtype & !REP_FLAG_ERROR {
                1 => libc::EOPNOTSUPP,
                2 | 5 => libc::EPERM,
                6 => libc::ENOENT,
                _ => libc::EINVAL,
            };
            let what = if text.is_empty() {
                format!("NBD_OPT_GO refused (reply type {rtype:#x})")
            } else {
                format!("NBD_OPT_GO refused: {text}")
            };
            return Err(io::Error::new(
                io::Error::from_raw_os_error(errno).kind(),
                what,
            ));
        }
        match rtype {
            REP_ACK => break,
            REP_INFO if data.len() >= 2 => match u16::from_be_bytes([data[0], data[1]]) {
                INFO_EXPORT if data.len() == 12 => {
                    let mut size = [0; 8];
                    size.copy_from_slice(&data[2..10]);
                    info = Some((
                        u64::from_be_bytes(size),
                        u16::from_be_bytes([data[10], data[11]]),
                    ));
                }
                INFO_BLOCK_SIZE if data.len() == 14 => {
                    let max = u32::from_be_bytes([data[10], data[11], data[12], data[13]]);
                    if max >= 512 {
                        max_payload = u64::from(max).min(MAX_PAYLOAD);
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    let (size, flags) = info.ok_or_else(|| proto("the server sent no export size"))?;
    Ok(ExportInfo {
        size,
        flags,
        max_payload,
    })
}

type ReplyTx = mpsc::SyncSender<Result<Vec<u8>, i32>>;

struct Waiter {
    read_len: usize,
    tx: ReplyTx,
}

#[derive(Default)]
struct ConnState {
    pending: HashMap<u64, Waiter>,
    dead: Option<String>,
}

/// One connection: a writer shared under a lock, a reader thread.
struct Conn {
    writer: Mutex<Stream>,
    ctl: Stream,
    state: Mutex<ConnState>,
    next_handle: AtomicU64,
    uri: String,
}

impl Conn {
    /// End the connection (once): every waiter gets EIO.
    fn kill(&self, reason: &str) {
        let pending = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.dead.is_some() {
                return;
            }
            st.dead = Some(reason.to_owned());
            std::mem::take(&mut st.pending)
        };
        log::error!("{}: connection lost: {reason}", self.uri);
        for (_, w) in pending {
            let _ = w.tx.try_send(Err(libc::EIO));
        }
        self.ctl.shutdown();
    }

    fn dead(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .dead
            .clone()
    }

    fn reader(self: Arc<Self>, mut s: Stream) {
        let reason = loop {
            let mut hdr = [0u8; 16];
            if let Err(e) = s.read_exact(&mut hdr) {
                break if e.kind() == io::ErrorKind::UnexpectedEof {
                    "the server closed the connection".to_owned()
                } else {
                    format!("read: {e}")
                };
            }
            let magic = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
            if magic != SIMPLE_REPLY_MAGIC {
                break format!("bad reply magic {magic:#x}");
            }
            let error = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
            let mut h = [0u8; 8];
            h.copy_from_slice(&hdr[8..16]);
            let handle = u64::from_be_bytes(h);
            let waiter = self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pending
                .remove(&handle);
            let Some(w) = waiter else {
                break format!("reply to unknown handle {handle}");
            };
            if error != 0 {
                let errno = i32::try_from(error).unwrap_or(libc::EIO);
                let _ = w.tx.try_send(Err(errno));
                continue;
            }
            let mut data = vec![0u8; w.read_len];
            if let Err(e) = s.read_exact(&mut data) {
                let _ = w.tx.try_send(Err(libc::EIO));
                break format!("read: {e}");
            }
            let _ = w.tx.try_send(Ok(data));
        };
        self.kill(&reason);
    }
}

/// Counters of one client, for `dev-NAME/`.
#[derive(Debug, Default)]
pub struct NbdStats {
    /// Round-trip time of the latest reply, in microseconds.
    pub rtt_us: AtomicU64,
    pub requests: AtomicU64,
    pub timeouts: AtomicU64,
}

/// A client of one export.
pub struct NbdClient {
    uri: NbdUri,
    info: ExportInfo,
    conn: Arc<Conn>,
    timeout_ms: AtomicU64,
    stats: NbdStats,
    last_error: Mutex<String>,
    closed: AtomicBool,
    /// Whether the member is re-added when its export comes back.
    auto_readd: AtomicBool,
    /// Set while someone tries to reach the export again.
    reconnecting: AtomicBool,
}

impl std::fmt::Debug for NbdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NbdClient")
            .field("uri", &self.uri.text)
            .field("info", &self.info)
            .finish()
    }
}

impl NbdClient {
    /// Connect and negotiate.  A server that cannot flush is refused
    /// (md's writes could never be made durable), as is a read-only
    /// export opened for writing.
    pub fn connect(uri: &NbdUri, writable: bool) -> io::Result<NbdClient> {
        Self::connect_timeout(uri, writable, DEFAULT_TIMEOUT_MS)
    }

    /// `connect`, with `timeout_ms` as the deadline of the connection and
    /// handshake and of every later request.
    pub fn connect_timeout(uri: &NbdUri, writable: bool, timeout_ms: u64) -> io::Result<NbdClient> {
        let timeout = Duration::from_millis(timeout_ms.max(1));
        let mut s = Stream::connect(&uri.addr, timeout)?;
        s.set_timeouts(Some(timeout), Some(timeout))?;
        let info = handshake(&mut s, &uri.export)?;
        if writable && info.flags & TFLAG_READ_ONLY != 0 {
            return Err(io::Error::new(
                io::ErrorKind::ReadOnlyFilesystem,
                "the export is read-only",
            ));
        }
        if info.flags & TFLAG_SEND_FLUSH == 0 {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the server cannot flush (no NBD_FLAG_SEND_FLUSH): writes could never be made durable",
            ));
        }
        // Replies may take as long as they like (the waiter has the
        // deadline); a send that cannot go out is as late as a reply.
        s.set_timeouts(None, Some(timeout))?;
        let rs = s.try_clone()?;
        let ctl = s.try_clone()?;
        let conn = Arc::new(Conn {
            writer: Mutex::new(s),
            ctl,
            state: Mutex::new(ConnState::default()),
            next_handle: AtomicU64::new(1),
            uri: uri.text.clone(),
        });
        let c = conn.clone();
        std::thread::Builder::new()
            .name("nbd-reader".into())
            .spawn(move || c.reader(rs))?;
        Ok(NbdClient {
            uri: uri.clone(),
            info,
            conn,
            timeout_ms: AtomicU64::new(timeout_ms.max(1)),
            stats: NbdStats::default(),
            last_error: Mutex::new(String::new()),
            closed: AtomicBool::new(false),
            auto_readd: AtomicBool::new(true),
            reconnecting: AtomicBool::new(false),
        })
    }

    pub fn uri(&self) -> &NbdUri {
        &self.uri
    }

    pub fn size(&self) -> u64 {
        self.info.size
    }

    pub fn flags(&self) -> u16 {
        self.info.flags
    }

    pub fn stats(&self) -> &NbdStats {
        &self.stats
    }

    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms.load(Ordering::Relaxed)
    }

    pub fn set_timeout_ms(&self, ms: u64) {
        self.timeout_ms.store(ms, Ordering::Relaxed);
        // A send that cannot go out (the server reads nothing) is as late
        // as a reply that does not come.
        let _ = self
            .conn
            .ctl
            .set_timeouts(None, Some(Duration::from_millis(ms.max(1))));
    }

    /// `connected`; once the connection ended `failed`, or
    /// `reconnecting` while the export is being reached again.
    pub fn state(&self) -> &'static str {
        if self.conn.dead().is_none() {
            "connected"
        } else if self.reconnecting.load(Ordering::Relaxed) {
            "reconnecting"
        } else {
            "failed"
        }
    }

    /// True once the connection ended (every request now fails).
    pub fn is_dead(&self) -> bool {
        self.conn.dead().is_some()
    }

    pub fn auto_readd(&self) -> bool {
        self.auto_readd.load(Ordering::Relaxed)
    }

    pub fn set_auto_readd(&self, on: bool) {
        self.auto_readd.store(on, Ordering::Relaxed);
    }

    pub fn set_reconnecting(&self, on: bool) {
        self.reconnecting.store(on, Ordering::Relaxed);
    }

    pub fn last_error(&self) -> String {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Record why the latest request or reconnection failed.
    pub fn note_error(&self, what: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = what;
    }

    /// Send one request and wait for its reply (at most the deadline).
    fn request(
        &self,
        cmd: u16,
        flags: u16,
        offset: u64,
        len: u32,
        payload: Option<&[u8]>,
    ) -> io::Result<Vec<u8>> {
        let conn = &self.conn;
        let read_len = if cmd == CMD_READ { len as usize } else { 0 };
        let (tx, rx) = mpsc::sync_channel(1);
        let handle = conn.next_handle.fetch_add(1, Ordering::Relaxed);
        {
            let mut st = conn.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(why) = &st.dead {
                let why = why.clone();
                drop(st);
                self.note_error(why);
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            st.pending.insert(handle, Waiter { read_len, tx });
        }
        let mut hdr = [0u8; 28];
        hdr[0..4].copy_from_slice(&REQUEST_MAGIC.to_be_bytes());
        hdr[4..6].copy_from_slice(&flags.to_be_bytes());
        hdr[6..8].copy_from_slice(&cmd.to_be_bytes());
        hdr[8..16].copy_from_slice(&handle.to_be_bytes());
        hdr[16..24].copy_from_slice(&offset.to_be_bytes());
        hdr[24..28].copy_from_slice(&len.to_be_bytes());
        let start = Instant::now();
        let sent = {
            let mut w = conn.writer.lock().unwrap_or_else(|e| e.into_inner());
            w.write_all(&hdr)
                .and_then(|()| payload.map_or(Ok(()), |p| w.write_all(p)))
        };
        if let Err(e) = sent {
            let why = format!("send: {e}");
            conn.kill(&why);
            self.note_error(why);
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let deadline = Duration::from_millis(self.timeout_ms());
        let r = match rx.recv_timeout(deadline) {
            Ok(r) => r,
            Err(_) => {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                let why = format!(
                    "request timed out after {} ms (deadline {} ms)",
                    start.elapsed().as_millis(),
                    deadline.as_millis()
                );
                conn.kill(&why);
                Err(libc::EIO)
            }
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok(data) => {
                let us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.stats.rtt_us.store(us, Ordering::Relaxed);
                Ok(data)
            }
            Err(errno) => {
                let why = conn.dead().unwrap_or_else(|| {
                    format!(
                        "{} at byte {offset}: {}",
                        cmd_name(cmd),
                        io::Error::from_raw_os_error(errno)
                    )
                });
                self.note_error(why);
                Err(io::Error::from_raw_os_error(errno))
            }
        }
    }

    /// Cut `[offset, offset+len)` into requests the server takes.
    fn pieces(&self, offset: u64, len: u64) -> impl Iterator<Item = (u64, u32)> + use<> {
        let max = self.info.max_payload;
        let end = offset + len;
        let mut at = offset;
        std::iter::from_fn(move || {
            if at >= end {
                return None;
            }
            let n = (end - at).min(max);
            let r = (at, n as u32);
            at += n;
            Some(r)
        })
    }

    fn check_range(&self, offset: u64, len: u64) -> io::Result<()> {
        if offset.checked_add(len).is_none_or(|e| e > self.info.size) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }

    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        let mut done = 0usize;
        for (at, n) in self.pieces(offset, buf.len() as u64) {
            let data = self.request(CMD_READ, 0, at, n, None)?;
            buf[done..done + n as usize].copy_from_slice(&data);
            done += n as usize;
        }
        Ok(())
    }

    /// Write `buf` at `offset`; `fua` makes it durable before the reply
    /// (with a flush after it where the server has no FUA).
    pub fn write_at(&self, buf: &[u8], offset: u64, fua: bool) -> io::Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        let has_fua = self.info.flags & TFLAG_SEND_FUA != 0;
        let flags = if fua && has_fua { CMD_FLAG_FUA } else { 0 };
        let mut done = 0usize;
        for (at, n) in self.pieces(offset, buf.len() as u64) {
            self.request(CMD_WRITE, flags, at, n, Some(&buf[done..done + n as usize]))?;
            done += n as usize;
        }
        if fua && !has_fua {
            self.flush()?;
        }
        Ok(())
    }

    pub fn flush(&self) -> io::Result<()> {
        self.request(CMD_FLUSH, 0, 0, 0, None).map(|_| ())
    }

    /// Discard a range so that it reads back as zeros, as a hole punched
    /// in an image file does (the other legs of a mirror read zeros there
    /// too): WRITE_ZEROES (which lets the server punch a hole) where
    /// offered, else TRIM, else zeros written.
    pub fn discard(&self, offset: u64, len: u64) -> io::Result<()> {
        self.check_range(offset, len)?;
        let cmd = if self.info.flags & TFLAG_SEND_WRITE_ZEROES != 0 {
            Some(CMD_WRITE_ZEROES)
        } else if self.info.flags & TFLAG_SEND_TRIM != 0 {
            Some(CMD_TRIM)
        } else {
            None
        };
        match cmd {
            Some(cmd) => {
                for (at, n) in self.pieces(offset, len) {
                    self.request(cmd, 0, at, n, None)?;
                }
                Ok(())
            }
            None => {
                let step = self.info.max_payload.min(1 << 20);
                let zeros = vec![0u8; step as usize];
                let mut at = offset;
                while at < offset + len {
                    let n = (offset + len - at).min(step);
                    self.write_at(&zeros[..n as usize], at, false)?;
                    at += n;
                }
                Ok(())
            }
        }
    }

    /// Say goodbye (NBD_CMD_DISC) and end the connection.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if self.conn.dead().is_none() {
            let mut hdr = [0u8; 28];
            hdr[0..4].copy_from_slice(&REQUEST_MAGIC.to_be_bytes());
            hdr[6..8].copy_from_slice(&CMD_DISC.to_be_bytes());
            let mut w = self.conn.writer.lock().unwrap_or_else(|e| e.into_inner());
            let _ = w.write_all(&hdr);
        }
        let mut st = self.conn.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.dead.is_none() {
            st.dead = Some("closed".into());
        }
        drop(st);
        self.conn.ctl.shutdown();
    }
}

impl Drop for NbdClient {
    fn drop(&mut self) {
        self.close();
    }
}

fn cmd_name(cmd: u16) -> &'static str {
    match cmd {
        CMD_READ => "read",
        CMD_WRITE => "write",
        CMD_FLUSH => "flush",
        CMD_TRIM => "trim",
        CMD_WRITE_ZEROES => "write-zeroes",
        _ => "request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let u = NbdUri::parse("nbd://localhost:1234/leg%20b").unwrap();
        assert_eq!(
            u.addr,
            Addr::Tcp {
                host: "localhost".into(),
                port: 1234
            }
        );
        assert_eq!(u.export, "leg b");
        let u = NbdUri::parse("nbd://[::1]/x").unwrap();
        assert_eq!(
            u.addr,
            Addr::Tcp {
                host: "::1".into(),
                port: 10809
            }
        );
        assert_eq!(u.server(), "[::1]:10809");
        let u = NbdUri::parse("nbd+unix:///md0?socket=/run/x.sock").unwrap();
        assert_eq!(u.addr, Addr::Unix("/run/x.sock".into()));
        assert_eq!(u.export, "md0");
        let u = NbdUri::parse("nbd+unix://?socket=/s").unwrap();
        assert_eq!(u.export, "");
        for bad in [
            "nbd+unix:///x",
            "nbd+unix://host/x?socket=/s",
            "nbd+unix:///x?socket=rel",
            "nbd://",
            "nbd://h:99999/x",
            "nbd://h/x?socket=/s",
            "nbd://h/%zz",
            "nbds://h/x",
        ] {
            assert!(NbdUri::parse(bad).is_err(), "{bad}");
        }
    }
}
