//! Outbound HTTP (client metadata documents, later upstream providers).

/// Install the process-wide TLS crypto provider once (reqwest is built
/// without a default provider).
pub fn install_crypto() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
