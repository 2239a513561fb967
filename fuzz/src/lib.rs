//! What the fuzz targets share.

/// Makes a stack overflow a crash libFuzzer reports with its input. Built without a sanitizer,
/// a fuzz target has neither ASan's nor Rust's own overflow handler (libFuzzer's `main` runs
/// instead of Rust's), so the overflow's SIGSEGV was handled on the exhausted stack itself and
/// the process died before the input was saved. Here SIGSEGV runs on a stack of its own and
/// aborts; libFuzzer, which calls this handler first, then reports the abort and saves the input.
/// Call it from `fuzz_target!`'s `init`, which runs before libFuzzer installs its handlers.
pub fn report_stack_overflows() {
    const SIGNAL_STACK: usize = 256 << 10;
    let stack: &'static mut [u8] = Box::leak(vec![0u8; SIGNAL_STACK].into_boxed_slice());
    let altstack = libc::stack_t {
        ss_sp: stack.as_mut_ptr().cast(),
        ss_flags: 0,
        ss_size: stack.len(),
    };
    // SAFETY: the stack is leaked, so it outlives the handler; the handler only calls
    // async-signal-safe functions.
    unsafe {
        assert_eq!(libc::sigaltstack(&altstack, std::ptr::null_mut()), 0);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_segv as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        assert_eq!(
            libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut()),
            0
        );
    }
}

extern "C" fn on_segv(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let message = b"\n==paddock-fuzz== SIGSEGV, most likely a stack overflow\n";
    // SAFETY: write(2) and abort(3) are async-signal-safe.
    unsafe {
        libc::write(2, message.as_ptr().cast(), message.len());
        libc::abort();
    }
}
