//! Live capture through libpcap (feature `live-pcap`): for BPF filters and for platforms
//! without AF_PACKET.
//!
//! Not zero copy: a packet libpcap hands over is valid only until the next read (libpcap
//! returns its own ring block to the kernel, or reuses its buffer, on the next call), and the
//! pipeline keeps frames longer than that; so each [`LiveBlock`] copies the packets read into
//! one owned buffer. Receive only: nothing here calls `pcap_inject` or `pcap_sendpacket`.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use otsensor_dissectors::event::Timestamp;

use crate::capture::live::{KernelStats, LiveConfig, LiveSource};
use crate::capture::store::{FrameRef, FrameStore, LiveBlock};
use crate::capture::sys::afpacket::{poll_in, Ready};

/// Packets copied out of libpcap.
struct OwnedStore(Vec<u8>);

impl FrameStore for OwnedStore {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// An open libpcap capture.
pub(crate) struct PcapSource {
    cap: pcap::Capture<pcap::Active>,
    interface: String,
    linktype: u32,
    /// A block is handed over once it holds this many bytes (the AF_PACKET block size).
    block_bytes: usize,
}

fn step<'a, E: std::fmt::Display>(iface: &'a str, step: &str) -> impl Fn(E) -> io::Error + 'a {
    let step = step.to_owned();
    move |e| io::Error::other(format!("{iface}: {step}: {e}"))
}

impl PcapSource {
    /// Opens `cfg.interface`: snap length, promiscuous mode, immediate mode, nanosecond
    /// timestamps, the BPF filter if any, non-blocking reads (waits are `poll` on its fd).
    pub(crate) fn open(cfg: &LiveConfig) -> io::Result<PcapSource> {
        let iface = cfg.interface.as_str();
        let buffer = cfg.block_size.saturating_mul(cfg.block_count).min(i32::MAX as usize) as i32;
        let mut cap = pcap::Capture::from_device(iface)
            .map_err(step(iface, "pcap_create"))?
            .snaplen(cfg.snaplen.min(i32::MAX as u32) as i32)
            .promisc(cfg.promiscuous)
            .immediate_mode(true)
            .timeout(cfg.block_timeout_ms.min(i32::MAX as u32) as i32)
            .precision(pcap::Precision::Nano)
            .buffer_size(buffer)
            .open()
            .map_err(step(iface, "pcap_activate"))?;
        if let Some(bpf) = &cfg.bpf {
            cap.filter(bpf, true).map_err(step(iface, "bpf"))?;
        }
        let cap = cap.setnonblock().map_err(step(iface, "setnonblock"))?;
        let linktype = u32::try_from(cap.get_datalink().0).unwrap_or(0);
        Ok(PcapSource { cap, interface: cfg.interface.clone(), linktype, block_bytes: cfg.block_size.max(1) })
    }
}

/// The capture time; with nanosecond precision requested, `tv_usec` holds nanoseconds.
#[allow(clippy::useless_conversion)] // time_t and suseconds_t are i32 on 32-bit targets
fn timestamp(ts: &libc::timeval) -> Timestamp {
    Timestamp::from_nanos(i64::from(ts.tv_sec) * 1_000_000_000 + i64::from(ts.tv_usec))
}

impl LiveSource for PcapSource {
    fn next_block(&mut self, timeout: Duration) -> io::Result<Option<LiveBlock>> {
        let start = Instant::now();
        let deadline = start.checked_add(timeout).unwrap_or(start + Duration::from_secs(86_400 * 365));
        let mut bytes = Vec::new();
        let mut frames = Vec::new();
        loop {
            // Drain what is ready, up to a block's worth.
            while bytes.len() < self.block_bytes {
                match self.cap.next_packet() {
                    Ok(p) => {
                        let ts = timestamp(&p.header.ts);
                        frames.push(FrameRef {
                            offset: bytes.len(),
                            len: p.data.len(),
                            wire_len: p.header.len,
                            ts,
                            linktype: self.linktype,
                        });
                        bytes.extend_from_slice(p.data);
                    }
                    Err(pcap::Error::TimeoutExpired) => break,
                    Err(e) => return Err(io::Error::other(format!("{}: read: {e}", self.interface))),
                }
            }
            if !frames.is_empty() {
                return Ok(Some(LiveBlock { store: Arc::new(OwnedStore(bytes)), frames }));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            match poll_in(self.cap.as_raw_fd(), deadline - now) {
                Ok(Ready::Readable | Ready::Timeout) => {}
                // The error itself surfaces from the next read.
                Ok(Ready::Error) => {}
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: poll: {e}", self.interface))),
            }
        }
    }

    fn kernel_stats(&mut self) -> io::Result<KernelStats> {
        // libpcap's counters are already cumulative since activation.
        let s = self.cap.stats().map_err(step(&self.interface, "pcap_stats"))?;
        Ok(KernelStats {
            packets: u64::from(s.received),
            drops: u64::from(s.dropped).saturating_add(u64::from(s.if_dropped)),
        })
    }

    fn linktype(&self) -> u32 {
        self.linktype
    }

    fn interface(&self) -> &str {
        &self.interface
    }
}
