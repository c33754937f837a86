//! Properties instead of examples: whatever the session store holds under
//! the crate's key, whatever `next` a client sends, and whatever `Cookie`
//! header arrives, nothing panics, nothing answers 5xx that should not, and
//! nothing is signed in that was not signed.

#![allow(clippy::unwrap_used)]

mod common;

use axum::{
    body::Body,
    http::{header, HeaderValue, Request, StatusCode},
    Router,
};
use common::{app, keys, TestUser, Users, COOKIE, SECRET_A, SECRET_B};
use proptest::prelude::*;
use serde_json::{json, Value};
use tower::ServiceExt as _;
use tower_sessions::{
    session::{Id, Record},
    MemoryStore, SessionStore,
};
use tower_sessions_auth::{error::HashError, hash::Verification, safe_next, AuthKeys};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `GET /me` in process with this `Cookie` header value.
async fn me(app: &Router, cookie: HeaderValue) -> StatusCode {
    let request = Request::get("/me")
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(request).await.unwrap().status()
}

/// A session whose `_auth` entry is `value`, and the status of `GET /me`
/// with its cookie.
async fn me_with_auth_entry(store: &MemoryStore, app: &Router, value: Value) -> StatusCode {
    let mut record = Record {
        id: Id::default(),
        data: [("_auth".to_owned(), value)].into_iter().collect(),
        expiry_date: time_in_an_hour(),
    };
    store.create(&mut record).await.unwrap();
    let cookie = HeaderValue::from_str(&format!("{COOKIE}={}", record.id)).unwrap();
    me(app, cookie).await
}

fn time_in_an_hour() -> tower_sessions::cookie::time::OffsetDateTime {
    tower_sessions::cookie::time::OffsetDateTime::now_utc()
        + tower_sessions::cookie::time::Duration::hours(1)
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".*".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::hash_map(".{0,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Strings shaped like the record
/// (`{43 chars}{epoch}[.{handle}]@{tier}{signed_in}.{auth}.{active}:{id}`),
/// with every part allowed to go wrong, besides wholly arbitrary ones.
fn record_like() -> impl Strategy<Value = String> {
    prop_oneof![
        ".*",
        (
            "[A-Za-z0-9_-]{40,46}",
            "[0-9+-]{0,21}",
            proptest::option::of("[A-Za-z0-9_!.-]{0,70}"),
            proptest::option::of("[@.]?[srx]?[0-9+-]{0,21}(\\.[0-9+-]{0,21}){0,3}"),
            "[:;]?",
            ".{0,12}"
        )
            .prop_map(|(hash, epoch, handle, times, colon, id)| {
                let handle = handle.map_or_else(String::new, |h| format!(".{h}"));
                let times = times.map_or_else(String::new, |t| format!("@{t}"));
                format!("{hash}{epoch}{handle}{times}{colon}{id}")
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Nothing the store holds under `_auth` that the layer did not sign
    /// signs a request in, panics or answers 5xx: it ends the session.
    #[test]
    fn no_stored_value_signs_a_request_in(value in prop_oneof![
        json_value(),
        record_like().prop_map(Value::String),
    ]) {
        let runtime = runtime();
        let store = MemoryStore::default();
        let app = app(store.clone(), Users::with_defaults(), keys(SECRET_A, &[]));
        let status = runtime.block_on(me_with_auth_entry(&store, &app, value));
        prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    /// Every `next` that `safe_next` lets through stays on the site, as a
    /// browser's URL parser (WHATWG, the `url` crate) resolves it.
    #[test]
    fn safe_next_never_leaves_the_site(next in prop_oneof![
        ".*",
        "[/\\\\]{1,3}[a-z.:@/\\\\\t\n%0-9]{0,20}",
        "/[ -~]{0,30}",
    ]) {
        let base = url::Url::parse("https://site.example/").unwrap();
        if let Some(accepted) = safe_next(&next) {
            let resolved = base.join(accepted);
            prop_assert!(resolved.is_ok(), "{accepted:?} does not resolve");
            let resolved = resolved.unwrap();
            prop_assert_eq!(resolved.origin(), base.origin(), "{:?} left the site", accepted);
        }
    }

    /// `sign` then `verify` is `Current` for any user with a credential; a
    /// fallback secret verifies as `Fallback`; any other stored string, and
    /// the same hash for another id or epoch, is a `Mismatch`.
    #[test]
    fn sign_then_verify(
        id in any::<u64>(),
        credential in ".{1,200}",
        epoch in any::<u64>(),
        other in ".{0,60}",
    ) {
        let user = TestUser { id, name: String::new(), password_hash: credential, epoch };
        let keys = AuthKeys::new(SECRET_A).unwrap();
        let signed = keys.auth_hash(&user).unwrap();
        prop_assert_eq!(keys.verify(&user, &signed), Verification::Current);
        let rotated = AuthKeys::new(SECRET_B).unwrap().with_fallback(SECRET_A).unwrap();
        prop_assert_eq!(rotated.verify(&user, &signed), Verification::Fallback);
        if other != signed {
            prop_assert_eq!(keys.verify(&user, &other), Verification::Mismatch);
        }
        let moved = TestUser { id: id.wrapping_add(1), ..user.clone() };
        prop_assert_eq!(keys.verify(&moved, &signed), Verification::Mismatch);
        let changed = TestUser { epoch: epoch.wrapping_add(1), ..user };
        prop_assert_eq!(keys.verify(&changed, &signed), Verification::Mismatch);
    }

    /// A user with an empty credential is never signed, and nothing
    /// verifies for them.
    #[test]
    fn empty_credentials_never_sign_nor_verify(
        id in any::<u64>(),
        epoch in any::<u64>(),
        stored in ".{0,60}",
    ) {
        let user = TestUser { id, name: String::new(), password_hash: String::new(), epoch };
        let keys = AuthKeys::new(SECRET_A).unwrap();
        prop_assert!(matches!(keys.auth_hash(&user), Err(HashError::EmptyCredential)));
        prop_assert_eq!(keys.verify(&user, &stored), Verification::Mismatch);
        let once = TestUser { password_hash: "x".to_owned(), ..user.clone() };
        let signed = keys.auth_hash(&once).unwrap();
        prop_assert_eq!(keys.verify(&user, &signed), Verification::Mismatch);
    }
}

/// 10,000 random `Cookie` headers on a protected route: random bytes, huge
/// values, many cookies, valid-looking session ids. None panics, none is a
/// 5xx, none is signed in. Plain random generation (seeded, printed on
/// failure): proptest's regex strategies cost milliseconds a case here.
#[test]
fn random_cookie_headers_are_anonymous_and_never_a_server_error() {
    use rand::{rngs::StdRng, Rng, SeedableRng};

    const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    let runtime = runtime();
    let app = app(
        MemoryStore::default(),
        Users::with_defaults(),
        keys(SECRET_A, &[]),
    );
    for case in 0..10_000 {
        let bytes: Vec<u8> = match case % 4 {
            // Bytes a header may carry: visible ASCII, spaces, tabs, obs-text.
            0 => (0..rng.gen_range(0..300))
                .map(|_| match rng.gen_range(0..10) {
                    0 => b'\t',
                    1 => rng.gen_range(128..=255),
                    _ => rng.gen_range(32..127),
                })
                .collect(),
            // Huge values.
            1 => (0..rng.gen_range(4_000..9_000))
                .map(|_| rng.gen_range(33..127))
                .collect(),
            // Many cookies, ours among them.
            2 => {
                let mut pairs: Vec<String> = (0..rng.gen_range(1..200))
                    .map(|n| format!("c{n}={}", rng.gen::<u64>()))
                    .collect();
                pairs.insert(rng.gen_range(0..=pairs.len()), format!("{COOKIE}=x"));
                pairs.join("; ").into_bytes()
            }
            // Valid-looking ids: about 22 URL-safe characters, like
            // tower-sessions' own.
            _ => {
                let id: String = (0..rng.gen_range(20..=24))
                    .map(|_| char::from(URL_SAFE[rng.gen_range(0..URL_SAFE.len())]))
                    .collect();
                format!("{COOKIE}={id}").into_bytes()
            }
        };
        let Ok(value) = HeaderValue::from_bytes(&bytes) else {
            continue;
        };
        let status = runtime.block_on(me(&app, value));
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "case {case} of seed {seed}: {:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
}
