//! Where captured frames live while the pipeline works on them.
//!
//! Frames are never copied on their way to the dissectors: a batch of packets handed to a
//! worker names byte ranges inside a [`FrameStore`] (a block of a capture file, or one
//! block of the kernel's AF_PACKET ring) and holds an `Arc` to it. When the last batch that
//! refers to a store is done, the store is dropped; for a ring block, dropping it hands the
//! block back to the kernel.

use std::sync::Arc;

use otsensor_dissectors::event::Timestamp;

/// Memory holding captured frames, kept alive (and, for a kernel ring block, kept from the
/// kernel) while any batch refers to it.
pub trait FrameStore: Send + Sync {
    /// All the bytes of the store; frames are ranges of it.
    fn bytes(&self) -> &[u8];
}

/// One captured frame: a range of a [`FrameStore`] with its capture metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRef {
    /// Offset of the frame's first byte in the store.
    pub offset: usize,
    /// Captured length.
    pub len: usize,
    /// Length on the wire (more than `len` when the snap length cut the frame).
    pub wire_len: u32,
    /// Capture time.
    pub ts: Timestamp,
    /// Link type (LINKTYPE_ value).
    pub linktype: u32,
}

impl FrameRef {
    /// The frame's bytes in `store`; empty if the range is out of bounds (never panics).
    pub fn data<'a>(&self, store: &'a dyn FrameStore) -> &'a [u8] {
        store.bytes().get(self.offset..self.offset.saturating_add(self.len)).unwrap_or_default()
    }
}

/// A block of frames read from a live interface: the frames of one ring block, in arrival
/// order, and the block itself.
pub struct LiveBlock {
    /// The block; when the last `Arc` goes, the block returns to the kernel.
    pub store: Arc<dyn FrameStore>,
    /// Its frames, in the order the kernel wrote them.
    pub frames: Vec<FrameRef>,
}
