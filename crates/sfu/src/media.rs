//! Media sockets: one UDP socket for every peer (batched receive with `recvmmsg` and GRO
//! through `quinn-udp`), and one ICE-TCP listener whose connections carry RFC 4571/6544
//! length-prefixed frames.

use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tracing::{debug, trace, warn};
use tympan_ice::stun::framing::{FrameReader, encode_frame};

/// Largest UDP datagram we expect (WebRTC keeps packets under the path MTU).
const MAX_DATAGRAM: usize = 2048;
/// A TCP connection that delivers no frame for this long is closed.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Frames queued towards one TCP connection before we drop (media is loss-tolerant).
const TCP_SEND_QUEUE: usize = 256;
/// Most simultaneous ICE-TCP connections.
const MAX_TCP_CONNECTIONS: usize = 1024;

/// The shared UDP media socket with its batch buffers.
pub(crate) struct UdpMedia {
    pub(crate) socket: UdpSocket,
    state: UdpSocketState,
    /// The bound address (its IP may be unspecified).
    pub(crate) local: SocketAddr,
    /// `BATCH_SIZE` receive buffers of `per_buf` bytes each, allocated once.
    bufs: Vec<u8>,
    per_buf: usize,
    metas: [RecvMeta; quinn_udp::BATCH_SIZE],
    /// Datagrams dropped because the kernel send buffer was full, or on send errors.
    pub(crate) send_drops: u64,
}

impl UdpMedia {
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<Self> {
        let std_socket = std::net::UdpSocket::bind(addr)?;
        std_socket.set_nonblocking(true)?;
        let state = UdpSocketState::new((&std_socket).into())?;
        // Room for bursts from many peers.
        let _ = state.set_recv_buffer_size((&std_socket).into(), 4 << 20);
        let _ = state.set_send_buffer_size((&std_socket).into(), 4 << 20);
        let socket = UdpSocket::from_std(std_socket)?;
        let local = socket.local_addr()?;
        let per_buf = (MAX_DATAGRAM * state.gro_segments().max(1)).min(65_536);
        Ok(Self {
            socket,
            state,
            local,
            bufs: vec![0u8; per_buf * quinn_udp::BATCH_SIZE],
            per_buf,
            metas: [RecvMeta::default(); quinn_udp::BATCH_SIZE],
            send_drops: 0,
        })
    }

    /// Receives one batch without waiting; calls `each(local, remote, datagram)` for every
    /// datagram (GRO-coalesced buffers are split at `stride`). Returns the number of
    /// datagrams, or `WouldBlock` when nothing is queued.
    pub(crate) fn try_recv_batch(
        &mut self,
        mut each: impl FnMut(SocketAddr, SocketAddr, &mut [u8]),
    ) -> io::Result<usize> {
        let Self {
            socket,
            state,
            bufs,
            metas,
            local,
            per_buf,
            ..
        } = self;
        let n = {
            // Built on the stack each time: no allocation per batch.
            let mut chunks = bufs.chunks_mut(*per_buf);
            let mut slices: [IoSliceMut<'_>; quinn_udp::BATCH_SIZE] =
                std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
            socket.try_io(tokio::io::Interest::READABLE, || {
                state.recv((&*socket).into(), &mut slices, metas)
            })?
        };
        let mut count = 0;
        for (meta, buf) in metas.iter().zip(bufs.chunks_mut(*per_buf)).take(n) {
            let local_addr = SocketAddr::new(meta.dst_ip.unwrap_or(local.ip()), local.port());
            let len = meta.len.min(buf.len());
            let stride = if meta.stride == 0 { len } else { meta.stride };
            for chunk in buf[..len].chunks_mut(stride.max(1)) {
                count += 1;
                each(local_addr, normalize(meta.addr), chunk);
            }
        }
        Ok(count)
    }

    /// How many equal-sized datagrams one GSO send may carry (1 without GSO).
    pub(crate) fn max_segments(&self) -> usize {
        self.state.max_gso_segments().clamp(1, 64)
    }

    /// Sends `contents` as datagrams of `segment_size` bytes each (the last may be shorter)
    /// in one system call when GSO is available; `None` = one datagram. On a full send
    /// buffer or an error the datagrams are dropped and counted (UDP media tolerates loss;
    /// DTLS/SCTP retransmit).
    pub(crate) fn send_segments(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        contents: &[u8],
        segment_size: Option<usize>,
    ) {
        let src_ip = if self.local.ip().is_unspecified() {
            Some(local.ip())
        } else {
            None
        };
        let transmit = Transmit {
            destination: remote,
            ecn: None,
            contents,
            segment_size,
            src_ip,
        };
        let result = self.socket.try_io(tokio::io::Interest::WRITABLE, || {
            self.state.try_send((&self.socket).into(), &transmit)
        });
        if let Err(e) = result {
            self.send_drops += 1;
            if self.send_drops.is_power_of_two() {
                warn!(%remote, error = %e, drops = self.send_drops, "udp send failed; datagram dropped");
            }
        }
    }
}

/// IPv4-mapped IPv6 senders (dual-stack sockets) are reported as plain IPv4.
fn normalize(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// What the TCP side tells the engine actor.
#[derive(Debug)]
pub(crate) enum TcpEvent {
    /// A connection was accepted; frames for it go to `tx` (already framed bytes).
    Opened {
        local: SocketAddr,
        remote: SocketAddr,
        tx: mpsc::Sender<Vec<u8>>,
    },
    /// One de-framed RFC 4571 frame.
    Frame {
        local: SocketAddr,
        remote: SocketAddr,
        data: Vec<u8>,
    },
    /// The connection ended.
    Closed {
        local: SocketAddr,
        remote: SocketAddr,
    },
}

/// The engine actor's view of open ICE-TCP connections.
#[derive(Default)]
pub(crate) struct TcpConnections {
    conns: HashMap<(SocketAddr, SocketAddr), mpsc::Sender<Vec<u8>>>,
    /// Frames dropped (no such connection, or its queue full).
    pub(crate) drops: u64,
}

impl TcpConnections {
    pub(crate) fn opened(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        tx: mpsc::Sender<Vec<u8>>,
    ) {
        self.conns.insert((local, remote), tx);
    }

    pub(crate) fn closed(&mut self, local: SocketAddr, remote: SocketAddr) {
        self.conns.remove(&(local, remote));
    }

    /// Frames `payload` and queues it on the connection `(local, remote)`.
    pub(crate) fn send(&mut self, local: SocketAddr, remote: SocketAddr, payload: &[u8]) {
        let Some(tx) = self.conns.get(&(local, remote)) else {
            self.drops += 1;
            trace!(%remote, "tcp transmit for a connection that is gone");
            return;
        };
        let mut framed = vec![0u8; payload.len() + 2];
        if encode_frame(payload, &mut framed).is_err() || tx.try_send(framed).is_err() {
            self.drops += 1;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.conns.len()
    }
}

/// Accepts ICE-TCP connections forever, one task per connection.
pub(crate) async fn tcp_accept_loop(listener: TcpListener, events: mpsc::Sender<TcpEvent>) {
    let live = Arc::new(());
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if Arc::strong_count(&live) > MAX_TCP_CONNECTIONS {
            debug!(%remote, "too many ICE-TCP connections; refusing");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let events = events.clone();
        let guard = Arc::clone(&live);
        tokio::spawn(async move {
            tcp_connection(stream, normalize(remote), events).await;
            drop(guard);
        });
    }
}

async fn tcp_connection(stream: TcpStream, remote: SocketAddr, events: mpsc::Sender<TcpEvent>) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let local = normalize(local);
    let (mut read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(TCP_SEND_QUEUE);
    if events
        .send(TcpEvent::Opened { local, remote, tx })
        .await
        .is_err()
    {
        return;
    }
    debug!(%remote, "ice-tcp connection opened");
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if write.write_all(&frame).await.is_err() {
                break;
            }
        }
        let _ = write.shutdown().await;
    });
    let mut reader = FrameReader::new();
    let mut chunk = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match tokio::time::timeout(TCP_IDLE_TIMEOUT, read.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        let mut rest = &chunk[..n];
        while !rest.is_empty() {
            let accepted = reader.push(rest);
            if accepted == 0 {
                break 'read; // cannot happen: the reader holds two maximal frames
            }
            rest = &rest[accepted..];
            while let Some(frame) = reader.next_frame() {
                let data = frame.to_vec();
                if events
                    .send(TcpEvent::Frame {
                        local,
                        remote,
                        data,
                    })
                    .await
                    .is_err()
                {
                    break 'read;
                }
            }
        }
    }
    debug!(%remote, "ice-tcp connection closed");
    let _ = events.send(TcpEvent::Closed { local, remote }).await;
    writer.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gso_run_arrives_as_separate_datagrams_and_batches_are_received_whole() {
        let mut media = UdpMedia::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let to = peer.local_addr().unwrap();

        // Three datagrams in one send: 100, 100 and a 50-byte tail.
        let mut run = Vec::new();
        for (i, len) in [100usize, 100, 50].into_iter().enumerate() {
            run.extend(std::iter::repeat_n(i as u8 + 1, len));
        }
        // (Readiness comes from the reactor: wait for it once, as the server has by the time
        // it answers a peer's first packet.)
        media.socket.writable().await.unwrap();
        let segment = (media.max_segments() > 1).then_some(100);
        if segment.is_none() {
            // No GSO here: send them one by one, as the actor would.
            for chunk in run.chunks(100) {
                media.send_segments(media.local, to, chunk, None);
            }
        } else {
            media.send_segments(media.local, to, &run, segment);
        }
        let mut buf = [0u8; 2048];
        for (i, len) in [100usize, 100, 50].into_iter().enumerate() {
            let (n, from) = peer.recv_from(&mut buf).unwrap();
            assert_eq!(from, media.local);
            assert_eq!(&buf[..n], &vec![i as u8 + 1; len][..], "datagram {i}");
        }
        assert_eq!(media.send_drops, 0);
        eprintln!("gso segments available: {}", media.max_segments());

        // Receive: 40 datagrams of different sizes, read in batches.
        for i in 0..40u8 {
            peer.send_to(&vec![i; 20 + i as usize], media.local)
                .unwrap();
        }
        let mut got: Vec<Vec<u8>> = Vec::new();
        while got.len() < 40 {
            media.socket.readable().await.unwrap();
            let media_local = media.local;
            let _ = media.try_recv_batch(|local, remote, d| {
                assert_eq!(local, media_local);
                assert_eq!(remote, to);
                got.push(d.to_vec());
            });
        }
        for (i, d) in got.iter().enumerate() {
            assert_eq!(d, &vec![i as u8; 20 + i], "datagram {i} in order and whole");
        }
    }
}
