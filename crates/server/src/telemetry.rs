//! Logging through `tracing`: human-readable text by default, JSON lines
//! with `--log-format json`. Secrets never reach a log: they live in
//! `secrecy` types whose `Debug` is redacted, and no query string, header or
//! body is logged.

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// Install the global subscriber. `filter` uses `EnvFilter` syntax.
/// Logs go to stderr, so stdout stays free for command output.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
