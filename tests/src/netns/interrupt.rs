//! Signals that end a driver's waits rather than the driver (the demo): a caught SIGINT,
//! SIGTERM or SIGHUP makes the lab's waits panic, and unwinding drops the labs, which clean
//! up. The tests install nothing: a signal ends them as usual.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Makes SIGINT, SIGTERM and SIGHUP end the lab's waits (they panic with "interrupted")
/// instead of the process, so that the labs' Drop still cleans up. For drivers (the demo);
/// the tests leave signals alone.
pub fn stop_on_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe); the struct is
        // fully initialised (zeroed, empty mask) before the call.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Whether a signal caught by [`stop_on_signals`] asked the process to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Panics with "interrupted" once a caught signal asked to stop: waits call it each round.
pub fn check_interrupted() {
    assert!(!interrupted(), "interrupted");
}
