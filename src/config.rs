//! What the layer and the handler side share, built once by
//! [`AuthLayer`](crate::AuthLayer) and read on every request.

use std::sync::Arc;

use axum::http::StatusCode;

use crate::{
    events::EventSink, hash::AuthKeys, live::Live, registry::SessionRegistry, times::TimeConfig,
};

/// The settings the service, the extractors and [`AuthSession`](crate::AuthSession)
/// read. Validated by the layer's builders, so nothing here can be wrong at
/// request time.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) keys: AuthKeys,
    pub(crate) login_url: String,
    pub(crate) failure_status: StatusCode,
    /// The user type the layer was built for, to name it when an extractor
    /// asks for another.
    pub(crate) user_type: &'static str,
    pub(crate) events: Option<EventSink>,
    pub(crate) registry: Option<SessionRegistry>,
    pub(crate) live: Option<Live>,
    /// The clock, the lifetimes of both tiers, the activity interval and
    /// the re-authentication window.
    pub(crate) times: TimeConfig,
}

/// The configuration as the request extensions carry it: one pointer to
/// clone per request.
pub(crate) type Context = Arc<Config>;

impl Config {
    pub(crate) fn new(keys: AuthKeys, user_type: &'static str) -> Self {
        Self {
            keys,
            login_url: "/login".to_owned(),
            failure_status: StatusCode::INTERNAL_SERVER_ERROR,
            user_type,
            events: None,
            registry: None,
            live: None,
            times: TimeConfig::default(),
        }
    }
}
