//! The whole per-request work of each stack, in process: one
//! `GET /me` with a valid session cookie through
//! `tower::ServiceExt::oneshot`, no sockets.
//!
//! `cargo bench -p tower-sessions-auth-bench --bench layer`
//!
//! `per_request/tower-sessions-auth` minus `per_request/tower-sessions` is
//! what `AuthLayer` adds to the same router: reading and decoding its session
//! record, the user lookup's bookkeeping, the HMAC and the constant-time
//! compare, and the request extensions. The routers are the macro
//! benchmark's (`tower_sessions_auth_bench::router`), over a `MemoryStore`.
//! `per_request/tower-sessions+plumbing` is (b) with a middleware that only
//! has the layer's shape (boxed future, inner clone, two extensions): the
//! part of the difference that is not the auth work itself.

use criterion::{criterion_group, criterion_main, Criterion};
use tower::ServiceExt as _;
use tower_sessions::MemoryStore;
use tower_sessions_auth_bench::{
    check_in_process, me_request, memory_registry, router, sessions_router_with_plumbing, sign_in,
    Kind, Users,
};

fn per_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the benchmark");
    let mut group = c.benchmark_group("per_request");
    let stacks = Kind::ALL
        .into_iter()
        .map(|kind| (kind.name(), kind))
        .chain([("tower-sessions+plumbing", Kind::Sessions)]);
    for (name, kind) in stacks {
        let app = if name == "tower-sessions+plumbing" {
            sessions_router_with_plumbing(Users::generate(1), MemoryStore::default())
        } else {
            router(
                kind,
                Users::generate(1),
                MemoryStore::default(),
                memory_registry(kind),
            )
        };
        let cookie = if kind.has_sessions() {
            runtime
                .block_on(sign_in(kind, &app, [1]))
                .expect("signing the benchmark user in")
                .remove(0)
        } else {
            "id=none".to_owned()
        };
        runtime
            .block_on(check_in_process(&app, &cookie))
            .expect("the router answers 200 with the cookie and 401 without");
        group.bench_function(name, |b| {
            b.to_async(&runtime)
                .iter(|| app.clone().oneshot(me_request(Some(&cookie))));
        });
    }
    group.finish();
}

criterion_group!(benches, per_request);
criterion_main!(benches);
