//! The channel-backed [`webrtc_util::Conn`] the `dtls` crate runs on instead of a socket.
//!
//! The trait is declared with `#[async_trait]`; the impl below is that macro's expansion
//! written out (boxed futures), so relais needs no `async-trait` dependency.

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;
use webrtc_util::{Conn, Error as UtilError};

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, UtilError>> + Send + 'a>>;

/// Drop counters shared by the handle, the conn and the task.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) inbound_dropped: AtomicU64,
    pub(super) inbound_oversized: AtomicU64,
    pub(super) outbound_dropped: AtomicU64,
    pub(super) app_data_discarded: AtomicU64,
}

pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Inbound: datagrams the demultiplexer routed to this endpoint. Outbound: datagrams the
/// driver sends to the endpoint's selected 5-tuple. Both bounded; a full outbound queue drops
/// (UDP semantics: DTLS retransmits), it never blocks.
///
/// It also works around a gap in the dtls crate: once its handshake has completed, a DTLS
/// server does not retransmit its last flight (ChangeCipherSpec + Finished) when the client
/// retransmits its own last flight because ours was lost (RFC 6347 §4.2.4), so the client
/// would time out. The conn records the server's last flight and, after completion, resends
/// it when an epoch-0 handshake record arrives (at most once per [`RESEND_MIN_INTERVAL`]).
pub(super) struct HandshakeConn {
    pub(super) inbound: Mutex<mpsc::Receiver<Vec<u8>>>,
    /// Datagrams taken from `inbound` before the DTLS connection started (the server reads
    /// the ClientHello's SRTP offer first); handed to the connection before the others.
    pub(super) first: std::sync::Mutex<std::collections::VecDeque<Vec<u8>>>,
    pub(super) outbound: mpsc::Sender<Vec<u8>>,
    pub(super) counters: Arc<Counters>,
    pub(super) is_server: bool,
    pub(super) completed: AtomicBool,
    pub(super) final_flight: std::sync::Mutex<FinalFlight>,
}

/// Minimum time between two resends of the final flight.
pub(super) const RESEND_MIN_INTERVAL: Duration = Duration::from_millis(500);

/// The server's last flight, recorded from its ChangeCipherSpec on.
#[derive(Debug, Default)]
pub(super) struct FinalFlight {
    datagrams: Vec<Vec<u8>>,
    last_resend: Option<Instant>,
}

const CONTENT_CHANGE_CIPHER_SPEC: u8 = 20;
const CONTENT_HANDSHAKE: u8 = 22;

/// A datagram whose first record is a handshake record in epoch 0 (a retransmitted flight).
fn is_epoch0_handshake(d: &[u8]) -> bool {
    matches!(d, [CONTENT_HANDSHAKE, _, _, 0, 0, ..])
}

impl HandshakeConn {
    async fn recv_inner(&self, buf: &mut [u8]) -> Result<usize, UtilError> {
        let mut inbound = self.inbound.lock().await;
        loop {
            let first = self.first.lock().ok().and_then(|mut f| f.pop_front());
            let received = match first {
                Some(datagram) => Some(datagram),
                None => inbound.recv().await,
            };
            let Some(datagram) = received else {
                // The handle is gone. Returning an error here would make the dtls crate's
                // reader loop spin (it retries every error but a fatal alert); the handshake
                // task notices the dropped handle itself and drops the DTLS connection,
                // which ends the reader. So: wait forever.
                drop(inbound);
                return std::future::pending().await;
            };
            if self.is_server
                && self.completed.load(Ordering::Relaxed)
                && is_epoch0_handshake(&datagram)
            {
                self.resend_final_flight();
            }
            match buf.get_mut(..datagram.len()) {
                Some(dst) => {
                    dst.copy_from_slice(&datagram);
                    return Ok(datagram.len());
                }
                None => bump(&self.counters.inbound_oversized),
            }
        }
    }

    fn resend_final_flight(&self) {
        let Ok(mut flight) = self.final_flight.lock() else {
            return;
        };
        let now = Instant::now();
        if flight
            .last_resend
            .is_some_and(|t| now.duration_since(t) < RESEND_MIN_INTERVAL)
        {
            return;
        }
        flight.last_resend = Some(now);
        for d in &flight.datagrams {
            if self.outbound.try_send(d.clone()).is_err() {
                bump(&self.counters.outbound_dropped);
            }
        }
    }

    fn send_inner(&self, buf: &[u8]) -> usize {
        if self.is_server && !self.completed.load(Ordering::Relaxed) {
            if let Ok(mut flight) = self.final_flight.lock() {
                if buf.first() == Some(&CONTENT_CHANGE_CIPHER_SPEC) {
                    flight.datagrams.clear();
                    flight.datagrams.push(buf.to_vec());
                } else if !flight.datagrams.is_empty() {
                    flight.datagrams.push(buf.to_vec());
                }
            }
        }
        if self.outbound.try_send(buf.to_vec()).is_err() {
            bump(&self.counters.outbound_dropped);
        }
        buf.len()
    }
}

fn not_applicable() -> UtilError {
    UtilError::Other("not applicable to a channel-backed DTLS transport".to_owned())
}

impl Conn for HandshakeConn {
    fn connect<'life0, 'async_trait>(&'life0 self, _addr: SocketAddr) -> BoxFut<'async_trait, ()>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async { Err(not_applicable()) })
    }

    fn recv<'life0, 'life1, 'async_trait>(
        &'life0 self,
        buf: &'life1 mut [u8],
    ) -> BoxFut<'async_trait, usize>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.recv_inner(buf))
    }

    fn recv_from<'life0, 'life1, 'async_trait>(
        &'life0 self,
        _buf: &'life1 mut [u8],
    ) -> BoxFut<'async_trait, (usize, SocketAddr)>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async { Err(not_applicable()) })
    }

    fn send<'life0, 'life1, 'async_trait>(
        &'life0 self,
        buf: &'life1 [u8],
    ) -> BoxFut<'async_trait, usize>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let n = self.send_inner(buf);
        Box::pin(async move { Ok(n) })
    }

    fn send_to<'life0, 'life1, 'async_trait>(
        &'life0 self,
        _buf: &'life1 [u8],
        _target: SocketAddr,
    ) -> BoxFut<'async_trait, usize>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async { Err(not_applicable()) })
    }

    fn local_addr(&self) -> Result<SocketAddr, UtilError> {
        Err(not_applicable())
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    fn close<'life0, 'async_trait>(&'life0 self) -> BoxFut<'async_trait, ()>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async { Ok(()) })
    }

    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }
}
