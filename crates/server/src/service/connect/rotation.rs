//! Re-encryption of the stored tokens under a new master key.

use crate::{
    crypto::Binding,
    error::{Error, Result},
    state::AppState,
    store,
};

/// What a key rotation did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Rotation {
    pub rows_checked: u64,
    pub rows_reencrypted: u64,
    /// Rows changed by a refresh during the pass (already under the new key).
    pub rows_skipped: u64,
}

/// Re-encrypt every connection under the current key (`mcpgate admin
/// rotate-key`). Safe while replicas serve: each row is replaced only if it
/// still holds what was read.
pub async fn rotate_key(state: &AppState) -> Result<Rotation> {
    let mut report = Rotation::default();
    let mut after = None;
    loop {
        let page = store::connections::page_after(&state.db, after, 200).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for c in &page {
            report.rows_checked += 1;
            let stale = state.keyring.needs_rotation(&c.access_token_enc)
                || c.refresh_token_enc
                    .as_deref()
                    .is_some_and(|r| state.keyring.needs_rotation(r));
            if !stale {
                continue;
            }
            let key = c.id.to_string();
            let reseal = |enc: &str, field: &str| -> Result<String> {
                let b = Binding {
                    table: "connections",
                    row: &key,
                    field,
                };
                let plain = state
                    .keyring
                    .decrypt(enc, &b)
                    .map_err(|e| Error::caused_by(format!("connection {}", c.id), e))?;
                Ok(state.keyring.encrypt(&plain, &b))
            };
            let access = reseal(&c.access_token_enc, "access_token")?;
            let refresh = c
                .refresh_token_enc
                .as_deref()
                .map(|r| reseal(r, "refresh_token"))
                .transpose()?;
            if store::connections::replace_envelopes(&state.db, c, access, refresh).await? {
                report.rows_reencrypted += 1;
            } else {
                report.rows_skipped += 1;
            }
        }
    }
    Ok(report)
}
