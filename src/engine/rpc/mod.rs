//! ggml's RPC backend: one machine's devices served to another over TCP. `serve_worker` exposes
//! this machine (`paddock worker`); `connect` makes other machines' devices part of every model
//! this process loads afterwards, as llama-server's `--rpc` does: llama.cpp then splits layers
//! and KV cache over local and remote devices by their free memory. The server itself only
//! `survey`s its workers; the model spread over them loads in a process of its own
//! (`engine::hosted`), which connects.
//!
//! The crate binds none of ggml-rpc.h, so its entry points are fetched from the backend registry
//! (`ggml_backend_reg_get_proc_address`), which works whether ggml is linked in or loaded as
//! modules.

use std::ffi::{c_char, CStr, CString};
use std::sync::Once;

use llama_cpp_sys_2 as sys;

mod greeting;

pub use greeting::{greet, is_endpoint, survey};

use super::{backend, EngineError};

/// The protocol this build speaks (ggml-rpc.h `RPC_PROTO_MAJOR_VERSION`); workers and main
/// machine must agree on the major version.
pub const PROTOCOL_MAJOR: u8 = 7;
/// Port llama.cpp's own `rpc-server` uses by default.
pub const DEFAULT_PORT: u16 = 50052;

/// A device another machine lends through its worker.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RemoteDevice {
    /// The worker's `host:port`.
    pub endpoint: String,
    /// llama.cpp's name for it (`RPC0`, `RPC1`, ... in the order the workers were added).
    pub name: String,
    /// llama.cpp's description of it (for this version of its RPC backend: the endpoint).
    pub description: String,
    pub memory_free: u64,
    pub memory_total: u64,
}

/// The workers [`connect`] reached, and those it could not.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Workers {
    pub devices: Vec<RemoteDevice>,
    /// `endpoint: why`, for workers that did not answer the greeting.
    pub missing: Vec<String>,
}

/// Greets every worker, then registers the devices of those that answered with llama.cpp:
/// models loaded from now on are spread over them. A worker that does not answer is left out
/// with a warning, so an always-on server restarted after losing one serves without it.
pub fn connect(endpoints: &[String]) -> Result<Workers, EngineError> {
    backend()?;
    log_aborts();
    let mut workers = Workers::default();
    let mut reached = Vec::new();
    for endpoint in endpoints {
        match greet(endpoint) {
            Ok(_) => reached.push(endpoint),
            Err(e) => {
                tracing::warn!("{e}; serving without it");
                workers.missing.push(e.to_string());
            }
        }
    }
    if reached.is_empty() {
        return Ok(workers);
    }
    let add_server: AddServer = proc_address(c"ggml_backend_rpc_add_server")?;
    for endpoint in reached {
        let c_endpoint = CString::new(endpoint.as_str()).map_err(|_| EngineError::Rpc {
            endpoint: endpoint.clone(),
            reason: "contains a NUL byte".into(),
        })?;
        // SAFETY: a valid C string; the greeting above found the worker listening, so the
        // connection llama.cpp opens here does not take its abort path.
        let reg = unsafe { add_server(c_endpoint.as_ptr()) };
        // SAFETY: `reg` is the registry entry llama.cpp just made for this worker; registering
        // it makes its devices part of the default device list, as llama-server's --rpc does.
        unsafe { sys::ggml_backend_register(reg) };
        // SAFETY: indices below the registry's own device count.
        for i in 0..unsafe { sys::ggml_backend_reg_dev_count(reg) } {
            let device = unsafe { sys::ggml_backend_reg_dev_get(reg, i) };
            workers.devices.push(describe(endpoint, device));
        }
    }
    for d in &workers.devices {
        tracing::info!(
            worker = %d.endpoint,
            device = %d.name,
            description = %d.description,
            free_mib = d.memory_free >> 20,
            "RPC device added"
        );
    }
    Ok(workers)
}

/// Name, description and memory of a registered device (an RPC call for a remote one).
fn describe(endpoint: &str, device: sys::ggml_backend_dev_t) -> RemoteDevice {
    let text = |p: *const c_char| {
        // SAFETY: ggml returns NUL-terminated strings owned by the device.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    };
    let (mut free, mut total) = (0usize, 0usize);
    // SAFETY: a device from the registry and two out-pointers to locals.
    unsafe { sys::ggml_backend_dev_memory(device, &mut free, &mut total) };
    RemoteDevice {
        endpoint: endpoint.to_string(),
        // SAFETY: as above.
        name: text(unsafe { sys::ggml_backend_dev_name(device) }),
        description: text(unsafe { sys::ggml_backend_dev_description(device) }),
        memory_free: free as u64,
        memory_total: total as u64,
    }
}

/// Serves this machine's devices (the GPUs, or the CPU when there is none) on `addr` to one
/// client at a time. Blocks for the life of the process; returns only when the server cannot
/// start. `cache_dir` keeps large tensors so a model reloads without resending them.
pub fn serve_worker(
    addr: std::net::SocketAddrV4,
    cache_dir: Option<&std::path::Path>,
    threads: usize,
) -> Result<(), EngineError> {
    backend()?;
    let fail = |reason: &str| EngineError::Rpc {
        endpoint: addr.to_string(),
        reason: reason.to_string(),
    };
    // ggml's server reports a busy port only on stderr: try it here first for a clear error.
    drop(std::net::TcpListener::bind(addr).map_err(|e| fail(&format!("cannot listen: {e}")))?);
    let start: StartServer = proc_address(c"ggml_backend_rpc_start_server")?;
    let mut devices = local_devices();
    let c_endpoint = CString::new(addr.to_string()).expect("an address has no NUL");
    let c_cache = cache_dir
        .map(|p| CString::new(p.to_string_lossy().into_owned()))
        .transpose()
        .map_err(|_| fail("the cache folder's path contains a NUL byte"))?;
    // SAFETY: valid C strings that outlive the call (it only returns on failure), and a device
    // array of the given length.
    unsafe {
        start(
            c_endpoint.as_ptr(),
            c_cache.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            threads,
            devices.len(),
            devices.as_mut_ptr(),
        )
    };
    Err(fail("the RPC server stopped (see the lines above)"))
}

/// What the devices a worker here would lend have free and in all.
pub fn lent_memory() -> Result<(u64, u64), EngineError> {
    backend()?;
    let (mut free, mut total) = (0u64, 0u64);
    for device in local_devices() {
        let (mut f, mut t) = (0usize, 0usize);
        // SAFETY: a device from the registry and two out-pointers to locals.
        unsafe { sys::ggml_backend_dev_memory(device, &mut f, &mut t) };
        free += f as u64;
        total += t as u64;
    }
    Ok((free, total))
}

/// What a worker lends: its GPUs (discrete or integrated), else its CPU, as llama.cpp's
/// `rpc-server` chooses. RPC devices of this process are never lent on.
fn local_devices() -> Vec<sys::ggml_backend_dev_t> {
    let all: Vec<_> = (0..unsafe { sys::ggml_backend_dev_count() })
        // SAFETY: indices below the device count.
        .map(|i| unsafe { sys::ggml_backend_dev_get(i) })
        .collect();
    let kind = |d| unsafe { sys::ggml_backend_dev_type(d) };
    let gpus: Vec<_> = all
        .iter()
        .copied()
        .filter(|&d| {
            matches!(
                kind(d),
                sys::GGML_BACKEND_DEVICE_TYPE_GPU | sys::GGML_BACKEND_DEVICE_TYPE_IGPU
            )
        })
        .collect();
    if !gpus.is_empty() {
        return gpus;
    }
    all.into_iter()
        .filter(|&d| kind(d) == sys::GGML_BACKEND_DEVICE_TYPE_CPU)
        .take(1)
        .collect()
}

type AddServer = unsafe extern "C" fn(*const c_char) -> sys::ggml_backend_reg_t;
type StartServer =
    unsafe extern "C" fn(*const c_char, *const c_char, usize, usize, *mut sys::ggml_backend_dev_t);

/// An entry point of ggml's RPC backend, by name.
fn proc_address<F: Copy>(name: &CStr) -> Result<F, EngineError> {
    let missing = |reason: &str| EngineError::Rpc {
        endpoint: String::new(),
        reason: reason.to_string(),
    };
    // SAFETY: looks a registry entry up by a NUL-terminated name; null when absent.
    let reg = unsafe { sys::ggml_backend_reg_by_name(c"RPC".as_ptr()) };
    if reg.is_null() {
        return Err(missing(
            "this build has no RPC backend (llama.cpp built without GGML_RPC)",
        ));
    }
    // SAFETY: as above; the returned pointer is the named function or null.
    let address = unsafe { sys::ggml_backend_reg_get_proc_address(reg, name.as_ptr()) };
    if address.is_null() {
        return Err(missing(&format!("the RPC backend lacks {name:?}")));
    }
    assert_eq!(size_of::<F>(), size_of::<*mut std::ffi::c_void>());
    // SAFETY: F is the function-pointer type of the named entry point (ggml-rpc.h).
    Ok(unsafe { std::mem::transmute_copy(&address) })
}

/// llama.cpp's RPC client aborts the process when a worker goes away mid-use (it has no way
/// to fail a computation). Say why in the log before it happens: a model host's last error
/// line is what the server reports for it.
fn log_aborts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        unsafe extern "C" fn on_abort(message: *const c_char) {
            // SAFETY: ggml passes a NUL-terminated message.
            let message = unsafe { CStr::from_ptr(message) }.to_string_lossy();
            tracing::error!("llama.cpp aborted: {}", without_location(message.trim()));
        }
        // SAFETY: installs a callback that lives for the whole program.
        unsafe { sys::ggml_set_abort_callback(Some(on_abort)) };
    });
}

/// `ggml-rpc.cpp:569: Remote RPC server crashed` → `Remote RPC server crashed`: the source
/// line means nothing to a user.
fn without_location(message: &str) -> &str {
    match message.split_once(": ") {
        Some((at, rest))
            if at
                .rsplit(':')
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok()) =>
        {
            rest
        }
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::without_location;

    #[test]
    fn an_abort_message_loses_its_source_line() {
        assert_eq!(
            without_location(
                "/src/ggml-rpc.cpp:569: Remote RPC server crashed or returned malformed response"
            ),
            "Remote RPC server crashed or returned malformed response"
        );
        assert_eq!(
            without_location("out of memory: 12 MiB"),
            "out of memory: 12 MiB"
        );
    }
}
