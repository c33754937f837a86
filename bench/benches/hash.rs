//! The auth hash alone: what `AuthKeys::auth_hash` and `AuthKeys::verify` cost
//! for a realistic credential (a 97-byte argon2id PHC string).
//!
//! `cargo bench -p tower-sessions-auth-bench --bench hash`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tower_sessions_auth::{hash::Verification, AuthKeys};
use tower_sessions_auth_bench::{User, SECRET};

const NEWER_SECRET: &[u8] = b"a rotated benchmark secret, also 32 bytes or more";

fn hash(c: &mut Criterion) {
    let keys = AuthKeys::new(SECRET).expect("the benchmark secret is long enough");
    let rotated = AuthKeys::new(NEWER_SECRET)
        .and_then(|keys| keys.with_fallback(SECRET))
        .expect("the benchmark secrets are long enough");
    let user = User::generate(1);
    let stored = keys
        .auth_hash(&user)
        .expect("benchmark users have a credential");
    let other = keys
        .auth_hash(&User::generate(2))
        .expect("benchmark users have a credential");
    assert_eq!(keys.verify(&user, &stored), Verification::Current);
    assert_eq!(rotated.verify(&user, &stored), Verification::Fallback);
    assert_eq!(keys.verify(&user, &other), Verification::Mismatch);

    let mut group = c.benchmark_group("auth_hash");
    group.bench_function("sign", |b| b.iter(|| keys.auth_hash(black_box(&user))));
    // The per-request case: the stored hash was signed under the current key.
    group.bench_function("verify_current", |b| {
        b.iter(|| keys.verify(black_box(&user), black_box(&stored)));
    });
    // During a secret rotation: one failed comparison, then the fallback.
    group.bench_function("verify_fallback", |b| {
        b.iter(|| rotated.verify(black_box(&user), black_box(&stored)));
    });
    group.bench_function("verify_mismatch", |b| {
        b.iter(|| keys.verify(black_box(&user), black_box(&other)));
    });
    group.finish();
}

criterion_group!(benches, hash);
criterion_main!(benches);
