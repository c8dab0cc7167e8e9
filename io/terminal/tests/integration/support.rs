//! Shared helpers: a simulator on 127.0.0.1 port 0 and link configs with short timeouts.

use std::sync::Arc;
use std::time::Duration;

use smartpos_sim::fault::FaultPlan;
use smartpos_sim::net::{EchoHandler, FrameHandler, Server, ServerConfig, ServerHandle};
use smartpos_terminal::link::{LinkConfig, TlsClientConfig};

/// The timeout used where a test expects nothing to arrive: short, to keep tests fast.
pub const SHORT: Duration = Duration::from_millis(200);
/// The timeout used where a test expects an answer: generous, so a loaded machine passes.
pub const LONG: Duration = Duration::from_secs(5);

/// Starts a simulator with `handler`, TLS or not, and the given fault plan and seed.
pub async fn start_with(
    handler: Arc<dyn FrameHandler>,
    tls: bool,
    faults: &str,
    seed: u64,
) -> ServerHandle {
    let cfg = ServerConfig {
        listen: "127.0.0.1:0".to_owned(),
        tls: tls.then(smartpos_sim::net::test_tls_config),
        faults: FaultPlan::parse(faults).expect("test fault plan"),
        seed,
    };
    Server::bind(cfg, handler).await.expect("bind sim").spawn()
}

/// Starts an echo simulator.
pub async fn start_echo(tls: bool, faults: &str) -> ServerHandle {
    start_with(Arc::new(EchoHandler), tls, faults, 1).await
}

/// Plain TCP link config to `server` with short timeouts.
pub fn plain(server: &ServerHandle) -> LinkConfig {
    LinkConfig {
        connect_timeout: LONG,
        response_timeout: LONG,
        ..LinkConfig::plain(server.local_addr().to_string())
    }
}

/// TLS link config to `server` trusting `ca_pem` for `server_name`, with an optional pin.
pub fn tls(
    server: &ServerHandle,
    ca_pem: &[u8],
    server_name: &str,
    pin: Option<[u8; 32]>,
) -> LinkConfig {
    LinkConfig {
        connect_timeout: LONG,
        response_timeout: LONG,
        ..LinkConfig::tls(
            server.local_addr().to_string(),
            TlsClientConfig {
                ca_pem: ca_pem.to_vec(),
                server_name: server_name.to_owned(),
                pin_sha256: pin,
            },
        )
    }
}
