//! AF_PACKET `TPACKET_V3` receive ring: the socket, the shared memory ring, and the walk over
//! the frames of a ring block. All the `unsafe` of live capture is here; [`crate::capture::live`]
//! is the safe face of it.
//!
//! **Receive only.** The socket has an RX ring and never a TX ring, and nothing in otsensor
//! calls `send`, `sendto`, `sendmsg` or `write` on it: the sensor cannot put a frame on the
//! monitored network through this module.
//!
//! The ring is `block_count` blocks of `block_size` bytes shared with the kernel. The kernel
//! fills one block at a time and hands it to user space by setting `TP_STATUS_USER` in the
//! block descriptor (when the block is full or `block_timeout_ms` passed with at least one
//! frame in it). The reader walks blocks in ring order; a block it hands out is named by a
//! [`RingBlock`] whose `Drop` gives the block back (`TP_STATUS_KERNEL`). A block is handed out
//! at most once: until it comes back, the reader does not touch it, and the kernel, finding no
//! free block, drops and counts frames instead of stalling anyone.
//!
//! Layout facts relied on (`linux/if_packet.h`, `net/packet/af_packet.c`): a block starts with
//! a `tpacket_block_desc`; `offset_to_first_pkt`, `num_pkts` and `blk_len` (bytes used)
//! describe its frames; each frame starts with a `tpacket3_hdr` (then a `sockaddr_ll`), its
//! data at `tp_mac` from the frame start, `tp_next_offset` leading to the next frame. None of
//! these numbers is trusted: every offset and length is checked against the block.

use std::ffi::CString;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use otsensor_dissectors::event::Timestamp;

use crate::capture::live::KernelStats;
use crate::capture::store::{FrameRef, FrameStore, LiveBlock};

/// LINKTYPE_ETHERNET (tcpdump.org link-layer header types).
pub(crate) const LINKTYPE_ETHERNET: u32 = 1;
/// LINKTYPE_RAW: raw IPv4/IPv6, no link header (tun devices, `ARPHRD_NONE`).
pub(crate) const LINKTYPE_RAW: u32 = 101;

/// The 802.1Q TPID reported when the kernel does not say (`TP_STATUS_VLAN_TPID_VALID` unset).
const ETH_P_8021Q: u16 = 0x8100;
/// Bytes of the two MAC addresses that precede a VLAN tag.
const MACS_LEN: usize = 12;
/// Bytes of an 802.1Q tag (TPID + TCI).
const VLAN_TAG_LEN: usize = 4;
/// Frame slot size in `tpacket_req3`: only checked by the kernel for V3 (a multiple of
/// `TPACKET_ALIGNMENT` dividing the block), frames themselves are packed in the block.
const FRAME_SIZE: usize = 2048;

/// Block descriptor field offsets (`struct tpacket_block_desc`, `struct tpacket_hdr_v1`).
const DESC_STATUS: usize = offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, block_status);
const DESC_NUM_PKTS: usize = offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, num_pkts);
const DESC_FIRST: usize =
    offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt);
const DESC_BLK_LEN: usize = offset_of!(libc::tpacket_block_desc, hdr) + offset_of!(libc::tpacket_hdr_v1, blk_len);
const DESC_LEN: usize = size_of::<libc::tpacket_block_desc>();

/// Frame header field offsets (`struct tpacket3_hdr`).
const H_NEXT: usize = offset_of!(libc::tpacket3_hdr, tp_next_offset);
const H_SEC: usize = offset_of!(libc::tpacket3_hdr, tp_sec);
const H_NSEC: usize = offset_of!(libc::tpacket3_hdr, tp_nsec);
const H_SNAPLEN: usize = offset_of!(libc::tpacket3_hdr, tp_snaplen);
const H_LEN: usize = offset_of!(libc::tpacket3_hdr, tp_len);
const H_STATUS: usize = offset_of!(libc::tpacket3_hdr, tp_status);
const H_MAC: usize = offset_of!(libc::tpacket3_hdr, tp_mac);
const H_VLAN_TCI: usize = offset_of!(libc::tpacket3_hdr, hv1) + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci);
const H_VLAN_TPID: usize = offset_of!(libc::tpacket3_hdr, hv1) + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tpid);
const H_LEN_STRUCT: usize = size_of::<libc::tpacket3_hdr>();

/// What the kernel writes before a frame's data: the aligned `tpacket3_hdr` and the
/// `sockaddr_ll` (`TPACKET3_HDRLEN`). Bytes between this and `tp_mac` are padding.
const FRAME_HDR_LEN: usize = libc::TPACKET3_HDRLEN;

/// How to open the ring (validated by [`crate::capture::live`]).
#[derive(Clone, Debug)]
pub(crate) struct RingParams {
    pub(crate) interface: String,
    pub(crate) snaplen: u32,
    pub(crate) block_size: usize,
    pub(crate) block_count: usize,
    pub(crate) block_timeout_ms: u32,
    pub(crate) promiscuous: bool,
}

/// Why a block (or the rest of it) was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed {
    /// Which field was out of range.
    pub(crate) what: &'static str,
    /// Byte offset in the block where it was found.
    pub(crate) offset: usize,
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// The mapped ring, shared by the reader and every block handed out, so the mapping
/// outlives all of them.
struct RingMap {
    base: NonNull<u8>,
    len: usize,
    block_size: usize,
    /// `held[i]`: block `i` is out with the pipeline (a [`RingBlock`] exists).
    held: Box<[AtomicBool]>,
    /// Signalled when a held block comes back.
    returned: Mutex<()>,
    returned_cv: Condvar,
}

// SAFETY: the mapping is plain shared memory valid until `Drop`; every access to it goes
// through raw pointers to blocks that the holder owns exclusively (a block out with the
// pipeline is read-only to everyone; the reader writes only blocks it has not handed out;
// block status words are accessed with volatile reads and writes and fences), and the
// bookkeeping is atomics and a mutex.
unsafe impl Send for RingMap {}
// SAFETY: as for `Send`: shared access is to immutable bytes of held blocks, atomics, a mutex.
unsafe impl Sync for RingMap {}

impl RingMap {
    fn block_ptr(&self, index: usize) -> *mut u8 {
        debug_assert!(index < self.held.len());
        // SAFETY: index < block_count, so the offset stays inside the mapping of
        // block_size * block_count bytes.
        unsafe { self.base.as_ptr().add(index * self.block_size) }
    }

    /// The block's `block_status` word (volatile read, acquire ordering for what follows).
    fn status(&self, index: usize) -> u32 {
        // SAFETY: the descriptor starts the block, inside the mapping, and `block_status` is a
        // naturally aligned u32 (blocks are page aligned). The kernel writes it concurrently,
        // hence the volatile read; the acquire fence orders our later reads of the block after
        // the kernel's release of it (the kernel issues smp_wmb before setting TP_STATUS_USER).
        let s = unsafe { std::ptr::read_volatile(self.block_ptr(index).add(DESC_STATUS).cast::<u32>()) };
        fence(Ordering::Acquire);
        s
    }

    /// Gives block `index` back to the kernel and wakes a reader waiting for it.
    fn release(&self, index: usize) {
        fence(Ordering::Release);
        // SAFETY: as in `status`; no reference into the block exists any more (the last
        // `RingBlock` is being dropped, or the reader is done with a block it did not hand out),
        // and the release fence orders all our accesses to the block before the kernel may
        // reuse it.
        unsafe {
            std::ptr::write_volatile(self.block_ptr(index).add(DESC_STATUS).cast::<u32>(), libc::TP_STATUS_KERNEL)
        };
        if let Some(h) = self.held.get(index) {
            h.store(false, Ordering::Release);
        }
        let _g = self.returned.lock().unwrap_or_else(|e| e.into_inner());
        self.returned_cv.notify_all();
    }

    fn is_held(&self, index: usize) -> bool {
        self.held.get(index).is_some_and(|h| h.load(Ordering::Acquire))
    }

    /// Waits until block `index` is no longer held or `deadline` passes; true if it was returned.
    fn wait_returned(&self, index: usize, deadline: Instant) -> bool {
        let mut g = self.returned.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if !self.is_held(index) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = match self.returned_cv.wait_timeout(g, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

impl Drop for RingMap {
    fn drop(&mut self) {
        // SAFETY: base/len are exactly what mmap returned; the last owner is going away, so no
        // block and no reader refers to the mapping any more.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// One ring block out with the pipeline. Frames are ranges of [`FrameStore::bytes`]; dropping
/// the last `Arc` to it gives the block back to the kernel.
struct RingBlock {
    ring: Arc<RingMap>,
    index: usize,
}

impl FrameStore for RingBlock {
    fn bytes(&self) -> &[u8] {
        // SAFETY: the block is inside the mapping, which `self.ring` keeps alive. Its status is
        // TP_STATUS_USER and stays so until this value is dropped, so the kernel does not write
        // it, and the reader does not touch a held block: the bytes are immutable for the
        // lifetime of the borrow.
        unsafe { std::slice::from_raw_parts(self.ring.block_ptr(self.index), self.ring.block_size) }
    }
}

impl Drop for RingBlock {
    fn drop(&mut self) {
        self.ring.release(self.index);
    }
}

/// An open AF_PACKET capture.
pub(crate) struct AfPacket {
    fd: OwnedFd,
    ring: Arc<RingMap>,
    block_count: usize,
    next: usize,
    interface: String,
    linktype: u32,
    snaplen: u32,
    totals: KernelStats,
    malformed: u64,
}

fn os_err(interface: &str, step: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{interface}: {step}: {e}"))
}

fn setsockopt<T>(fd: RawFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a valid, initialised T for the duration of the call, and its size is
    // passed with it; the kernel only reads it.
    let r = unsafe { libc::setsockopt(fd, level, name, (value as *const T).cast(), size_of::<T>() as libc::socklen_t) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn with_step<T>(interface: &str, step: &str, r: io::Result<T>) -> io::Result<T> {
    r.map_err(|e| io::Error::new(e.kind(), format!("{interface}: {step}: {e}")))
}

impl AfPacket {
    /// Opens the socket, sets up and maps the ring, binds to the interface.
    pub(crate) fn open(p: &RingParams) -> io::Result<AfPacket> {
        let iface = p.interface.as_str();
        let name = CString::new(iface).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{iface:?}: interface name has a NUL byte"))
        })?;
        if name.as_bytes().is_empty() || name.as_bytes().len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{iface:?}: interface names are 1 to {} bytes", libc::IFNAMSIZ - 1),
            ));
        }
        let block_nr = u32::try_from(p.block_count).ok();
        let block_size = u32::try_from(p.block_size).ok();
        let map_len = p.block_size.checked_mul(p.block_count);
        let (Some(block_nr), Some(block_size_u32), Some(map_len)) = (block_nr, block_size, map_len) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{iface}: ring too large")));
        };

        // Protocol 0: the socket receives nothing until `bind` below names ETH_P_ALL, so no
        // frame is queued outside the ring before the ring exists.
        // SAFETY: plain system call with constant arguments.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(os_err(iface, "socket"));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        // SAFETY: `name` is a NUL-terminated string that outlives the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(os_err(iface, "bind"));
        }
        let linktype = link_type(fd.as_raw_fd(), &name, iface)?;

        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        with_step(iface, "PACKET_VERSION", setsockopt(raw, libc::SOL_PACKET, libc::PACKET_VERSION, &version))?;

        // The snap length as a one-instruction classic BPF program (`ret #snaplen`), as libpcap
        // does: the kernel then copies at most `snaplen` bytes of each frame into the ring.
        let mut prog = [libc::sock_filter { code: 0x06 /* BPF_RET | BPF_K */, jt: 0, jf: 0, k: p.snaplen }];
        let fprog = libc::sock_fprog { len: 1, filter: prog.as_mut_ptr() };
        with_step(iface, "SO_ATTACH_FILTER", setsockopt(raw, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog))?;

        let frame_size = FRAME_SIZE.min(p.block_size);
        let req = libc::tpacket_req3 {
            tp_block_size: block_size_u32,
            tp_block_nr: block_nr,
            tp_frame_size: frame_size as u32,
            tp_frame_nr: ((p.block_size / frame_size) as u32).saturating_mul(block_nr),
            tp_retire_blk_tov: p.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        with_step(iface, "PACKET_RX_RING", setsockopt(raw, libc::SOL_PACKET, libc::PACKET_RX_RING, &req))?;

        // SAFETY: maps the ring the kernel just allocated for this socket, at a kernel-chosen
        // address; the result is checked before use.
        let base = unsafe {
            libc::mmap(std::ptr::null_mut(), map_len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, raw, 0)
        };
        if base == libc::MAP_FAILED {
            return Err(os_err(iface, "mmap"));
        }
        let Some(base) = NonNull::new(base.cast::<u8>()) else {
            return Err(io::Error::other(format!("{iface}: mmap: null mapping")));
        };
        let ring = Arc::new(RingMap {
            base,
            len: map_len,
            block_size: p.block_size,
            held: (0..p.block_count).map(|_| AtomicBool::new(false)).collect(),
            returned: Mutex::new(()),
            returned_cv: Condvar::new(),
        });

        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll and its size is passed with it.
        let r = unsafe {
            libc::bind(
                raw,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(os_err(iface, "bind"));
        }

        if p.promiscuous {
            // Dropped by the kernel when the socket closes.
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex as i32,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            with_step(
                iface,
                "PACKET_ADD_MEMBERSHIP",
                setsockopt(raw, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq),
            )?;
        }

        Ok(AfPacket {
            fd,
            ring,
            block_count: p.block_count,
            next: 0,
            interface: p.interface.clone(),
            linktype,
            snaplen: p.snaplen,
            totals: KernelStats::default(),
            malformed: 0,
        })
    }

    /// The interface name.
    pub(crate) fn interface(&self) -> &str {
        &self.interface
    }

    /// LINKTYPE_ of the frames.
    pub(crate) fn linktype(&self) -> u32 {
        self.linktype
    }

    /// The next retired block; see `LiveSource::next_block`.
    pub(crate) fn next_block(&mut self, timeout: Duration) -> io::Result<Option<LiveBlock>> {
        let start = Instant::now();
        // A timeout too large to add is as good as forever.
        let deadline = start.checked_add(timeout).unwrap_or(start + Duration::from_secs(86_400 * 365));
        let mut spurious = false;
        loop {
            let index = self.next;
            if self.ring.is_held(index) && !self.ring.wait_returned(index, deadline) {
                return Ok(None);
            }
            if self.ring.status(index) & libc::TP_STATUS_USER != 0 {
                self.next = (index + 1) % self.block_count;
                if let Some(block) = self.take(index) {
                    return Ok(Some(block));
                }
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            if spurious {
                // poll() reports readiness while the block *before* the kernel's current one is
                // not TP_STATUS_KERNEL, which is the case whenever the pipeline still holds it;
                // nap instead of spinning until our block is retired.
                std::thread::sleep((deadline - now).min(Duration::from_millis(1)));
                spurious = false;
                continue;
            }
            match poll_in(self.fd.as_raw_fd(), deadline - now) {
                Ok(Ready::Readable) => spurious = true,
                Ok(Ready::Timeout) => {}
                Ok(Ready::Error) => {
                    let e = socket_error(self.fd.as_raw_fd())
                        .map_err(|e| io::Error::new(e.kind(), format!("{}: poll: {e}", self.interface)))?;
                    if let Some(e) = e {
                        return Err(io::Error::new(e.kind(), format!("{}: poll: {e}", self.interface)));
                    }
                    // POLLERR without a pending error: nap rather than spin on it.
                    spurious = true;
                }
                Err(e) => return Err(io::Error::new(e.kind(), format!("{}: poll: {e}", self.interface))),
            }
        }
    }

    /// Walks retired block `index`; hands it out, or gives it straight back when it has no
    /// usable frame.
    fn take(&mut self, index: usize) -> Option<LiveBlock> {
        let mut frames = Vec::new();
        let result = {
            // SAFETY: the block is inside the mapping; its status is TP_STATUS_USER (read with
            // acquire ordering), so the kernel has finished with it and will not write it until
            // we set TP_STATUS_KERNEL; it is not held (no `RingBlock` and thus no shared slice of
            // it exists), so this is the only reference to these bytes. It ends with this scope,
            // before the block is handed out or released.
            let bytes = unsafe { std::slice::from_raw_parts_mut(self.ring.block_ptr(index), self.ring.block_size) };
            walk_block(bytes, self.snaplen, self.linktype, &mut frames)
        };
        if let Err(m) = result {
            self.malformed += 1;
            if self.malformed == 1 {
                eprintln!(
                    "otsensor: {}: capture: skipped a malformed AF_PACKET ring block ({} out of range at \
                     offset {}); further ones are counted silently",
                    self.interface, m.what, m.offset
                );
            }
        }
        if frames.is_empty() {
            self.ring.release(index);
            return None;
        }
        if let Some(h) = self.ring.held.get(index) {
            h.store(true, Ordering::Release);
        }
        Some(LiveBlock { store: Arc::new(RingBlock { ring: Arc::clone(&self.ring), index }), frames })
    }

    /// Kernel counters since open (the kernel resets them on each read; we accumulate).
    pub(crate) fn kernel_stats(&mut self) -> io::Result<KernelStats> {
        let mut st = libc::tpacket_stats_v3 { tp_packets: 0, tp_drops: 0, tp_freeze_q_cnt: 0 };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` and `len` are valid for writes and `len` holds the size of `st`.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if r != 0 {
            return Err(os_err(&self.interface, "PACKET_STATISTICS"));
        }
        // For TPACKET_V3 the kernel's tp_packets already includes tp_drops.
        self.totals.packets = self.totals.packets.saturating_add(u64::from(st.tp_packets));
        self.totals.drops = self.totals.drops.saturating_add(u64::from(st.tp_drops));
        Ok(self.totals)
    }
}

/// The interface's hardware type as a LINKTYPE_ value.
fn link_type(fd: RawFd, name: &CString, iface: &str) -> io::Result<u32> {
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.as_bytes()) {
        *d = *s as libc::c_char;
    }
    // SAFETY: `ifr` is a valid ifreq with a NUL-terminated name (checked shorter than
    // IFNAMSIZ, rest zero); SIOCGIFHWADDR writes only into it.
    let r = unsafe { libc::ioctl(fd, libc::SIOCGIFHWADDR as _, &mut ifr as *mut libc::ifreq) };
    if r != 0 {
        return Err(os_err(iface, "bind"));
    }
    // SAFETY: SIOCGIFHWADDR filled the `ifru_hwaddr` member of the union.
    let hatype = unsafe { ifr.ifr_ifru.ifru_hwaddr.sa_family };
    match hatype {
        // Loopback frames carry an Ethernet header (with zero addresses).
        libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK => Ok(LINKTYPE_ETHERNET),
        libc::ARPHRD_NONE => Ok(LINKTYPE_RAW),
        other => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{iface}: link type: ARPHRD {other} is not supported (Ethernet, loopback, raw IP)"),
        )),
    }
}

/// What `poll_in` saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ready {
    Readable,
    Error,
    Timeout,
}

/// Waits up to `timeout` for `fd` to be readable (POLLIN) or in error (POLLERR).
pub(crate) fn poll_in(fd: RawFd, timeout: Duration) -> io::Result<Ready> {
    // Round up so a sub-millisecond remainder still waits instead of spinning.
    let ms = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN | libc::POLLERR, revents: 0 };
    // SAFETY: one valid pollfd, count 1.
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted { Ok(Ready::Timeout) } else { Err(e) };
    }
    if r == 0 {
        Ok(Ready::Timeout)
    } else if pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
        Ok(Ready::Error)
    } else {
        Ok(Ready::Readable)
    }
}

/// The pending socket error (SO_ERROR, which reading clears), if any.
fn socket_error(fd: RawFd) -> io::Result<Option<io::Error>> {
    let mut err: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for writes and `len` holds the size of `err`.
    let r = unsafe {
        libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, (&mut err as *mut libc::c_int).cast(), &mut len)
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((err != 0).then(|| io::Error::from_raw_os_error(err)))
}

fn rd_u32(b: &[u8], off: usize, what: &'static str) -> Result<u32, Malformed> {
    off.checked_add(4)
        .and_then(|end| b.get(off..end))
        .and_then(|s| s.try_into().ok())
        .map(u32::from_ne_bytes)
        .ok_or(Malformed { what, offset: off })
}

fn rd_u16(b: &[u8], off: usize, what: &'static str) -> Result<u16, Malformed> {
    off.checked_add(2)
        .and_then(|end| b.get(off..end))
        .and_then(|s| s.try_into().ok())
        .map(u16::from_ne_bytes)
        .ok_or(Malformed { what, offset: off })
}

/// Walks the frames of one retired block (`block` is the whole block, descriptor first),
/// pushing a [`FrameRef`] per frame with offsets relative to the block start. Restores
/// stripped VLAN tags in place (see [`restore_vlan`]). On the first out-of-range number it
/// stops and returns the error; the frames pushed before it are good.
pub(crate) fn walk_block(
    block: &mut [u8],
    snaplen: u32,
    linktype: u32,
    frames: &mut Vec<FrameRef>,
) -> Result<(), Malformed> {
    let num = rd_u32(block, DESC_NUM_PKTS, "num_pkts")?;
    let first = rd_u32(block, DESC_FIRST, "offset_to_first_pkt")? as usize;
    let used = rd_u32(block, DESC_BLK_LEN, "blk_len")? as usize;
    if used > block.len() || used < DESC_LEN {
        return Err(Malformed { what: "blk_len", offset: DESC_BLK_LEN });
    }
    if num > 0 && (first < DESC_LEN || first >= used) {
        return Err(Malformed { what: "offset_to_first_pkt", offset: DESC_FIRST });
    }
    let mut off = first;
    for i in 0..num {
        if off.checked_add(H_LEN_STRUCT).map_or(true, |end| end > used) {
            return Err(Malformed { what: "frame header", offset: off });
        }
        let next = rd_u32(block, off + H_NEXT, "tp_next_offset")? as usize;
        let sec = rd_u32(block, off + H_SEC, "tp_sec")?;
        let nsec = rd_u32(block, off + H_NSEC, "tp_nsec")?;
        let caplen = rd_u32(block, off + H_SNAPLEN, "tp_snaplen")? as usize;
        let wire_len = rd_u32(block, off + H_LEN, "tp_len")?;
        let status = rd_u32(block, off + H_STATUS, "tp_status")?;
        let mac = rd_u16(block, off + H_MAC, "tp_mac")? as usize;
        let start = off + mac;
        if mac < H_LEN_STRUCT || start.checked_add(caplen).map_or(true, |end| end > used) {
            return Err(Malformed { what: "tp_mac/tp_snaplen", offset: off });
        }
        let last = i + 1 == num;
        if !last && (next < H_LEN_STRUCT || off.checked_add(next).map_or(true, |n| n >= used)) {
            return Err(Malformed { what: "tp_next_offset", offset: off + H_NEXT });
        }
        // Room the frame may grow into at its end: up to the next frame, or the end of the
        // block for the last one (the block is ours until it is given back).
        let room_end = if last { block.len() } else { off + next };

        let (mut start, mut len, mut wire_len) = (start, caplen, wire_len);
        if linktype == LINKTYPE_ETHERNET && status & libc::TP_STATUS_VLAN_VALID != 0 {
            let tci = rd_u32(block, off + H_VLAN_TCI, "tp_vlan_tci")? as u16;
            let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                rd_u16(block, off + H_VLAN_TPID, "tp_vlan_tpid")?
            } else {
                ETH_P_8021Q
            };
            if let Some((s, l)) = restore_vlan(block, off, start, caplen, room_end, tpid, tci) {
                (start, len) = (s, l);
                wire_len = wire_len.saturating_add(VLAN_TAG_LEN as u32);
            }
        }
        len = len.min(snaplen as usize);
        frames.push(FrameRef {
            offset: start,
            len,
            wire_len,
            ts: Timestamp::from_nanos(i64::from(sec) * 1_000_000_000 + i64::from(nsec)),
            linktype,
        });
        if !last {
            off += next;
        }
    }
    Ok(())
}

/// Puts a stripped 802.1Q tag back into the frame at `start..start + caplen` (frame header at
/// `frame`), so the dissectors see the frame as it was on the wire. Returns the new
/// `(start, len)`, or `None` (frame left untagged) when it is too short to hold two MACs.
///
/// Preferred, in place: when the padding between the kernel's headers and `tp_mac` has 4 bytes
/// to spare (always so for Ethernet on SOCK_RAW, where the kernel leaves `tp_mac` at least
/// 14 bytes past `TPACKET3_HDRLEN`), the MACs move 4 bytes earlier and the tag goes after them.
/// Fallback, when that headroom is missing: everything after the MACs moves 4 bytes later, into
/// the room up to `room_end`; if that room is short, the frame's last bytes are dropped (its
/// captured length stays below its wire length, as with a snap length).
fn restore_vlan(
    block: &mut [u8],
    frame: usize,
    start: usize,
    caplen: usize,
    room_end: usize,
    tpid: u16,
    tci: u16,
) -> Option<(usize, usize)> {
    if caplen < MACS_LEN {
        return None;
    }
    let mut tag = [0u8; VLAN_TAG_LEN];
    tag[..2].copy_from_slice(&tpid.to_be_bytes());
    tag[2..].copy_from_slice(&tci.to_be_bytes());
    if start >= frame + FRAME_HDR_LEN + VLAN_TAG_LEN {
        let new = start - VLAN_TAG_LEN;
        block.copy_within(start..start + MACS_LEN, new);
        block.get_mut(new + MACS_LEN..start + MACS_LEN)?.copy_from_slice(&tag);
        return Some((new, caplen + VLAN_TAG_LEN));
    }
    let new_len = (caplen + VLAN_TAG_LEN).min(room_end.saturating_sub(start));
    if new_len < MACS_LEN + VLAN_TAG_LEN {
        return None;
    }
    let rest = new_len - MACS_LEN - VLAN_TAG_LEN;
    block.copy_within(start + MACS_LEN..start + MACS_LEN + rest, start + MACS_LEN + VLAN_TAG_LEN);
    block.get_mut(start + MACS_LEN..start + MACS_LEN + VLAN_TAG_LEN)?.copy_from_slice(&tag);
    Some((start, new_len))
}

/// Moves the calling thread into the network namespace at `path` (`/var/run/netns/NAME`).
/// Tests only: they capture on veth pairs inside a namespace of their own.
#[cfg(test)]
pub(crate) fn enter_netns(path: &std::path::Path) -> io::Result<()> {
    let f = std::fs::File::open(path)?;
    // SAFETY: `f` is an open namespace file; setns changes only this thread's namespace.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: usize = 4096;
    /// Where the kernel puts the first frame: right after the descriptor, 8-aligned.
    const FIRST: usize = 48;
    /// tp_mac as the kernel sets it for Ethernet on SOCK_RAW: TPACKET_ALIGN(68 + 16) - 14.
    const MAC: usize = 82;

    fn put_u32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }
    fn put_u16(b: &mut [u8], off: usize, v: u16) {
        b[off..off + 2].copy_from_slice(&v.to_ne_bytes());
    }

    /// A frame: dst MAC, src MAC, ethertype 0x0800, then `payload`.
    fn eth(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![
            0x02, 0, 0, 0, 0, 0x01, // destination MAC
            0x02, 0, 0, 0, 0, 0x02, // source MAC
            0x08, 0x00, // ethertype IPv4
        ];
        f.extend_from_slice(payload);
        f
    }

    struct Frame<'a> {
        data: &'a [u8],
        mac: usize,
        status: u32,
        tci: u32,
    }

    /// Builds a block the way the kernel lays it out; returns it.
    fn block(frames: &[Frame<'_>]) -> Vec<u8> {
        let mut b = vec![0u8; BLOCK];
        let mut off = FIRST;
        let mut offs = Vec::new();
        for f in frames {
            offs.push(off);
            off = (off + f.mac + f.data.len()).next_multiple_of(8);
        }
        for (i, f) in frames.iter().enumerate() {
            let o = offs[i];
            let next = offs.get(i + 1).map_or(0, |n| n - o);
            put_u32(&mut b, o + H_NEXT, next as u32);
            put_u32(&mut b, o + H_SEC, 1_700_000_000 + i as u32);
            put_u32(&mut b, o + H_NSEC, 123_456_789);
            put_u32(&mut b, o + H_SNAPLEN, f.data.len() as u32);
            put_u32(&mut b, o + H_LEN, f.data.len() as u32);
            put_u32(&mut b, o + H_STATUS, libc::TP_STATUS_USER | f.status);
            put_u16(&mut b, o + H_MAC, f.mac as u16);
            put_u32(&mut b, o + H_VLAN_TCI, f.tci);
            b[o + f.mac..o + f.mac + f.data.len()].copy_from_slice(f.data);
        }
        put_u32(&mut b, DESC_STATUS, libc::TP_STATUS_USER);
        put_u32(&mut b, DESC_NUM_PKTS, frames.len() as u32);
        put_u32(&mut b, DESC_FIRST, FIRST as u32);
        put_u32(&mut b, DESC_BLK_LEN, off as u32);
        b
    }

    fn walk(b: &mut [u8], snaplen: u32) -> (Vec<FrameRef>, Result<(), Malformed>) {
        let mut frames = Vec::new();
        let r = walk_block(b, snaplen, LINKTYPE_ETHERNET, &mut frames);
        (frames, r)
    }

    #[test]
    fn layout_matches_the_kernel_headers() {
        // linux/if_packet.h: tpacket_block_desc is 48 bytes, tpacket3_hdr 48, TPACKET3_HDRLEN 68.
        assert_eq!((DESC_LEN, H_LEN_STRUCT, FRAME_HDR_LEN), (48, 48, 68));
        assert_eq!((DESC_STATUS, DESC_NUM_PKTS, DESC_FIRST, DESC_BLK_LEN), (8, 12, 16, 20));
        assert_eq!((H_NEXT, H_SEC, H_NSEC, H_SNAPLEN, H_LEN, H_STATUS, H_MAC), (0, 4, 8, 12, 16, 20, 24));
        assert_eq!((H_VLAN_TCI, H_VLAN_TPID), (32, 36));
    }

    #[test]
    fn walks_every_frame_with_offsets_lengths_and_timestamps() {
        let (a, c) = (eth(b"first"), eth(b"second frame"));
        let mut b =
            block(&[Frame { data: &a, mac: MAC, status: 0, tci: 0 }, Frame { data: &c, mac: MAC, status: 0, tci: 0 }]);
        let (frames, r) = walk(&mut b, 65535);
        assert_eq!(r, Ok(()));
        assert_eq!(frames.len(), 2);
        assert_eq!(&b[frames[0].offset..][..frames[0].len], &a[..]);
        assert_eq!(&b[frames[1].offset..][..frames[1].len], &c[..]);
        assert_eq!(frames[1].wire_len as usize, c.len());
        assert_eq!(frames[1].ts, Timestamp { secs: 1_700_000_001, nanos: 123_456_789 });
        assert_eq!(frames[0].linktype, LINKTYPE_ETHERNET);
    }

    #[test]
    fn restores_a_stripped_vlan_tag_in_place() {
        let a = eth(b"tagged");
        let mut b = block(&[Frame { data: &a, mac: MAC, status: libc::TP_STATUS_VLAN_VALID, tci: 0x2064 }]);
        let (frames, r) = walk(&mut b, 65535);
        assert_eq!(r, Ok(()));
        let f = frames[0];
        assert_eq!(f.offset, FIRST + MAC - 4);
        let mut want = a[..12].to_vec();
        want.extend_from_slice(&[0x81, 0x00, 0x20, 0x64]); // TPID 0x8100, PCP 1, VID 100
        want.extend_from_slice(&a[12..]);
        assert_eq!(&b[f.offset..][..f.len], &want[..]);
        assert_eq!(f.wire_len as usize, want.len());
    }

    #[test]
    fn restores_the_reported_tpid_for_802_1ad() {
        let a = eth(b"qinq");
        let mut b = block(&[Frame {
            data: &a,
            mac: MAC,
            status: libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID,
            tci: 7,
        }]);
        put_u16(&mut b, FIRST + H_VLAN_TPID, 0x88a8);
        let (frames, _) = walk(&mut b, 65535);
        assert_eq!(&b[frames[0].offset + 12..][..4], &[0x88, 0xa8, 0x00, 0x07]);
    }

    #[test]
    fn restores_a_vlan_tag_by_moving_the_payload_without_headroom() {
        let (a, c) = (eth(b"0123456789"), eth(b"next"));
        let mut b = block(&[
            Frame { data: &a, mac: FRAME_HDR_LEN, status: libc::TP_STATUS_VLAN_VALID, tci: 100 },
            Frame { data: &c, mac: MAC, status: 0, tci: 0 },
        ]);
        let (frames, r) = walk(&mut b, 65535);
        assert_eq!(r, Ok(()));
        let f = frames[0];
        assert_eq!(f.offset, FIRST + FRAME_HDR_LEN);
        // The frame (24 bytes) starts at 116 and ends at 140; the next frame starts at 144,
        // the next multiple of 8: 4 bytes of room, the tag fits whole.
        let mut want = a[..12].to_vec();
        want.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        want.extend_from_slice(&a[12..]);
        assert_eq!(&b[f.offset..][..f.len], &want[..]);
        // The next frame is untouched.
        assert_eq!(&b[frames[1].offset..][..frames[1].len], &c[..]);
    }

    #[test]
    fn fallback_drops_the_tail_when_there_is_no_room() {
        // 18 bytes from 116 to 134; the next frame starts at 136: 2 bytes of room.
        let (a, c) = (eth(b"abcd"), eth(b"next"));
        let mut b = block(&[
            Frame { data: &a, mac: FRAME_HDR_LEN, status: libc::TP_STATUS_VLAN_VALID, tci: 100 },
            Frame { data: &c, mac: MAC, status: 0, tci: 0 },
        ]);
        let (frames, _) = walk(&mut b, 65535);
        let f = frames[0];
        assert_eq!(f.len, a.len() + 2);
        assert_eq!(f.wire_len as usize, a.len() + 4);
        assert_eq!(&b[f.offset + 12..][..4], &[0x81, 0x00, 0x00, 0x64]);
        assert_eq!(&b[f.offset + 16..][..f.len - 16], &a[12..a.len() - 2]);
        assert_eq!(&b[frames[1].offset..][..frames[1].len], &c[..]);
    }

    #[test]
    fn caps_frames_at_the_snap_length() {
        let a = eth(&[0xaa; 100]);
        let mut b = block(&[Frame { data: &a, mac: MAC, status: 0, tci: 0 }]);
        let (frames, _) = walk(&mut b, 20);
        assert_eq!((frames[0].len, frames[0].wire_len), (20, 114));
    }

    #[test]
    fn rejects_a_block_length_past_the_block() {
        let a = eth(b"x");
        let mut b = block(&[Frame { data: &a, mac: MAC, status: 0, tci: 0 }]);
        put_u32(&mut b, DESC_BLK_LEN, BLOCK as u32 + 1);
        let (frames, r) = walk(&mut b, 65535);
        assert!(frames.is_empty());
        assert_eq!(r.map_err(|m| m.what), Err("blk_len"));
    }

    #[test]
    fn rejects_a_first_offset_inside_the_descriptor() {
        let a = eth(b"x");
        let mut b = block(&[Frame { data: &a, mac: MAC, status: 0, tci: 0 }]);
        put_u32(&mut b, DESC_FIRST, 8);
        assert_eq!(walk(&mut b, 65535).1.map_err(|m| m.what), Err("offset_to_first_pkt"));
    }

    #[test]
    fn keeps_the_good_frames_before_a_bad_next_offset() {
        let a = eth(b"good");
        let mut b = block(&[
            Frame { data: &a, mac: MAC, status: 0, tci: 0 },
            Frame { data: &a, mac: MAC, status: 0, tci: 0 },
            Frame { data: &a, mac: MAC, status: 0, tci: 0 },
        ]);
        let second = FIRST + u32::from_ne_bytes(b[FIRST..FIRST + 4].try_into().unwrap()) as usize;
        put_u32(&mut b, second + H_NEXT, 1 << 20);
        let (frames, r) = walk(&mut b, 65535);
        assert_eq!(frames.len(), 1);
        assert_eq!(r.map_err(|m| m.what), Err("tp_next_offset"));
    }

    #[test]
    fn rejects_frame_data_past_the_used_bytes() {
        let a = eth(b"x");
        let mut b = block(&[Frame { data: &a, mac: MAC, status: 0, tci: 0 }]);
        put_u32(&mut b, FIRST + H_SNAPLEN, 5000);
        assert_eq!(walk(&mut b, 65535).1.map_err(|m| m.what), Err("tp_mac/tp_snaplen"));
        put_u32(&mut b, FIRST + H_SNAPLEN, a.len() as u32);
        put_u16(&mut b, FIRST + H_MAC, 4);
        assert_eq!(walk(&mut b, 65535).1.map_err(|m| m.what), Err("tp_mac/tp_snaplen"));
    }

    #[test]
    fn a_huge_packet_count_stops_at_the_block_end() {
        let a = eth(b"x");
        let mut b = block(&[Frame { data: &a, mac: MAC, status: 0, tci: 0 }]);
        put_u32(&mut b, DESC_NUM_PKTS, u32::MAX);
        let (frames, r) = walk(&mut b, 65535);
        assert_eq!(frames.len(), 0);
        assert!(r.is_err());
    }
}
