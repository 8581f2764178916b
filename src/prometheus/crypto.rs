//! The process-wide rustls crypto provider, shared by the Prometheus client
//! and the Kubernetes client.

use std::sync::Once;

/// Installs `ring` as the process-wide rustls provider; safe to call any
/// number of times, from any thread.
///
/// Exactly one provider, installed by hand: reqwest is built with
/// `rustls-no-provider` (keeping aws-lc-rs and its C build out of the binary)
/// and panics if it builds a client while no default is installed. `ring`
/// because kube already brings it, so kube and reqwest share one
/// implementation. A second provider in the build would also stop rustls from
/// choosing one by its crate features, which kube's TLS setup relies on when
/// nothing is installed yet.
///
/// [`PrometheusClient::new`](crate::prometheus::PrometheusClient::new) calls this itself,
/// so tests and tools that build a client need not remember to.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider was installed first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
