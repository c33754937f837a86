//! `inproc`: one stack's signed-in `GET /me`, many times, in process, with
//! no network and no other work: the run to count instructions of with
//! `valgrind --tool=callgrind`, which gives the same count whatever else
//! the machine is doing. Run it with two request counts and subtract, so
//! that start-up drops out:
//!
//! ```sh
//! for n in 10000 20000; do valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n \
//!   target/release/tower-sessions-auth-bench inproc --kind d --requests $n; done
//! ```

use tower::ServiceExt as _;
use tower_sessions::MemoryStore;
use tower_sessions_auth_bench::{
    check_in_process, me_request, memory_registry, router, sign_in, Kind, Users,
};

use crate::{Error, Options};

const USAGE: &str = "\
tower-sessions-auth-bench inproc: N signed-in GET /me in process (memory store)

  --kind K          as for `serve` (default tower-sessions-auth)
  --requests N      how many (default 10000)";

pub(crate) fn main(args: &[String]) -> Result<(), Error> {
    let options = Options::new(args, USAGE)?;
    let kind: Kind = options.parse("kind", Kind::Tsa)?;
    let requests: u64 = options.parse("requests", 10_000)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("tokio runtime: {err}"))?;
    runtime.block_on(async {
        let registry = memory_registry(kind);
        let app = router(kind, Users::generate(1), MemoryStore::default(), registry);
        let cookie = if kind.has_sessions() {
            sign_in(kind, &app, [1]).await?.remove(0)
        } else {
            "id=none".to_owned()
        };
        check_in_process(&app, &cookie).await?;
        for _ in 0..requests {
            let response = app
                .clone()
                .oneshot(me_request(Some(&cookie)))
                .await
                .map_err(|err| format!("GET /me: {err}"))?;
            drop(response);
        }
        Ok(())
    })
}
