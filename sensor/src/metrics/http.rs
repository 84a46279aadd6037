//! TEMPORARY STUB (not committed)
use std::sync::Arc;
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;
pub type Health = Arc<dyn Fn() -> bool + Send + Sync>;
pub struct MetricsServer;
impl MetricsServer {
    pub fn start(_addr: std::net::SocketAddr, _render: Render, _health: Health) -> std::io::Result<MetricsServer> { Ok(MetricsServer) }
    pub fn shutdown(self) {}
}
