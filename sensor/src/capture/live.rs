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
//! loop {
//!     let Some(block) = src.next_block(Duration::from_millis(100))? else {
//!         continue; // nothing within 100 ms: a chance to flush, export metrics, check for shutdown
//!     };
//!     for f in &block.frames {
//!         let _bytes = f.data(&*block.store);
//!     }
//!     // `block` drops here: the ring block goes back to the kernel.
//! }
//! # #[allow(unreachable_code)]
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
    /// long even if not full (up to about twice this for a frame landing in a freshly opened
    /// block); 0 lets the kernel choose from the link speed; default 10. At low packet rates
    /// each block carries only the frames of one timeout, so the ring holds about
    /// `block_count * block_timeout_ms` of traffic (640 ms by default) whatever its byte size.
    /// (libpcap: the packet buffer timeout.)
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
    ///
    /// AF_PACKET: may be called while blocks are held (they are `Send + Sync`, drop them on any
    /// thread); a held next block is waited for, up to `timeout`, then `Ok(None)`; it is never
    /// handed out twice. An `Err` need not be final (`ENETDOWN` when the interface goes down:
    /// capture resumes when it comes back up).
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::UdpSocket;
    use std::path::Path;
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    use super::*;
    use crate::capture::store::FrameRef;
    use crate::capture::sys::afpacket::enter_netns;
    use crate::capture::sys::privs::is_root;

    /// UDP port the datagrams go to.
    const PORT: u16 = 5502;

    /// True when the test can run; otherwise prints why it is skipped, or fails under CI=true.
    fn need_root(test: &str) -> bool {
        if is_root() {
            return true;
        }
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test} needs root (network namespaces, AF_PACKET) and CI=true forbids skipping it"
        );
        eprintln!("SKIPPED {test}: needs root (network namespaces, AF_PACKET)");
        false
    }

    fn run(args: &[&str]) -> String {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn parse_mac(s: &str) -> [u8; 6] {
        let mut m = [0u8; 6];
        for (d, p) in m.iter_mut().zip(s.split(':')) {
            *d = u8::from_str_radix(p, 16).expect("MAC octet");
        }
        m
    }

    static LABS: AtomicUsize = AtomicUsize::new(0);

    /// A network namespace of our own with a veth pair: `cap`, where we capture (no address),
    /// and `peer` (192.0.2.2/24). The peer knows 192.0.2.1 as `cap`'s MAC (a static
    /// neighbour), so nothing ARPs, and IPv6 is off everywhere, so the kernel itself sends
    /// nothing. Deleted on drop, panics included.
    struct Lab {
        ns: String,
        cap: String,
        cap_mac: [u8; 6],
        peer: String,
        peer_mac: [u8; 6],
    }

    impl Lab {
        fn new() -> Lab {
            let base = format!("olc{}x{}", std::process::id(), LABS.fetch_add(1, Ordering::Relaxed));
            let (cap, peer) = (format!("{base}a"), format!("{base}b"));
            let ns = base;
            run(&["ip", "netns", "add", &ns]);
            // From here on the guard deletes the namespace and the interfaces in it.
            let mut lab = Lab { ns, cap, cap_mac: [0; 6], peer: peer.clone(), peer_mac: [0; 6] };
            let ns = lab.ns.clone();
            let sysctl = |key: &str| run(&["ip", "netns", "exec", &ns, "sysctl", "-qw", &format!("{key}=1")]);
            sysctl("net.ipv6.conf.all.disable_ipv6");
            sysctl("net.ipv6.conf.default.disable_ipv6");
            run(&["ip", "-n", &ns, "link", "add", &lab.cap, "type", "veth", "peer", "name", &peer]);
            for i in [&lab.cap, &peer] {
                sysctl(&format!("net.ipv6.conf.{i}.disable_ipv6"));
            }
            run(&["ip", "-n", &ns, "addr", "add", "192.0.2.2/24", "dev", &peer]);
            let mac = |i: &str| run(&["ip", "netns", "exec", &ns, "cat", &format!("/sys/class/net/{i}/address")]);
            let cap_mac = mac(&lab.cap);
            run(&["ip", "-n", &ns, "neigh", "add", "192.0.2.1", "lladdr", &cap_mac, "dev", &peer, "nud", "permanent"]);
            for i in [&lab.cap, &peer] {
                run(&["ip", "-n", &ns, "link", "set", i, "up"]);
            }
            lab.cap_mac = parse_mac(&cap_mac);
            lab.peer_mac = parse_mac(&mac(&peer));
            lab
        }

        fn netns_path(&self) -> String {
            format!("/var/run/netns/{}", self.ns)
        }

        /// Frames the capture interface has transmitted.
        fn cap_tx_packets(&self) -> u64 {
            let path = format!("/sys/class/net/{}/statistics/tx_packets", self.cap);
            run(&["ip", "netns", "exec", &self.ns, "cat", &path]).parse().expect("tx_packets")
        }

        fn config(&self) -> LiveConfig {
            LiveConfig { interface: self.cap.clone(), block_count: 8, ..LiveConfig::default() }
        }

        /// Opens a capture on `cap` from a thread inside the namespace.
        fn open(&self, backend: Backend, cfg: &LiveConfig) -> io::Result<Box<dyn LiveSource>> {
            let (path, cfg) = (self.netns_path(), cfg.clone());
            std::thread::spawn(move || {
                enter_netns(Path::new(&path))?;
                open(backend, &cfg)
            })
            .join()
            .expect("open thread")
        }

        /// A UDP socket of the namespace bound to `addr` (it stays in the namespace when used
        /// from other threads).
        fn udp(&self, addr: &str) -> UdpSocket {
            let (path, addr) = (self.netns_path(), addr.to_owned());
            std::thread::spawn(move || {
                enter_netns(Path::new(&path))?;
                UdpSocket::bind(addr.as_str())
            })
            .join()
            .expect("socket thread")
            .expect("bind UDP socket in namespace")
        }
    }

    impl Drop for Lab {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        }
    }

    /// The payload of datagram `i`, padded to 48 bytes so frames need no Ethernet padding.
    fn payload(tag: &str, i: usize) -> Vec<u8> {
        let mut p = format!("otsensor live capture {tag} {i:06}").into_bytes();
        p.resize(p.len().max(48), b'.');
        p
    }

    /// Frames copied out of their blocks, blocks dropped at once; stops after `want` frames or
    /// `within`. Returns the frames and how many blocks carried them.
    fn collect(src: &mut dyn LiveSource, want: usize, within: Duration) -> (Vec<(Vec<u8>, FrameRef)>, usize) {
        let deadline = Instant::now() + within;
        let (mut frames, mut blocks) = (Vec::new(), 0);
        while frames.len() < want && Instant::now() < deadline {
            if let Some(block) = src.next_block(Duration::from_millis(50)).expect("next_block") {
                blocks += 1;
                for f in &block.frames {
                    frames.push((f.data(&*block.store).to_vec(), *f));
                }
            }
        }
        (frames, blocks)
    }

    /// Checks `ip` (an IPv4 packet) is exactly the UDP datagram `payload` from `src` to `dst`,
    /// port [`PORT`], and returns its sequence number.
    fn check_udp(ip: &[u8], src: [u8; 4], dst: [u8; 4], tag: &str) -> Option<usize> {
        if ip.len() < 28 || ip[0] != 0x45 || ip[9] != 17 || ip[12..16] != src || ip[16..20] != dst {
            return None;
        }
        assert_eq!(usize::from(u16::from_be_bytes([ip[2], ip[3]])), ip.len(), "IPv4 total length");
        let sum = ip[..20].chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum::<u32>();
        assert_eq!((sum & 0xffff) + (sum >> 16), 0xffff, "IPv4 header checksum");
        let udp = &ip[20..];
        assert_eq!(u16::from_be_bytes([udp[2], udp[3]]), PORT);
        assert_eq!(usize::from(u16::from_be_bytes([udp[4], udp[5]])), udp.len(), "UDP length");
        let body = &udp[8..];
        let i: usize = std::str::from_utf8(&body[23 + tag.len()..29 + tag.len()]).ok()?.parse().ok()?;
        assert_eq!(body, &payload(tag, i)[..], "payload bytes");
        Some(i)
    }

    fn now_nanos() -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_nanos() as i64
    }

    #[test]
    fn captures_every_udp_datagram_exactly_and_never_transmits() {
        if !need_root("captures_every_udp_datagram_exactly_and_never_transmits") {
            return;
        }
        let lab = Lab::new();
        let tx_before = lab.cap_tx_packets();
        let mut src = lab.open(Backend::AfPacket, &lab.config()).expect("open capture");
        assert_eq!(src.linktype(), 1);
        assert_eq!(src.interface(), lab.cap);
        let sock = lab.udp("192.0.2.2:0");
        let t0 = now_nanos();
        const N: usize = 20;
        for i in 0..N {
            sock.send_to(&payload("plain", i), ("192.0.2.1", PORT)).expect("send");
        }
        let (frames, _) = collect(&mut *src, N, Duration::from_secs(5));
        let t1 = now_nanos();
        let mut seen = BTreeMap::new();
        for (data, f) in &frames {
            assert_eq!((f.len, f.wire_len as usize, f.linktype), (data.len(), data.len(), 1));
            assert_eq!(&data[..6], &lab.cap_mac, "destination MAC");
            assert_eq!(&data[6..12], &lab.peer_mac, "source MAC");
            assert_eq!(&data[12..14], &[0x08, 0x00], "ethertype");
            let i = check_udp(&data[14..], [192, 0, 2, 2], [192, 0, 2, 1], "plain").expect("our datagram");
            let ts = f.ts.as_nanos();
            assert!(ts >= t0 - 1_000_000_000 && ts <= t1 + 1_000_000_000, "timestamp {} outside the test", f.ts);
            *seen.entry(i).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), N, "datagrams seen: {seen:?}");
        assert!(seen.values().all(|&n| n == 1), "each datagram once: {seen:?}");
        let stats = src.kernel_stats().expect("stats");
        assert_eq!(stats, KernelStats { packets: N as u64, drops: 0 });
        // Cumulative, not reset by reading.
        assert_eq!(src.kernel_stats().expect("stats").packets, N as u64);
        drop(src);
        assert_eq!(lab.cap_tx_packets(), tx_before, "the capture interface transmitted");
    }

    /// An Ethernet frame with an 802.1Q tag: TPID 0x8100, PCP 3, VID 100, carrying the UDP
    /// datagram `payload("vlan", i)` from 198.51.100.2 to 198.51.100.1.
    fn tagged_frame(lab: &Lab, i: usize) -> Vec<u8> {
        let body = payload("vlan", i);
        let mut f = Vec::new();
        f.extend_from_slice(&lab.cap_mac); // destination MAC
        f.extend_from_slice(&lab.peer_mac); // source MAC
        f.extend_from_slice(&[0x81, 0x00]); // TPID 802.1Q
        f.extend_from_slice(&[0x60, 0x64]); // TCI: PCP 3, DEI 0, VID 100
        f.extend_from_slice(&[0x08, 0x00]); // ethertype IPv4
        let total = (20 + 8 + body.len()) as u16;
        let mut ip = vec![
            0x45,
            0x00, // version 4, IHL 5, DSCP/ECN 0
            (total >> 8) as u8,
            total as u8, // total length
            0x12,
            0x34,
            0x40,
            0x00, // id, flags DF, fragment offset 0
            64,
            17,
            0,
            0, // TTL, protocol UDP, checksum (below)
            198,
            51,
            100,
            2, // source
            198,
            51,
            100,
            1, // destination
        ];
        let sum = ip.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum::<u32>();
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        let ulen = (8 + body.len()) as u16;
        f.extend_from_slice(&[0x9c, 0x40]); // source port 40000
        f.extend_from_slice(&PORT.to_be_bytes()); // destination port
        f.extend_from_slice(&ulen.to_be_bytes()); // length
        f.extend_from_slice(&[0, 0]); // checksum: none
        f.extend_from_slice(&body);
        f
    }

    /// Sends raw frames out of the peer end (a packet socket of a python3 child in the
    /// namespace: never the capture socket, which is receive only).
    fn send_raw(lab: &Lab, frames: &[Vec<u8>]) {
        let script = "import socket, sys\n\
                      s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
                      s.bind((sys.argv[1], 0))\n\
                      for h in sys.argv[2:]: s.send(bytes.fromhex(h))\n";
        let hex: Vec<String> = frames.iter().map(|f| f.iter().map(|b| format!("{b:02x}")).collect()).collect();
        let mut args = vec!["ip", "netns", "exec", &lab.ns, "python3", "-c", script, &lab.peer];
        args.extend(hex.iter().map(String::as_str));
        run(&args);
    }

    #[test]
    fn restores_the_802_1q_tag_the_kernel_stripped() {
        if !need_root("restores_the_802_1q_tag_the_kernel_stripped") {
            return;
        }
        // This kernel may lack 8021q (no VLAN subinterfaces), so the tagged frames are written
        // whole from the peer; the receive path strips the tag into the skb either way
        // (skb_vlan_untag), and AF_PACKET reports it in tp_vlan_tci.
        let lab = Lab::new();
        let mut src = lab.open(Backend::AfPacket, &lab.config()).expect("open capture");
        let sent: Vec<Vec<u8>> = (0..3).map(|i| tagged_frame(&lab, i)).collect();
        send_raw(&lab, &sent);
        let (frames, _) = collect(&mut *src, 3, Duration::from_secs(5));
        assert_eq!(frames.len(), 3);
        for ((data, f), want) in frames.iter().zip(&sent) {
            assert_eq!(&data[12..16], &[0x81, 0x00, 0x60, 0x64], "TPID and TCI restored");
            assert_eq!(data, want, "the frame as it was on the wire");
            assert_eq!((f.len, f.wire_len as usize), (want.len(), want.len()));
        }
    }

    /// One page per block, four blocks, blocks retired after 1 ms.
    fn small_ring(lab: &Lab) -> LiveConfig {
        LiveConfig {
            block_size: crate::capture::sys::afpacket::page_size(),
            block_count: 4,
            block_timeout_ms: 1,
            ..lab.config()
        }
    }

    #[test]
    fn gives_blocks_back_so_more_frames_than_blocks_pass() {
        if !need_root("gives_blocks_back_so_more_frames_than_blocks_pass") {
            return;
        }
        let lab = Lab::new();
        let cfg = small_ring(&lab);
        let mut src = lab.open(Backend::AfPacket, &cfg).expect("open capture");
        let sock = lab.udp("192.0.2.2:0");
        let (mut got, mut blocks) = (0, 0);
        // In lockstep, so each datagram gets a block of its own: ten times round the ring.
        for i in 0..10 * cfg.block_count {
            sock.send_to(&payload("ring", i), ("192.0.2.1", PORT)).expect("send");
            let (frames, b) = collect(&mut *src, 1, Duration::from_secs(5));
            assert_eq!(frames.len(), 1, "datagram {i} not captured");
            assert_eq!(check_udp(&frames[0].0[14..], [192, 0, 2, 2], [192, 0, 2, 1], "ring"), Some(i));
            got += 1;
            blocks += b;
        }
        assert!(blocks > cfg.block_count, "{blocks} blocks");
        let stats = src.kernel_stats().expect("stats");
        assert_eq!(stats, KernelStats { packets: got as u64, drops: 0 });
    }

    #[test]
    fn holding_every_block_yields_none_and_the_kernel_counts_drops() {
        if !need_root("holding_every_block_yields_none_and_the_kernel_counts_drops") {
            return;
        }
        let lab = Lab::new();
        let cfg = small_ring(&lab);
        let mut src = lab.open(Backend::AfPacket, &cfg).expect("open capture");
        let sock = lab.udp("192.0.2.2:0");
        let mut held = Vec::new();
        for i in 0..cfg.block_count {
            sock.send_to(&payload("held", i), ("192.0.2.1", PORT)).expect("send");
            let block = src.next_block(Duration::from_secs(5)).expect("next_block").expect("a block");
            held.push(block);
        }
        // The ring is all ours: the next block is still held, so nothing, after the timeout.
        let t = Instant::now();
        assert!(src.next_block(Duration::from_millis(200)).expect("next_block").is_none());
        assert!(t.elapsed() < Duration::from_secs(2), "next_block blocked past its timeout");
        for i in 0..10 {
            sock.send_to(&payload("dropped", i), ("192.0.2.1", PORT)).expect("send");
        }
        std::thread::sleep(Duration::from_millis(100));
        assert!(src.next_block(Duration::from_millis(50)).expect("next_block").is_none());
        let stats = src.kernel_stats().expect("stats");
        assert!(stats.drops >= 10, "{stats:?}");
        assert_eq!(stats.packets, cfg.block_count as u64 + stats.drops, "{stats:?}");
        // Held blocks are intact, and once they go back capture resumes.
        for (i, b) in held.iter().enumerate() {
            let f = b.frames[0];
            assert_eq!(check_udp(&f.data(&*b.store)[14..], [192, 0, 2, 2], [192, 0, 2, 1], "held"), Some(i));
        }
        drop(held);
        sock.send_to(&payload("after", 0), ("192.0.2.1", PORT)).expect("send");
        let (frames, _) = collect(&mut *src, 1, Duration::from_secs(5));
        assert_eq!(frames.len(), 1, "capture did not resume");
        assert_eq!(check_udp(&frames[0].0[14..], [192, 0, 2, 2], [192, 0, 2, 1], "after"), Some(0));
    }

    #[test]
    fn open_errors_name_the_interface_and_the_step() {
        let cfg = LiveConfig { interface: "otsnodev0".into(), ..LiveConfig::default() };
        let e = open(Backend::AfPacket, &cfg).err().expect("no such interface");
        let msg = e.to_string();
        if is_root() {
            assert!(msg.starts_with("otsnodev0: bind: No such device"), "{msg}");
        } else {
            assert!(msg.starts_with("otsnodev0: socket: "), "{msg}");
        }
    }

    #[test]
    fn af_packet_refuses_a_bpf_filter() {
        let cfg = LiveConfig { interface: "lo".into(), bpf: Some("udp".into()), ..LiveConfig::default() };
        let msg = open(Backend::AfPacket, &cfg).err().expect("refused").to_string();
        assert!(msg.starts_with("lo: bpf: ") && msg.contains("live-pcap"), "{msg}");
    }

    #[test]
    fn rejects_a_block_size_that_is_not_a_power_of_two() {
        let cfg = LiveConfig { interface: "lo".into(), block_size: 3 << 12, ..LiveConfig::default() };
        let e = open(Backend::AfPacket, &cfg).err().expect("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("block_size"), "{e}");
    }

    #[cfg(not(feature = "live-pcap"))]
    #[test]
    fn libpcap_without_the_feature_says_how_to_rebuild() {
        let cfg = LiveConfig { interface: "lo".into(), ..LiveConfig::default() };
        let msg = open(Backend::Libpcap, &cfg).err().expect("not built").to_string();
        assert!(msg.contains("--features live-pcap"), "{msg}");
    }

    #[cfg(feature = "live-pcap")]
    #[test]
    fn libpcap_backend_captures_what_its_filter_lets_through() {
        if !need_root("libpcap_backend_captures_what_its_filter_lets_through") {
            return;
        }
        let lab = Lab::new();
        let cfg = LiveConfig { bpf: Some(format!("udp dst port {PORT}")), ..lab.config() };
        let mut src = lab.open(Backend::Libpcap, &cfg).expect("open libpcap capture");
        assert_eq!(src.linktype(), 1);
        let sock = lab.udp("192.0.2.2:0");
        for i in 0..5 {
            sock.send_to(&payload("pcap", i), ("192.0.2.1", PORT)).expect("send");
            sock.send_to(b"filtered out", ("192.0.2.1", PORT + 1)).expect("send");
        }
        let (frames, _) = collect(&mut *src, 5, Duration::from_secs(5));
        let mut seen: Vec<_> =
            frames.iter().map(|(d, _)| check_udp(&d[14..], [192, 0, 2, 2], [192, 0, 2, 1], "pcap")).collect();
        seen.sort_unstable();
        assert_eq!(seen, [Some(0), Some(1), Some(2), Some(3), Some(4)]);
        assert!(src.kernel_stats().expect("stats").packets >= 5);
    }

    /// The child half of `drops_privileges_to_nobody_in_a_child_process`; does nothing unless
    /// started by it.
    #[test]
    fn drop_privileges_child() {
        if std::env::var("OTSENSOR_TEST_DROP_PRIVS").as_deref() != Ok("1") {
            return;
        }
        let e = drop_privileges("otsensor-no-such-user").expect_err("unknown user");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("no such user"), "{e}");
        drop_privileges("nobody").expect("drop to nobody");
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let field = |k: &str| status.lines().find(|l| l.starts_with(k)).unwrap_or("").to_owned();
        println!("CHILD {}|{}|{}", field("Uid:"), field("Gid:"), field("Groups:"));
        let cfg = LiveConfig { interface: "lo".into(), ..LiveConfig::default() };
        let e = open(Backend::AfPacket, &cfg).err().expect("no capture without root");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        println!("CHILD OK");
    }

    #[test]
    fn drops_privileges_to_nobody_in_a_child_process() {
        if !need_root("drops_privileges_to_nobody_in_a_child_process") {
            return;
        }
        let (uid, gid) = (run(&["id", "-u", "nobody"]), run(&["id", "-g", "nobody"]));
        let out = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "capture::live::tests::drop_privileges_child", "--nocapture", "--test-threads=1"])
            .env("OTSENSOR_TEST_DROP_PRIVS", "1")
            .output()
            .expect("run child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("CHILD OK"), "{stdout}");
        let line = stdout.lines().find_map(|l| l.split_once("CHILD Uid:")).expect("ids line").1;
        let ids: Vec<&str> = line.split('|').collect();
        assert_eq!(ids[0].split_whitespace().collect::<Vec<_>>(), [uid.as_str(); 4], "{line}");
        assert_eq!(ids[1].split_whitespace().skip(1).collect::<Vec<_>>(), [gid.as_str(); 4], "{line}");
        assert_eq!(ids[2].split_whitespace().skip(1).collect::<Vec<_>>(), [gid.as_str()], "{line}");
    }
}
