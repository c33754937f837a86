//! Counts panics anywhere in the test process, also in tasks the test does
//! not join (server connections, store and pool background tasks).

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Once,
};

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Starts counting (once per process); the previous hook still prints.
pub fn count_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// Panics seen since [`count_panics`] was first called.
pub fn panics() -> usize {
    PANICS.load(Ordering::SeqCst)
}
