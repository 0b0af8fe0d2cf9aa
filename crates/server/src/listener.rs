//! The connection guard in front of the HTTP server: slow clients cannot
//! hold connections, and connections cannot exhaust file descriptors.
//!
//! [`Guarded`] wraps the TCP acceptor:
//! - **A cap on open connections** (`max_connections`, by default derived
//!   from the file-descriptor limit): past it, a new connection is closed at
//!   once, so the descriptors left serve the database pool and the clients
//!   already connected.
//! - **A header-read timeout** (`header_read_timeout_secs`): a request's
//!   headers must be complete within this time from its first byte (from
//!   connecting, for the first request). One byte every few seconds does not
//!   extend it.
//! - **A body-read timeout** (`body_read_timeout_secs`): once the headers are
//!   in, a body (by `Content-Length`, or chunked) may stall at most this long
//!   between bytes.
//!
//! Between requests (after the response starts) no timer runs here; the idle
//! timeout (`idle_timeout_secs`) closes kept-alive connections nobody uses.
//! The guard reads HTTP/1.1 framing only as far as it needs to: the end of
//! the headers and the body length. An HTTP/2 connection (prior knowledge)
//! is recognized by its preface and governed by the cap and the idle timeout.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::Duration,
};

use poem::{
    listener::Acceptor,
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::{Instant, Sleep},
};

/// Limits of [`Guarded`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Option<Duration>,
    pub body_read_timeout: Option<Duration>,
}

impl Limits {
    pub fn from_config(config: &crate::config::Config) -> Self {
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        Self {
            max_connections: match config.max_connections {
                0 => derived_max_connections(config.database_max_connections as usize),
                n => n,
            },
            header_read_timeout: secs(config.header_read_timeout_secs),
            body_read_timeout: secs(config.body_read_timeout_secs),
        }
    }
}

/// Raise the soft file-descriptor limit to the hard one (as most servers
/// do), then leave room for the database pool, logs and the listener.
fn derived_max_connections(pool: usize) -> usize {
    let reserve = pool + 64;
    match raise_fd_limit() {
        Some(limit) => (limit as usize).saturating_sub(reserve).max(16),
        None => 10_000,
    }
}

#[cfg(unix)]
fn raise_fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max.min(1 << 20),
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = raised.rlim_cur;
            }
        }
    }
    Some(lim.rlim_cur)
}

#[cfg(not(unix))]
fn raise_fd_limit() -> Option<u64> {
    None
}

/// Connections refused and closed by the guard, for logs and metrics.
#[derive(Debug, Default)]
pub struct GuardStats {
    pub open: AtomicUsize,
    pub refused: AtomicU64,
    pub timed_out: AtomicU64,
    last_warning: AtomicU64,
}

/// An acceptor whose connections are capped and whose reads are timed.
pub struct Guarded<A> {
    inner: A,
    limits: Limits,
    stats: Arc<GuardStats>,
    started: Instant,
}

impl<A: Acceptor> Guarded<A> {
    pub fn new(inner: A, limits: Limits, stats: Arc<GuardStats>) -> Self {
        tracing::info!(
            max_connections = limits.max_connections,
            header_read_timeout_secs = limits.header_read_timeout.map(|d| d.as_secs()),
            body_read_timeout_secs = limits.body_read_timeout.map(|d| d.as_secs()),
            "connection limits"
        );
        Self {
            inner,
            limits,
            stats,
            started: Instant::now(),
        }
    }

    /// One warning a second at most, however many connections are refused.
    fn warn_refused(&self) {
        let now = self.started.elapsed().as_secs();
        let last = self.stats.last_warning.load(Ordering::Relaxed);
        if now > last
            && self
                .stats
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                max_connections = self.limits.max_connections,
                refused_total = self.stats.refused.load(Ordering::Relaxed),
                "connection limit reached: closing new connections (max_connections)"
            );
        }
    }
}

impl<A: Acceptor> Acceptor for Guarded<A> {
    type Io = GuardedIo<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        loop {
            let (io, local, remote, scheme) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors despite the cap (another part of the
                    // process holds them): wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if self.stats.open.load(Ordering::Acquire) >= self.limits.max_connections {
                drop(io);
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                self.warn_refused();
                continue;
            }
            self.stats.open.fetch_add(1, Ordering::AcqRel);
            return Ok((
                GuardedIo::new(io, self.limits, self.stats.clone()),
                local,
                remote,
                scheme,
            ));
        }
    }
}

/// Where a connection is in its current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading headers, which must be complete by `deadline`.
    Headers { deadline: Option<Instant> },
    /// Reading a body: `remaining` bytes (`None`: chunked, until the
    /// response starts).
    Body { remaining: Option<u64> },
    /// The request is read; waiting for or writing the response, or idle
    /// between requests.
    Done,
    /// HTTP/2 or an upgrade: no framing known here.
    Untracked,
}

/// How much of a request's header block is kept to find its body length.
const HEADER_CAPTURE: usize = 16 * 1024;

/// A guarded connection.
pub struct GuardedIo<T> {
    inner: T,
    limits: Limits,
    stats: Arc<GuardStats>,
    phase: Phase,
    /// The header block so far (up to [`HEADER_CAPTURE`]).
    head: Vec<u8>,
    /// The last bytes of the header block read so far (at most 3), for a
    /// blank line split across reads.
    tail: Vec<u8>,
    /// A body stall timer, armed while a body read waits.
    stall: Option<Pin<Box<Sleep>>>,
    /// The header deadline's timer.
    timer: Option<Pin<Box<Sleep>>>,
    first: bool,
}

impl<T> GuardedIo<T> {
    fn new(inner: T, limits: Limits, stats: Arc<GuardStats>) -> Self {
        let deadline = limits.header_read_timeout.map(|t| Instant::now() + t);
        Self {
            inner,
            limits,
            stats,
            phase: Phase::Headers { deadline },
            head: Vec::new(),
            tail: Vec::new(),
            stall: None,
            timer: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            first: true,
        }
    }

    fn timed_out(&self, what: &str) -> io::Error {
        self.stats.timed_out.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(what, "closing a slow connection");
        io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
    }

    /// Keep the start of the header block, up to [`HEADER_CAPTURE`].
    fn capture(&mut self, bytes: &[u8]) {
        let room = HEADER_CAPTURE.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Account for `bytes` just read.
    fn consumed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.phase {
                Phase::Untracked => return,
                Phase::Done => {
                    // The first byte of the next request starts its clock.
                    let deadline = self.limits.header_read_timeout.map(|t| Instant::now() + t);
                    self.timer = deadline.map(|d| Box::pin(tokio::time::sleep_until(d)));
                    self.head.clear();
                    self.tail.clear();
                    self.phase = Phase::Headers { deadline };
                }
                Phase::Headers { .. } => {
                    if self.first && bytes.starts_with(b"PRI * HTTP/2.0") {
                        self.phase = Phase::Untracked;
                        self.timer = None;
                        return;
                    }
                    self.first = false;
                    match find_end(&self.tail, bytes) {
                        Some(used) => {
                            self.capture(&bytes[..used]);
                            self.tail.clear();
                            self.timer = None;
                            self.phase = match body_length(&self.head) {
                                BodyLength::None => Phase::Done,
                                BodyLength::Fixed(n) => Phase::Body { remaining: Some(n) },
                                BodyLength::Chunked => Phase::Body { remaining: None },
                                BodyLength::Upgrade => Phase::Untracked,
                            };
                            bytes = &bytes[used..];
                        }
                        None => {
                            self.capture(bytes);
                            self.tail
                                .extend_from_slice(&bytes[bytes.len().saturating_sub(3)..]);
                            let excess = self.tail.len().saturating_sub(3);
                            self.tail.drain(..excess);
                            return;
                        }
                    }
                }
                Phase::Body { remaining: Some(n) } => {
                    let used = (bytes.len() as u64).min(n);
                    self.phase = if used == n {
                        Phase::Done
                    } else {
                        Phase::Body {
                            remaining: Some(n - used),
                        }
                    };
                    bytes = &bytes[used as usize..];
                }
                Phase::Body { remaining: None } => return,
            }
        }
    }
}

/// The index in `bytes` just past the blank line ending a header block
/// (CRLF CRLF, or bare LF LF as parsers accept), `tail` being the bytes of
/// the block read before `bytes`.
fn find_end(tail: &[u8], bytes: &[u8]) -> Option<usize> {
    let at = |i: usize, back: usize| -> Option<u8> {
        match i.checked_sub(back) {
            Some(j) => bytes.get(j).copied(),
            None => tail.len().checked_sub(back - i).map(|j| tail[j]),
        }
    };
    bytes.iter().enumerate().find_map(|(i, &b)| {
        let end = b == b'\n'
            && (at(i, 1) == Some(b'\n') || (at(i, 1) == Some(b'\r') && at(i, 2) == Some(b'\n')));
        end.then_some(i + 1)
    })
}

enum BodyLength {
    None,
    Fixed(u64),
    Chunked,
    Upgrade,
}

fn body_length(head: &[u8]) -> BodyLength {
    let text = String::from_utf8_lossy(head);
    let mut length = BodyLength::None;
    for line in text.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return BodyLength::Chunked;
        }
        if name.eq_ignore_ascii_case("upgrade") {
            return BodyLength::Upgrade;
        }
        if name.eq_ignore_ascii_case("content-length") {
            // A malformed length is hyper's to refuse; time it as chunked.
            length = value
                .parse()
                .map(|n| {
                    if n == 0 {
                        BodyLength::None
                    } else {
                        BodyLength::Fixed(n)
                    }
                })
                .unwrap_or(BodyLength::Chunked);
        }
    }
    length
}

impl<T> Drop for GuardedIo<T> {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Phase::Headers {
            deadline: Some(deadline),
        } = this.phase
        {
            if Instant::now() >= deadline {
                return Poll::Ready(Err(this.timed_out("reading the request headers")));
            }
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.stall = None;
                if !matches!(this.phase, Phase::Untracked) {
                    this.consumed(&buf.filled()[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                match this.phase {
                    Phase::Headers { deadline: Some(_) } => {
                        if let Some(timer) = this.timer.as_mut() {
                            if timer.as_mut().poll(cx).is_ready() {
                                return Poll::Ready(Err(
                                    this.timed_out("reading the request headers")
                                ));
                            }
                        }
                    }
                    Phase::Body { .. } => {
                        if let Some(limit) = this.limits.body_read_timeout {
                            let stall = this
                                .stall
                                .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                            if stall.as_mut().poll(cx).is_ready() {
                                this.stall = None;
                                return Poll::Ready(
                                    Err(this.timed_out("reading the request body")),
                                );
                            }
                        }
                    }
                    _ => {}
                }
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // The response has started: whatever the request still had to send,
        // it is the handler's business now (an early answer such as 413).
        if matches!(this.phase, Phase::Body { .. }) {
            this.phase = Phase::Done;
            this.stall = None;
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if matches!(this.phase, Phase::Body { .. }) {
            this.phase = Phase::Done;
            this.stall = None;
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io() -> GuardedIo<()> {
        GuardedIo::new(
            (),
            Limits {
                max_connections: 1,
                header_read_timeout: Some(Duration::from_secs(10)),
                body_read_timeout: Some(Duration::from_secs(10)),
            },
            Arc::new(GuardStats {
                open: AtomicUsize::new(1),
                ..Default::default()
            }),
        )
    }

    #[tokio::test]
    async fn framing_is_followed_across_split_reads_and_keep_alive() {
        let mut c = io();
        c.consumed(b"POST /x HTTP/1.1\r\nContent-Length: 5\r");
        assert!(matches!(c.phase, Phase::Headers { .. }));
        c.consumed(b"\n\r\nab");
        assert_eq!(c.phase, Phase::Body { remaining: Some(3) });
        c.consumed(b"cdeGET / HTTP/1.1\r\n\r\n");
        assert_eq!(c.phase, Phase::Done, "the pipelined GET has no body");
        c.consumed(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(c.phase, Phase::Body { remaining: None });
    }

    #[tokio::test]
    async fn http2_prior_knowledge_is_not_tracked() {
        let mut c = io();
        c.consumed(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert_eq!(c.phase, Phase::Untracked);
    }

    #[test]
    fn the_end_of_a_header_block_is_found() {
        assert_eq!(
            find_end(b"", b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"),
            Some(24)
        );
        assert_eq!(find_end(b"", b"GET / HTTP/1.1\nA: b\n\n"), Some(21));
        assert_eq!(find_end(b"", b"GET / HTTP/1.1\r\nA: b\r\n"), None);
        assert_eq!(find_end(b"b\r\n", b"\r\nbody"), Some(2));
        assert_eq!(find_end(b"\r\n\r", b"\nx"), Some(1));
        assert_eq!(find_end(b"\n", b"\n"), Some(1));
    }
}
