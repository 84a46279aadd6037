//! TEMPORARY STUB (not committed)
use super::store::LiveBlock;
use std::io;
use std::time::Duration;
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    AfPacket,
    Libpcap,
}
#[derive(Clone, Debug)]
pub struct LiveConfig {
    pub interface: String,
    pub snaplen: u32,
    pub block_size: usize,
    pub block_count: usize,
    pub block_timeout_ms: u32,
    pub promiscuous: bool,
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelStats {
    pub packets: u64,
    pub drops: u64,
}
pub trait LiveSource: Send {
    fn next_block(&mut self, timeout: Duration) -> io::Result<Option<LiveBlock>>;
    fn kernel_stats(&mut self) -> io::Result<KernelStats>;
    fn linktype(&self) -> u32;
    fn interface(&self) -> &str;
}
pub fn open(_b: Backend, _c: &LiveConfig) -> io::Result<Box<dyn LiveSource>> {
    Err(io::Error::other("stub"))
}
pub fn drop_privileges(_u: &str) -> io::Result<()> {
    Err(io::Error::other("stub"))
}
