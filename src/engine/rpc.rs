//! ggml's RPC backend: one machine's devices served to another over TCP. `serve_worker` exposes
//! this machine (`paddock worker`); `connect` makes other machines' devices part of every model
//! this process loads afterwards, as llama-server's `--rpc` does: llama.cpp then splits layers
//! and KV cache over local and remote devices by their free memory.
//!
//! The crate binds none of ggml-rpc.h, so its entry points are fetched from the backend registry
//! (`ggml_backend_reg_get_proc_address`), which works whether ggml is linked in or loaded as
//! modules. llama.cpp's RPC client aborts the process when it cannot reach a worker, so every
//! worker is first greeted here ([`greet`]), where a failure is an ordinary error.

use std::ffi::{c_char, CStr, CString};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Once;
use std::time::Duration;

use llama_cpp_sys_2 as sys;

use super::{backend, EngineError};

/// The protocol this build speaks (ggml-rpc.h `RPC_PROTO_MAJOR_VERSION`); workers and main
/// machine must agree on the major version.
pub const PROTOCOL_MAJOR: u8 = 7;
/// Port llama.cpp's own `rpc-server` uses by default.
pub const DEFAULT_PORT: u16 = 50052;

const CMD_HELLO: u8 = 14;
/// `rpc_msg_hello_req`: transport capabilities (all zero: plain TCP).
const CONN_CAPS: usize = 24;
/// How long a worker has to answer the greeting. A worker serves one client at a time, so a
/// busy one accepts the connection and then stays silent.
const GREETING_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Checks that a worker is there, speaks this protocol version and is free to serve us.
/// Returns its protocol version as `major.minor.patch`.
pub fn greet(endpoint: &str) -> Result<String, EngineError> {
    let fail = |reason: String| EngineError::Rpc {
        endpoint: endpoint.to_string(),
        reason,
    };
    let addr = resolve(endpoint).map_err(fail)?;
    let mut socket = TcpStream::connect_timeout(&addr, GREETING_TIMEOUT).map_err(|e| {
        fail(format!(
            "cannot connect: {e} (is `paddock worker` running there?)"
        ))
    })?;
    socket
        .set_read_timeout(Some(GREETING_TIMEOUT))
        .and_then(|()| socket.set_write_timeout(Some(GREETING_TIMEOUT)))
        .map_err(|e| fail(e.to_string()))?;
    let mut hello = vec![CMD_HELLO];
    hello.extend_from_slice(&(CONN_CAPS as u64).to_le_bytes());
    hello.extend_from_slice(&[0; CONN_CAPS]);
    socket
        .write_all(&hello)
        .map_err(|e| fail(format!("cannot send the greeting: {e}")))?;
    // `| size: u64 | major minor patch pad | caps |`
    let mut answer = [0u8; 8 + 4 + CONN_CAPS];
    socket.read_exact(&mut answer).map_err(|e| {
        fail(match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                "no answer: the worker is serving another machine (a worker serves one at a time)"
                    .into()
            }
            _ => format!("not a ggml RPC worker ({e})"),
        })
    })?;
    let size = u64::from_le_bytes(answer[..8].try_into().expect("8 bytes"));
    if size != (4 + CONN_CAPS) as u64 {
        return Err(fail(format!(
            "not a ggml RPC worker of protocol {PROTOCOL_MAJOR} (greeting of {size} bytes)"
        )));
    }
    let [major, minor, patch] = [answer[8], answer[9], answer[10]];
    if major != PROTOCOL_MAJOR {
        return Err(fail(format!(
            "the worker speaks RPC protocol {major}.{minor}.{patch}, this build {PROTOCOL_MAJOR}: \
             run the same Paddock version on both machines"
        )));
    }
    Ok(format!("{major}.{minor}.{patch}"))
}

/// `host:port` with a port number; the host is looked up only when connecting.
pub fn is_endpoint(text: &str) -> bool {
    matches!(text.rsplit_once(':'), Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok())
}

fn resolve(endpoint: &str) -> Result<SocketAddr, String> {
    if !is_endpoint(endpoint) {
        return Err(format!("{endpoint:?} is not host:port"));
    }
    let host = endpoint.rsplit_once(':').map_or(endpoint, |(host, _)| host);
    endpoint
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        // ggml's RPC transport is IPv4 only.
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| format!("{host} has no IPv4 address"))
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
/// to fail a computation). Say so in the log before it happens, so the restart by launchd or
/// systemd (which then serves without that worker, see [`connect`]) is explained.
fn log_aborts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        unsafe extern "C" fn on_abort(message: *const c_char) {
            // SAFETY: ggml passes a NUL-terminated message.
            let message = unsafe { CStr::from_ptr(message) }.to_string_lossy();
            tracing::error!(
                "llama.cpp aborted: {}; with --rpc this means a worker went away \
                 mid-use, and the process must restart",
                message.trim()
            );
        }
        // SAFETY: installs a callback that lives for the whole program.
        unsafe { sys::ggml_set_abort_callback(Some(on_abort)) };
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn endpoints_must_be_host_and_port() {
        for bad in ["localhost", ":50052", "host:", "host:port", "host:70000"] {
            assert!(
                resolve(bad).unwrap_err().contains("is not host:port"),
                "{bad}"
            );
        }
        assert_eq!(
            resolve("127.0.0.1:50052").unwrap(),
            "127.0.0.1:50052".parse().unwrap()
        );
    }

    #[test]
    fn greeting_a_closed_port_is_an_error_not_an_abort() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = greet(&format!("127.0.0.1:{port}")).unwrap_err().to_string();
        assert!(err.contains("cannot connect"), "{err}");
    }

    /// What `greet` says to a server that reads the greeting and sends `answer`.
    fn greet_a_server_answering(answer: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut hello = [0u8; 1 + 8 + CONN_CAPS];
            s.read_exact(&mut hello).unwrap();
            assert_eq!(hello[0], CMD_HELLO);
            s.write_all(&answer).unwrap();
        });
        let err = greet(&addr.to_string()).unwrap_err().to_string();
        server.join().unwrap();
        err
    }

    #[test]
    fn greeting_something_else_says_so() {
        // An HTTP server answers with a status line.
        let err = greet_a_server_answering(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec());
        assert!(err.contains("not a ggml RPC worker"), "{err}");
    }

    #[test]
    fn a_busy_worker_is_named_busy() {
        // Accepts and never answers, as a worker serving another machine does.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let err = greet(&addr.to_string()).unwrap_err().to_string();
        assert!(err.contains("serving another machine"), "{err}");
        drop(listener);
    }

    #[test]
    fn another_protocol_version_is_refused_with_both_versions() {
        let mut answer = ((4 + CONN_CAPS) as u64).to_le_bytes().to_vec();
        answer.extend_from_slice(&[3, 0, 0, 0]);
        answer.extend_from_slice(&[0; CONN_CAPS]);
        let err = greet_a_server_answering(answer);
        assert!(err.contains("protocol 3.0.0, this build 7"), "{err}");
    }
}
