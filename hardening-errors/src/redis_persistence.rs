//! The start-up check that a Redis keeps its data across a restart (feature `redis`), for a
//! store whose keys must outlive one: `hardening-auth`'s denylist.

use crate::redis_eviction::config_get;

/// Whether a server with these settings keeps nothing across a restart: no append-only file
/// (`appendonly no`) and no snapshots (`save ""`). `None`: the server did not say.
fn keeps_nothing(appendonly: Option<&str>, save: Option<&str>) -> bool {
    matches!(
        (appendonly, save),
        (Some(aof), Some(save)) if aof.trim().eq_ignore_ascii_case("no") && save.trim().is_empty()
    )
}

/// Asks the server's `appendonly` and `save` at start-up, and logs one warning when both are
/// off: a restart then empties it, and the store loses `loss` ("revocations, and every
/// revoked token is valid again until it expires"). `store` names it as
/// [`EvictionRisk::store`](crate::EvictionRisk::store) does ("the jti denylist"). Nothing
/// is logged when either is on, or when the server does not let us ask (`CONFIG` refused or
/// renamed, as on many managed services: [`check_eviction`](crate::check_eviction) has
/// said so already). Start-up goes on either way.
///
/// # Errors
///
/// The connection failed.
pub async fn check_persistence(
    conn: &mut impl redis::aio::ConnectionLike,
    store: &str,
    loss: &str,
) -> redis::RedisResult<()> {
    let appendonly = config_get(conn, "appendonly").await?;
    let save = config_get(conn, "save").await?;
    if keeps_nothing(appendonly.as_deref().ok(), save.as_deref().ok()) {
        tracing::warn!(
            target: "hardening",
            store,
            appendonly = appendonly.as_deref().unwrap_or_default(),
            save = save.as_deref().unwrap_or_default(),
            "the Redis for {store} keeps nothing across a restart (appendonly no, save \"\"): \
             a restart empties it and loses {loss}; set appendonly yes on this Redis (or a \
             save schedule, which loses what changed since the last snapshot)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_redis_with_neither_aof_nor_snapshots_keeps_nothing() {
        assert!(keeps_nothing(Some("no"), Some("")));
        assert!(keeps_nothing(Some("NO"), Some(" ")));
        for (appendonly, save) in [
            (Some("yes"), Some("")),
            (Some("no"), Some("3600 1 300 100 60 10000")),
            (Some("yes"), Some("3600 1")),
            (None, Some("")),
            (Some("no"), None),
            (None, None),
        ] {
            assert!(!keeps_nothing(appendonly, save), "{appendonly:?} {save:?}");
        }
    }
}
