//! Batched UDP I/O on the media socket: what the media task reads and writes per syscall.
//!
//! - [`BatchReceiver`] reads up to [`quinn_udp::BATCH_SIZE`] datagrams per `recvmmsg` through
//!   quinn-udp, with UDP GRO where the kernel has it (back-to-back datagrams of one sender
//!   arrive coalesced and are split again here by their stride).
//! - [`SendBatch`] collects the protected packets of one loop iteration and hands them to
//!   the kernel with `sendmmsg` (quinn-udp has no fan-out to many destinations; nix wraps the
//!   syscall safely). The cost that remains per datagram is the kernel's UDP path, which is
//!   the machine's floor (DESIGN.md: "Budget").
//!
//! Like a router, neither side waits: a full socket buffer drops what does not fit (counted
//! by the caller through [`Flushed`]).

use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};
use quinn_udp::{RecvMeta, UdpSocketState, BATCH_SIZE};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Room per receive slot: a GRO-coalesced train of full-size datagrams fits (the kernel caps
/// a train at 64 KiB).
const RECEIVE_SLOT: usize = 64 * 1024;

/// Most datagrams handed to one `sendmmsg` (the kernel's UIO_MAXIOV is 1024; 64 keeps the
/// header array small and a flush short).
pub(crate) const SEND_BATCH: usize = 64;

/// Reads datagrams in batches; owns the receive buffers.
pub(crate) struct BatchReceiver {
    state: UdpSocketState,
    buffers: Vec<u8>,
    metas: [RecvMeta; BATCH_SIZE],
    /// Datagrams (messages, before GRO splitting) in the last batch.
    received: usize,
}

impl BatchReceiver {
    /// Prepares `socket` for batched receive (non-blocking, GRO where available).
    pub(crate) fn new(socket: &UdpSocket) -> io::Result<Self> {
        Ok(Self {
            state: UdpSocketState::new(socket.into())?,
            buffers: vec![0; RECEIVE_SLOT * BATCH_SIZE],
            metas: [RecvMeta::default(); BATCH_SIZE],
            received: 0,
        })
    }

    /// Reads one batch without waiting. `Ok(false)` when nothing was pending (the socket's
    /// readiness is cleared, so the next `readable().await` waits for new data).
    pub(crate) fn try_receive(&mut self, socket: &UdpSocket) -> io::Result<bool> {
        self.received = 0;
        let Self {
            state,
            buffers,
            metas,
            ..
        } = self;
        let mut chunks = buffers.chunks_mut(RECEIVE_SLOT);
        let mut slices: [IoSliceMut<'_>; BATCH_SIZE] =
            std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
        match socket.try_io(Interest::READABLE, || {
            state.recv(socket.into(), &mut slices, metas)
        }) {
            Ok(count) => {
                self.received = count.min(BATCH_SIZE);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The datagrams of the last batch, each with its sender, GRO trains split.
    pub(crate) fn datagrams(&mut self) -> impl Iterator<Item = (SocketAddr, &mut [u8])> + '_ {
        self.buffers
            .chunks_mut(RECEIVE_SLOT)
            .zip(self.metas.iter())
            .take(self.received)
            .flat_map(|(slot, meta)| {
                let len = meta.len.min(slot.len());
                let stride = if meta.stride == 0 { len } else { meta.stride };
                slot.get_mut(..len)
                    .unwrap_or_default()
                    .chunks_mut(stride.max(1))
                    .map(move |datagram| (meta.addr, datagram))
            })
    }
}

/// What a [`SendBatch::flush`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flushed {
    /// Datagrams the kernel took.
    pub(crate) datagrams: u64,
    /// Their bytes.
    pub(crate) bytes: u64,
    /// Datagrams dropped: socket buffer full, or refused by the kernel.
    pub(crate) failed: u64,
    /// `sendmmsg` calls made.
    pub(crate) syscalls: u64,
}

/// Protected packets waiting for one `sendmmsg`; the buffers come back for reuse.
pub(crate) struct SendBatch {
    packets: Vec<Vec<u8>>,
    destinations: Vec<Option<SockaddrStorage>>,
    /// Sent buffers, for the producers' free lists.
    spent: Vec<Vec<u8>>,
    socket_is_v6: bool,
}

impl SendBatch {
    /// An empty batch for a socket of the given family (a v6 socket sends to v4 peers at
    /// their v4-mapped address).
    pub(crate) fn new(socket_is_v6: bool) -> Self {
        Self {
            packets: Vec::with_capacity(SEND_BATCH),
            destinations: Vec::with_capacity(SEND_BATCH),
            spent: Vec::with_capacity(SEND_BATCH),
            socket_is_v6,
        }
    }

    /// Queues `packet` for `to`. Returns true when the batch is full and must be flushed
    /// before the next push.
    pub(crate) fn push(&mut self, packet: Vec<u8>, to: SocketAddr) -> bool {
        let to = match (self.socket_is_v6, to) {
            (true, SocketAddr::V4(v4)) => {
                SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port())
            }
            _ => to,
        };
        self.packets.push(packet);
        self.destinations.push(Some(SockaddrStorage::from(to)));
        self.packets.len() >= SEND_BATCH
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Sends everything queued. Never waits: what the socket buffer cannot take is dropped.
    pub(crate) fn flush(&mut self, socket: &UdpSocket) -> Flushed {
        let mut flushed = Flushed::default();
        let fd = socket.as_raw_fd();
        // nix's headers hold raw pointers (not `Send`), so they cannot live in the media
        // task's state across an await: two small allocations per batch of up to 64 packets.
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(SEND_BATCH, None);
        let no_control: [ControlMessage<'_>; 0] = [];
        let mut offset = 0;
        while offset < self.packets.len() {
            let pending = self.packets.get(offset..).unwrap_or_default();
            let destinations = self.destinations.get(offset..).unwrap_or_default();
            let mut iter = pending.iter();
            let slices: [[IoSlice<'_>; 1]; SEND_BATCH] =
                std::array::from_fn(|_| [IoSlice::new(iter.next().map_or(&[], Vec::as_slice))]);
            let count = pending.len().min(SEND_BATCH);
            flushed.syscalls += 1;
            match sendmmsg(
                fd,
                &mut headers,
                slices.get(..count).unwrap_or_default(),
                destinations,
                no_control,
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(results) => {
                    let mut sent = 0;
                    for result in results {
                        sent += 1;
                        flushed.bytes += result.bytes as u64;
                    }
                    flushed.datagrams += sent as u64;
                    if sent == 0 {
                        // Nothing taken and no error: drop the rest rather than spin.
                        flushed.failed += (self.packets.len() - offset) as u64;
                        break;
                    }
                    offset += sent;
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) | Err(Errno::ENOBUFS) => {
                    flushed.failed += (self.packets.len() - offset) as u64;
                    break;
                }
                // The first datagram was refused (unreachable, too big...): skip it only.
                Err(_) => {
                    flushed.failed += 1;
                    offset += 1;
                }
            }
        }
        self.destinations.clear();
        self.spent.append(&mut self.packets);
        flushed
    }

    /// Takes back the buffers of sent (or dropped) packets.
    pub(crate) fn take_spent(&mut self) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.spent.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        (a, b)
    }

    #[tokio::test]
    async fn a_flushed_batch_arrives_whole_and_in_order() {
        let (sender, receiver_socket) = pair().await;
        let mut receiver = BatchReceiver::new(&receiver_socket).unwrap();
        let to = receiver_socket.local_addr().unwrap();
        let mut batch = SendBatch::new(false);
        // More than one sendmmsg worth, with varied sizes.
        let packets: Vec<Vec<u8>> = (0..(SEND_BATCH + 10))
            .map(|i| vec![i as u8; 100 + i])
            .collect();
        for packet in &packets {
            if batch.push(packet.clone(), to) {
                let flushed = batch.flush(&sender);
                assert_eq!(flushed.failed, 0);
            }
        }
        let flushed = batch.flush(&sender);
        assert_eq!(flushed.datagrams, 10);
        assert_eq!(batch.take_spent().count(), SEND_BATCH + 10);
        assert!(batch.is_empty());

        let mut received = Vec::new();
        while received.len() < packets.len() {
            receiver_socket.readable().await.unwrap();
            while receiver.try_receive(&receiver_socket).unwrap() {
                for (from, datagram) in receiver.datagrams() {
                    assert_eq!(from, sender.local_addr().unwrap());
                    received.push(datagram.to_vec());
                }
            }
        }
        assert_eq!(received, packets);
    }

    #[tokio::test]
    async fn equal_sized_trains_are_split_back_into_datagrams() {
        let (sender, receiver_socket) = pair().await;
        let mut receiver = BatchReceiver::new(&receiver_socket).unwrap();
        let to = receiver_socket.local_addr().unwrap();
        let mut batch = SendBatch::new(false);
        // Same size from one sender: what GRO coalesces where the kernel does it.
        let packets: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 1200]).collect();
        for packet in &packets {
            batch.push(packet.clone(), to);
        }
        assert_eq!(batch.flush(&sender).datagrams, 20);
        let mut received = Vec::new();
        while received.len() < packets.len() {
            receiver_socket.readable().await.unwrap();
            while receiver.try_receive(&receiver_socket).unwrap() {
                received.extend(receiver.datagrams().map(|(_, d)| d.to_vec()));
            }
        }
        assert_eq!(received, packets);
    }

    #[tokio::test]
    async fn an_unsendable_datagram_is_counted_and_the_rest_still_go() {
        let (sender, receiver_socket) = pair().await;
        let to = receiver_socket.local_addr().unwrap();
        let mut batch = SendBatch::new(false);
        batch.push(vec![1; 10], to);
        // Larger than any UDP datagram: the kernel refuses it (EMSGSIZE).
        batch.push(vec![2; 70_000], to);
        batch.push(vec![3; 10], to);
        let flushed = batch.flush(&sender);
        assert_eq!(flushed.datagrams, 2);
        assert_eq!(flushed.failed, 1);
        assert_eq!(flushed.bytes, 20);
    }
}
