//! Client connections and their limits (docs/operations.md#slow-clients).
//!
//! [`Listener`] accepts a connection only while fewer than `server.max_connections` are
//! open; beyond that it stops accepting, and new connections wait in the kernel's backlog
//! until one closes. Each accepted [`Connection`] enforces the deadlines of the time it is
//! not inside a request:
//! - a new connection, or one whose next request has begun to arrive, must deliver the
//!   request's headers within `server.header_timeout_ms`;
//! - after a response, a kept-alive connection may wait `server.idle_timeout_ms` for its
//!   next request;
//! - a response the client does not read for `server.idle_timeout_ms` ends the connection.
//!
//! A deadline that passes fails the connection's next read (or write) with `TimedOut`, and
//! the server closes it. Inside a request the handlers' own limits apply (the body's read
//! deadline, the `/v1` handler timeout). What "inside a request" means is told by
//! [`Tracked`], which serves the router on each connection.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::response::Response;
use axum::serve::IncomingStream;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tower::Service;

use crate::metrics::{HTTP_TIMEOUTS, Metrics};

/// The limits every connection is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// From a connection's opening, or the first byte of a request, to its complete headers.
    pub header_timeout: Duration,
    /// From a response to the next request's first byte; also the longest a response may
    /// wait for the client to read it.
    pub idle_timeout: Duration,
}

/// Accepts connections while fewer than [`ConnectionLimits::max_connections`] are open.
pub struct Listener {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    limits: ConnectionLimits,
    metrics: Metrics,
}

impl Listener {
    pub fn new(listener: TcpListener, limits: ConnectionLimits, metrics: Metrics) -> Self {
        Self {
            listener,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            limits,
            metrics,
        }
    }

    /// Counts the open connections.
    pub fn counter(&self) -> OpenConnections {
        OpenConnections {
            permits: self.permits.clone(),
            max: self.limits.max_connections.max(1),
        }
    }
}

/// How many connections are open, for `/metrics`.
#[derive(Debug, Clone)]
pub struct OpenConnections {
    permits: Arc<Semaphore>,
    max: usize,
}

impl OpenConnections {
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

impl axum::serve::Listener for Listener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        // Never closed: the semaphore lives as long as the listener.
        let permit = self.permits.clone().acquire_owned().await;
        let permit = permit.expect("the connection semaphore is never closed");
        loop {
            match self.listener.accept().await {
                Ok((stream, address)) => {
                    let connection =
                        Connection::new(stream, permit, self.limits, self.metrics.clone());
                    return (connection, address);
                }
                Err(err) if is_connection_error(&err) => {}
                Err(err) => {
                    // Most likely out of file descriptors: wait for some to be closed.
                    tracing::error!(%err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// What the requests of one connection tell it: whether one is in progress.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Bumped whenever the last request in flight ends.
    idle_epoch: AtomicU64,
    /// When that happened, in milliseconds since `opened`.
    idle_since_ms: AtomicU64,
    /// A response has been sent: the connection is kept alive, not new.
    served: AtomicBool,
}

impl Activity {
    fn idle_since(&self) -> Instant {
        self.opened + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire))
    }
}

/// The application served on each connection, marking each request in flight on its
/// connection until its response body is sent, so that the connection's deadlines pause
/// meanwhile. The make-service given to `axum::serve`.
#[derive(Clone)]
pub struct Tracked {
    router: Router,
}

impl Tracked {
    pub fn new(router: Router) -> Self {
        Self { router }
    }
}

impl Service<IncomingStream<'_, Listener>> for Tracked {
    type Response = TrackedRouter;
    type Error = Infallible;
    type Future = std::future::Ready<Result<TrackedRouter, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'_, Listener>) -> Self::Future {
        std::future::ready(Ok(TrackedRouter {
            router: self.router.clone(),
            activity: stream.io().activity.clone(),
        }))
    }
}

/// The router as served on one connection; see [`Tracked`].
#[derive(Clone)]
pub struct TrackedRouter {
    router: Router,
    activity: Arc<Activity>,
}

impl Service<Request> for TrackedRouter {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let guard = InFlight::begin(self.activity.clone());
        let answer = self.router.call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| {
                Body::new(TrackedBody {
                    body,
                    _guard: guard,
                })
            }))
        })
    }
}

/// One request in progress; dropped when its response body is done.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        let since = u64::try_from(activity.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        activity.idle_since_ms.store(since, Ordering::Release);
        activity.served.store(true, Ordering::Release);
        if activity.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            activity.idle_epoch.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// A response body that keeps its request in flight until it is sent or dropped.
struct TrackedBody {
    body: Body,
    _guard: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A client connection with the deadlines of the module's description.
pub struct Connection {
    stream: TcpStream,
    activity: Arc<Activity>,
    limits: ConnectionLimits,
    metrics: Metrics,
    /// The first byte of a request head, with the idle epoch it arrived in.
    head_started: Option<(u64, Instant)>,
    read_deadline: Pin<Box<Sleep>>,
    /// Since when a write has been waiting for the client to read.
    write_stalled: Option<Instant>,
    write_deadline: Pin<Box<Sleep>>,
    timed_out: bool,
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    fn new(
        stream: TcpStream,
        permit: OwnedSemaphorePermit,
        limits: ConnectionLimits,
        metrics: Metrics,
    ) -> Self {
        let opened = Instant::now();
        Self {
            stream,
            activity: Arc::new(Activity {
                opened,
                in_flight: AtomicUsize::new(0),
                idle_epoch: AtomicU64::new(0),
                idle_since_ms: AtomicU64::new(0),
                served: AtomicBool::new(false),
            }),
            limits,
            metrics,
            head_started: None,
            read_deadline: Box::pin(tokio::time::sleep_until(opened + limits.header_timeout)),
            write_stalled: None,
            write_deadline: Box::pin(tokio::time::sleep_until(opened + limits.idle_timeout)),
            timed_out: false,
            _permit: permit,
        }
    }

    /// The deadline for the next read while no request is in flight, with what it bounds.
    fn read_deadline(&self) -> Option<(Instant, &'static str)> {
        let activity = &self.activity;
        if activity.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let epoch = activity.idle_epoch.load(Ordering::Acquire);
        Some(match self.head_started {
            Some((started_in, at)) if started_in == epoch => {
                (at + self.limits.header_timeout, "header")
            }
            _ if activity.served.load(Ordering::Acquire) => {
                (activity.idle_since() + self.limits.idle_timeout, "idle")
            }
            _ => (activity.opened + self.limits.header_timeout, "header"),
        })
    }

    /// Notes the first byte of a request head read while no request is in flight.
    fn bytes_read(&mut self) {
        let activity = &self.activity;
        if activity.in_flight.load(Ordering::Acquire) > 0 {
            return;
        }
        let epoch = activity.idle_epoch.load(Ordering::Acquire);
        if self
            .head_started
            .is_none_or(|(started_in, _)| started_in != epoch)
        {
            self.head_started = Some((epoch, Instant::now()));
        }
    }

    /// `Pending`, or the error that ends a connection whose read deadline has passed.
    fn poll_read_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some((deadline, timeout)) = self.read_deadline() else {
            return Poll::Pending;
        };
        ready!(poll_until(self.read_deadline.as_mut(), deadline, cx));
        Poll::Ready(Err(self.timed_out(timeout)))
    }

    /// `Pending`, or the error that ends a connection whose client has not read for too long.
    fn poll_write_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let since = *self.write_stalled.get_or_insert_with(Instant::now);
        let deadline = since + self.limits.idle_timeout;
        ready!(poll_until(self.write_deadline.as_mut(), deadline, cx));
        Poll::Ready(Err(self.timed_out("write")))
    }

    fn timed_out(&mut self, timeout: &'static str) -> io::Error {
        if !std::mem::replace(&mut self.timed_out, true) {
            self.metrics.add(HTTP_TIMEOUTS, &[("timeout", timeout)], 1);
            tracing::debug!(timeout, "connection closed by its timeout");
        }
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connection {timeout} timeout"),
        )
    }

    fn wrote<T>(&mut self, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.write_stalled = None;
        }
        result
    }
}

/// Ready once `deadline` has passed. The timer is moved only to an earlier deadline: when
/// it fires before a later one, it is set again then. Deadlines mostly move later (each
/// request pushes the idle one on), so a busy connection rarely touches the timer.
fn poll_until(mut timer: Pin<&mut Sleep>, deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
    if timer.deadline() > deadline {
        timer.as_mut().reset(deadline);
    }
    loop {
        ready!(timer.as_mut().poll(cx));
        if timer.deadline() >= deadline {
            return Poll::Ready(());
        }
        timer.as_mut().reset(deadline);
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => this.poll_read_deadline(cx),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Pending => this.poll_write_deadline(cx),
            ready => this.wrote(ready),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.poll_write_deadline(cx),
            ready => this.wrote(ready),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Raises the process's open-file limit towards what `wanted` connections need and returns
/// how many connections it allows: each takes a descriptor, and the store, the spool and the
/// listeners take some more (`reserve`).
pub fn connections_allowed(wanted: usize, reserve: usize) -> usize {
    let needed = (wanted + reserve) as u64;
    match rlimit::increase_nofile_limit(needed) {
        Ok(limit) if limit >= needed => wanted,
        Ok(limit) => {
            let allowed = usize::try_from(limit)
                .unwrap_or(usize::MAX)
                .saturating_sub(reserve)
                .max(1);
            tracing::warn!(
                wanted,
                allowed,
                open_file_limit = limit,
                "server.max_connections is more than the open-file limit allows; serving fewer"
            );
            allowed
        }
        Err(err) => {
            tracing::warn!(%err, "cannot read the open-file limit; server.max_connections as configured");
            wanted
        }
    }
}
