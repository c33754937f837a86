//! What the layer and the handler side share, built once by
//! [`AuthLayer`](crate::AuthLayer) and read on every request.

use std::{fmt, sync::Arc};

use axum::http::StatusCode;

use crate::{
    events::EventSink,
    fast_path::FastPath,
    hash::AuthKeys,
    live::{LiveSessions, Verify},
    record::Claim,
    registry::SessionRegistry,
    times::TimeConfig,
    validity::Rules,
};

/// The settings the service, the extractors and [`AuthSession`](crate::AuthSession)
/// read. Validated by the layer's builders, so nothing here can be wrong at
/// request time.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) keys: AuthKeys,
    pub(crate) login_url: String,
    pub(crate) failure_status: StatusCode,
    /// The user type the layer was built for, to name it when an extractor
    /// asks for another.
    pub(crate) user_type: &'static str,
    pub(crate) events: Option<EventSink>,
    pub(crate) registry: Option<SessionRegistry>,
    /// The fast path, kept only when the registry has live sessions.
    pub(crate) fast_path: Option<FastPath>,
    /// The layer's validity rule for live watches, with its backend: set
    /// when the layer is applied, if the registry has live sessions.
    pub(crate) check: Option<Arc<dyn Verify>>,
    /// The clock, the lifetimes of both tiers, the activity interval and
    /// the re-authentication window.
    pub(crate) times: TimeConfig,
    /// Device-bound sessions: offered at sign-in, enforced once registered.
    #[cfg(feature = "dbsc")]
    pub(crate) device: Option<crate::device::DeviceBinding>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("keys", &self.keys)
            .field("login_url", &self.login_url)
            .field("failure_status", &self.failure_status)
            .field("events", &self.events)
            .field("registry", &self.registry)
            .field("fast_path", &self.fast_path)
            .field("times", &self.times)
            .finish_non_exhaustive()
    }
}

/// The configuration as the layer holds it: one pointer to clone per
/// request.
pub(crate) type Context = Arc<Config>;

/// What the layer leaves on every request for the handler side: the
/// configuration and, on a signed-in request, the claim the layer verified,
/// so that no extractor decodes the session again.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub(crate) context: Context,
    pub(crate) claim: Option<Claim>,
    /// The user's id as JSON, for a watch: only when the layer has live
    /// sessions and the request is signed in.
    pub(crate) user_key: Option<String>,
}

impl Config {
    pub(crate) fn new(keys: AuthKeys, user_type: &'static str) -> Self {
        Self {
            keys,
            login_url: "/login".to_owned(),
            failure_status: StatusCode::INTERNAL_SERVER_ERROR,
            user_type,
            events: None,
            registry: None,
            fast_path: None,
            check: None,
            times: TimeConfig::default(),
            #[cfg(feature = "dbsc")]
            device: None,
        }
    }

    /// The live sessions that the registry announces its endings to.
    pub(crate) fn live(&self) -> Option<&LiveSessions> {
        self.registry.as_ref()?.live.as_ref()
    }

    /// What the validity rule reads of this configuration.
    pub(crate) fn rules(&self) -> Rules<'_> {
        Rules {
            keys: &self.keys,
            times: &self.times,
            registry: self
                .registry
                .as_ref()
                .map(SessionRegistry::touch_interval_ms),
        }
    }
}
