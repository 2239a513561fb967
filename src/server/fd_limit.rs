//! The process's open-file limit, raised as far as the OS allows, and the connection cap that
//! fits in it. macOS starts a process at 256 open files: a few hundred connections beside the
//! model files, downloads and logs would run out, and then nothing new can be opened.

/// Files the server keeps for itself below the limit: model files, the log, downloads, the
/// listening socket, RPC workers.
const RESERVED: usize = 128;

/// `wanted` connections, or fewer where the open-file limit leaves less room beside `RESERVED`.
pub fn max_connections(wanted: usize) -> usize {
    let Some(limit) = raise() else {
        return wanted;
    };
    let room = limit.saturating_sub(RESERVED).max(1);
    if room < wanted {
        tracing::warn!(
            open_files = limit,
            max_connections = room,
            "the open-file limit leaves room for fewer connections than asked"
        );
        return room;
    }
    wanted
}

/// Raises the soft limit on open files to the hard one; the soft limit it leaves, or None
/// where it cannot be read.
#[cfg(unix)]
fn raise() -> Option<usize> {
    let mut now = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) } != 0 {
        return None;
    }
    // macOS refuses more than OPEN_MAX even when the hard limit says "unlimited".
    let ceiling: libc::rlim_t = if cfg!(target_os = "macos") {
        10_240
    } else {
        1 << 20
    };
    let want = now.rlim_max.min(ceiling);
    let raised = libc::rlimit {
        rlim_cur: want,
        rlim_max: now.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct it is given.
    let soft =
        if want > now.rlim_cur && unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            want
        } else {
            now.rlim_cur
        };
    Some(usize::try_from(soft).unwrap_or(usize::MAX))
}

#[cfg(not(unix))]
fn raise() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_below_the_open_file_limit() {
        let limit = raise().expect("readable here");
        assert!(limit >= 256, "{limit}");
        assert_eq!(max_connections(8), 8);
        assert_eq!(max_connections(usize::MAX), limit - RESERVED);
    }
}
