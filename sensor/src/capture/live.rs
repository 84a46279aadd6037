//! Live capture from a network interface.
//!
//! Two backends behind one trait, [`LiveSource`]:
//!
//! - [`Backend::AfPacket`] (always built, needs nothing but Rust): a Linux AF_PACKET
//!   `TPACKET_V3` ring mapped into memory. Zero copy: each [`LiveBlock`] is one ring block and
//!   its frames are ranges of it; the block returns to the kernel when the last `Arc` to its
//!   store drops. Stripped 802.1Q tags are put back, so frames are as they were on the wire.
//! - [`Backend::Libpcap`] (feature `live-pcap`, needs libpcap): copies packets into an owned
//!   buffer per block; takes a BPF filter.
//!
//! Both are receive only: nothing here can transmit on the monitored network. Open every
//! source first, then [`drop_privileges`]: the open sources keep working.
//!
//! ```no_run
//! use std::time::Duration;
//! use otsensor::capture::live::{self, Backend, LiveConfig};
//!
//! let cfg = LiveConfig { interface: "eth1".into(), ..LiveConfig::default() };
//! let mut src = live::open(Backend::AfPacket, &cfg)?;
//! live::drop_privileges("nobody")?;
//! while let Some(block) = src.next_block(Duration::from_millis(100))? {
//!     for f in &block.frames {
//!         let _bytes = f.data(&*block.store);
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io;
use std::time::Duration;

use crate::capture::store::LiveBlock;
use crate::capture::sys;

/// How to capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Linux AF_PACKET `TPACKET_V3` ring, zero copy.
    AfPacket,
    /// libpcap (feature `live-pcap`).
    Libpcap,
}

/// What to capture and how big the ring is.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Interface name (`eth1`).
    pub interface: String,
    /// Bytes kept of each frame; default 65535.
    pub snaplen: u32,
    /// Ring block size in bytes: a power of two, a multiple of the page size; default 1 MiB.
    pub block_size: usize,
    /// Ring blocks; default 64.
    pub block_count: usize,
    /// TPACKET_V3 retire timeout: a block with at least one frame is handed over after this
    /// long even if not full; default 10. (libpcap: the packet buffer timeout.)
    pub block_timeout_ms: u32,
    /// Put the interface in promiscuous mode while open; default true.
    pub promiscuous: bool,
    /// BPF filter expression, libpcap only: [`Backend::AfPacket`] refuses `Some`.
    pub bpf: Option<String>,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            interface: String::new(),
            snaplen: 65535,
            block_size: 1 << 20,
            block_count: 64,
            block_timeout_ms: 10,
            promiscuous: true,
            bpf: None,
        }
    }
}

/// Kernel counters, cumulative since the source was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Frames the kernel saw for this capture, dropped ones included.
    pub packets: u64,
    /// Frames the kernel dropped because the ring (or buffer) was full.
    pub drops: u64,
}

/// An open live capture.
pub trait LiveSource: Send {
    /// The next block of frames, or `Ok(None)` when `timeout` passed with nothing (or when the
    /// next ring block is still held by the pipeline). Never blocks longer than `timeout`.
    fn next_block(&mut self, timeout: Duration) -> io::Result<Option<LiveBlock>>;
    /// Kernel counters since open.
    fn kernel_stats(&mut self) -> io::Result<KernelStats>;
    /// LINKTYPE_ of every frame (LINKTYPE_ETHERNET = 1 for Ethernet interfaces).
    fn linktype(&self) -> u32;
    /// The interface captured.
    fn interface(&self) -> &str;
}

/// Opens `cfg.interface` with `backend`. Errors name the interface and the failing step
/// (`eth9: bind: No such device`).
pub fn open(backend: Backend, cfg: &LiveConfig) -> io::Result<Box<dyn LiveSource>> {
    let iface = &cfg.interface;
    let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidInput, format!("{iface}: {msg}"));
    if cfg.snaplen == 0 {
        return Err(invalid("snaplen must be at least 1".into()));
    }
    match backend {
        Backend::AfPacket => {
            if cfg.bpf.is_some() {
                return Err(invalid(
                    "bpf: filters need the libpcap backend (rebuild with --features live-pcap); \
                     AF_PACKET captures everything"
                        .into(),
                ));
            }
            let page = sys::afpacket::page_size();
            if !cfg.block_size.is_power_of_two() || cfg.block_size < page {
                return Err(invalid(format!(
                    "block_size {} must be a power of two and at least the page size ({page})",
                    cfg.block_size
                )));
            }
            if cfg.block_count == 0 {
                return Err(invalid("block_count must be at least 1".into()));
            }
            let src = sys::afpacket::AfPacket::open(&sys::afpacket::RingParams {
                interface: cfg.interface.clone(),
                snaplen: cfg.snaplen,
                block_size: cfg.block_size,
                block_count: cfg.block_count,
                block_timeout_ms: cfg.block_timeout_ms,
                promiscuous: cfg.promiscuous,
            })?;
            Ok(Box::new(src))
        }
        #[cfg(feature = "live-pcap")]
        Backend::Libpcap => Ok(Box::new(crate::capture::pcap_live::PcapSource::open(cfg)?)),
        #[cfg(not(feature = "live-pcap"))]
        Backend::Libpcap => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{iface}: libpcap backend not built in: rebuild with --features live-pcap"),
        )),
    }
}

/// Switches the process to `user` (supplementary groups, gid, uid), and checks that root
/// cannot be regained. Call after opening the sources.
pub fn drop_privileges(user: &str) -> io::Result<()> {
    sys::privs::drop_privileges(user)
}

impl LiveSource for sys::afpacket::AfPacket {
    fn next_block(&mut self, timeout: Duration) -> io::Result<Option<LiveBlock>> {
        sys::afpacket::AfPacket::next_block(self, timeout)
    }
    fn kernel_stats(&mut self) -> io::Result<KernelStats> {
        sys::afpacket::AfPacket::kernel_stats(self)
    }
    fn linktype(&self) -> u32 {
        sys::afpacket::AfPacket::linktype(self)
    }
    fn interface(&self) -> &str {
        sys::afpacket::AfPacket::interface(self)
    }
}
