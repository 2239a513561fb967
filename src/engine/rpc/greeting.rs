//! Talking to a worker before llama.cpp does: its RPC client aborts the process when it cannot
//! reach one, so every worker is greeted here first, where a failure is an ordinary error. The
//! same few protocol messages tell what memory a worker has without making its devices part
//! of this process (`survey`): the server only plans with them, a model host uses them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::{RemoteDevice, Workers, PROTOCOL_MAJOR};
use crate::engine::EngineError;

const CMD_GET_DEVICE_MEMORY: u8 = 11;
const CMD_HELLO: u8 = 14;
const CMD_DEVICE_COUNT: u8 = 15;
/// `rpc_msg_hello_req`: transport capabilities (all zero: plain TCP).
const CONN_CAPS: usize = 24;
/// How long a worker has to answer. A worker serves one client at a time, so a busy one
/// accepts the connection and then stays silent.
const GREETING_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks that a worker is there, speaks this protocol version and is free to serve us.
/// Returns its protocol version as `major.minor.patch`.
pub fn greet(endpoint: &str) -> Result<String, EngineError> {
    greeted(endpoint).map(|(version, _)| version)
}

/// The greeting, and the connection it was made on.
fn greeted(endpoint: &str) -> Result<(String, TcpStream), EngineError> {
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
    Ok((format!("{major}.{minor}.{patch}"), socket))
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

/// Greets every worker and asks each for its devices' memory, as llama.cpp would, without
/// making them part of this process. A worker that does not answer is listed as missing.
pub fn survey(endpoints: &[String]) -> Workers {
    let mut workers = Workers::default();
    for endpoint in endpoints {
        match devices(endpoint) {
            Ok(devices) => workers.devices.extend(devices),
            Err(e) => {
                tracing::warn!("{e}; serving without it");
                workers.missing.push(e.to_string());
            }
        }
    }
    workers
}

/// One worker's devices (`RPC_CMD_DEVICE_COUNT`, then `RPC_CMD_GET_DEVICE_MEMORY` for each).
fn devices(endpoint: &str) -> Result<Vec<RemoteDevice>, EngineError> {
    let fail = |e: std::io::Error| EngineError::Rpc {
        endpoint: endpoint.to_string(),
        reason: format!("asking for its memory: {e}"),
    };
    let (_, mut socket) = greeted(endpoint)?;
    let count = call(&mut socket, CMD_DEVICE_COUNT, &[], 4).map_err(fail)?;
    let count = u32::from_le_bytes(count[..4].try_into().expect("4 bytes"));
    (0..count)
        .map(|device| {
            let memory = call(
                &mut socket,
                CMD_GET_DEVICE_MEMORY,
                &device.to_le_bytes(),
                16,
            )
            .map_err(fail)?;
            let word = |i: usize| u64::from_le_bytes(memory[i..i + 8].try_into().expect("8 bytes"));
            Ok(RemoteDevice {
                endpoint: endpoint.to_string(),
                name: format!("RPC{device}"),
                description: endpoint.to_string(),
                memory_free: word(0),
                memory_total: word(8),
            })
        })
        .collect()
}

/// `| cmd: u8 | size: u64 | input |`, answered by `| size: u64 | output |` of `size` bytes.
fn call(socket: &mut TcpStream, cmd: u8, input: &[u8], size: usize) -> std::io::Result<Vec<u8>> {
    let mut message = vec![cmd];
    message.extend_from_slice(&(input.len() as u64).to_le_bytes());
    message.extend_from_slice(input);
    socket.write_all(&message)?;
    let mut answer_size = [0u8; 8];
    socket.read_exact(&mut answer_size)?;
    if u64::from_le_bytes(answer_size) != size as u64 {
        return Err(std::io::Error::other("an answer of the wrong size"));
    }
    let mut answer = vec![0u8; size];
    socket.read_exact(&mut answer)?;
    Ok(answer)
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
