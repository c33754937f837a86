//! The pieces of `AuthLayer`'s per-request work, each alone, to say which
//! of them is worth removing (BENCHMARKS.md, "Profile").
//!
//! `cargo bench -p tower-sessions-auth-bench --bench breakdown`
//!
//! The session reads mirror what the layer stored under `_auth` when this
//! benchmark was written (an object `{"id": .., "hash": ".."}`), next to
//! what tower-sessions alone reads in the macro benchmark (one integer), and
//! two cheaper layouts: a two-element array, and one string holding both.
//! They go through the public `Session::get`, which clones the stored JSON
//! value and then decodes it.

use std::{hint::black_box, sync::Arc};

use axum::http::Extensions;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde::{Deserialize, Serialize};
use tower_sessions::{MemoryStore, Session};
use tower_sessions_auth::{AuthKeys, Identity};
use tower_sessions_auth_bench::{User, SECRET};

/// The layout of `src/record.rs` when this benchmark was written.
#[derive(Serialize, Deserialize)]
struct ObjectRecord {
    id: u64,
    hash: String,
}

fn breakdown(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the benchmark");
    let keys = AuthKeys::new(SECRET).expect("the benchmark secret is long enough");
    let user = User::generate(1);
    let hash = keys
        .auth_hash(&user)
        .expect("benchmark users have a credential");

    // A session that is already loaded from the store, as it is after the
    // first read of a request.
    let session = runtime.block_on(async {
        let store = Arc::new(MemoryStore::default());
        let session = Session::new(None, store, None);
        let object = ObjectRecord {
            id: 1,
            hash: hash.clone(),
        };
        session.insert("_auth", object).await.expect("insert");
        session
            .insert("pair", (1_u64, hash.clone()))
            .await
            .expect("insert");
        session.insert("user_id", 1_u64).await.expect("insert");
        session
    });

    let mut group = c.benchmark_group("layer_pieces");
    group.bench_function("session_get_u64", |b| {
        b.to_async(&runtime)
            .iter(|| async { session.get::<u64>(black_box("user_id")).await });
    });
    group.bench_function("session_get_object_record", |b| {
        b.to_async(&runtime)
            .iter(|| async { session.get::<ObjectRecord>(black_box("_auth")).await });
    });
    group.bench_function("session_get_pair_record", |b| {
        b.to_async(&runtime)
            .iter(|| async { session.get::<(u64, String)>(black_box("pair")).await });
    });
    // One JSON string: the 43-character hash, then the id's JSON.
    group.bench_function("session_get_compact_string_record", |b| {
        b.to_async(&runtime).iter(|| async {
            let value = session.get::<String>(black_box("compact")).await.ok()??;
            let (stored_hash, id) = value.split_at_checked(43)?;
            let id: u64 = id.parse().ok()?;
            Some((id, stored_hash.len()))
        });
    });
    group.bench_function("verify_hash", |b| {
        b.iter(|| keys.verify(black_box(&user), black_box(&hash)));
    });
    group.bench_function("clone_user", |b| b.iter(|| black_box(&user).clone()));
    let context = Arc::new(keys.clone());
    // The request's extensions already hold the `Session` when the layer
    // runs, so the map exists; only the inserts are timed.
    let existing = || {
        let mut extensions = Extensions::new();
        extensions.insert(session.clone());
        extensions
    };
    group.bench_function("extensions_insert_identity_and_context", |b| {
        b.iter_batched(
            existing,
            |mut extensions| {
                extensions.insert(Identity::Authenticated(black_box(&user).clone()));
                extensions.insert(Arc::clone(&context));
                extensions
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("extensions_insert_identity_only", |b| {
        b.iter_batched(
            existing,
            |mut extensions| {
                extensions.insert(Identity::Authenticated(black_box(&user).clone()));
                extensions
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, breakdown);
criterion_main!(benches);
