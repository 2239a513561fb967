//! Workers on the local network. A worker lending its machine beyond loopback advertises
//! itself over mDNS (DNS-SD, `_paddock-rpc._tcp`, as Bonjour does), with the memory its
//! devices have; the server's web UI lists what it finds, so a user picks workers instead of
//! typing addresses. Knows nothing of llama.cpp or HTTP.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex, PoisonError};

use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};
use serde::Serialize;

/// The DNS-SD service type of a `paddock worker`.
pub const SERVICE: &str = "_paddock-rpc._tcp.local.";

/// mDNS's port, unless `PADDOCK_MDNS_PORT` names another: tests keep to their own.
fn port() -> u16 {
    std::env::var("PADDOCK_MDNS_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(mdns_sd::MDNS_PORT)
}

/// A worker as it advertises itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// The machine's name (`mac-studio`).
    pub name: String,
    /// `host:port` to give `serve --rpc`.
    pub endpoint: String,
    /// What its devices had free and in all when it started lending them.
    pub memory_free: u64,
    pub memory_total: u64,
}

/// This machine, advertised for as long as the value lives.
pub struct Advert {
    daemon: ServiceDaemon,
    fullname: String,
}

impl Advert {
    /// Advertises a worker listening on `addr` (all of this machine's addresses for
    /// 0.0.0.0) whose devices have this memory.
    pub fn start(addr: SocketAddrV4, memory_free: u64, memory_total: u64) -> Result<Self, String> {
        let name = machine_name();
        let instance = format!("{name}-{}", addr.port());
        let properties = [
            ("name", name.clone()),
            ("free", memory_free.to_string()),
            ("total", memory_total.to_string()),
        ];
        let ip = addr.ip();
        let addresses: Vec<IpAddr> = if ip.is_unspecified() {
            Vec::new()
        } else {
            vec![IpAddr::V4(*ip)]
        };
        let mut info = ServiceInfo::new(
            SERVICE,
            &instance,
            &format!("{name}.local."),
            &addresses[..],
            addr.port(),
            &properties[..],
        )
        .map_err(|e| e.to_string())?;
        if ip.is_unspecified() {
            info = info.enable_addr_auto();
        }
        let daemon = ServiceDaemon::new_with_port(port()).map_err(|e| e.to_string())?;
        let fullname = info.get_fullname().to_string();
        daemon.register(info).map_err(|e| e.to_string())?;
        tracing::info!(service = %fullname, "advertised on the local network (mDNS)");
        Ok(Self { daemon, fullname })
    }
}

impl Drop for Advert {
    fn drop(&mut self) {
        // Says goodbye, so browsers drop it at once instead of when its record expires.
        if let Ok(done) = self.daemon.unregister(&self.fullname) {
            let _ = done.recv_timeout(std::time::Duration::from_secs(1));
        }
        let _ = self.daemon.shutdown();
    }
}

/// Listens for workers' adverts for as long as the value lives.
pub struct Browser {
    daemon: ServiceDaemon,
    found: Arc<Mutex<BTreeMap<String, Found>>>,
}

impl Browser {
    pub fn start() -> Result<Self, String> {
        let daemon = ServiceDaemon::new_with_port(port()).map_err(|e| e.to_string())?;
        let events = daemon.browse(SERVICE).map_err(|e| e.to_string())?;
        let found = Arc::new(Mutex::new(BTreeMap::new()));
        let seen = Arc::clone(&found);
        std::thread::Builder::new()
            .name("mdns-browse".into())
            .spawn(move || {
                // Ends when the daemon shuts down and closes the channel.
                while let Ok(event) = events.recv() {
                    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                    match event {
                        ServiceEvent::ServiceResolved(service) => {
                            if let Some(worker) = worker(&service) {
                                seen.insert(service.fullname.clone(), worker);
                            }
                        }
                        ServiceEvent::ServiceRemoved(_, fullname) => {
                            seen.remove(&fullname);
                        }
                        _ => {}
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(Self { daemon, found })
    }

    /// The workers advertised now, by name.
    pub fn found(&self) -> Vec<Found> {
        let found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        found.values().cloned().collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.daemon.shutdown();
    }
}

/// A resolved advert as a worker; the address preferred is a private LAN one (ggml's RPC
/// transport is IPv4 only).
fn worker(service: &mdns_sd::ResolvedService) -> Option<Found> {
    let mut addresses: Vec<Ipv4Addr> = service.get_addresses_v4().into_iter().collect();
    addresses.sort_by_key(|a| (!a.is_private(), a.is_loopback(), *a));
    let ip = addresses.first()?;
    let number = |key| {
        service
            .get_property_val_str(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let host = service
        .host
        .trim_end_matches('.')
        .trim_end_matches(".local");
    Some(Found {
        name: service
            .get_property_val_str("name")
            .unwrap_or(host)
            .to_string(),
        endpoint: format!("{ip}:{}", service.port),
        memory_free: number("free"),
        memory_total: number("total"),
    })
}

/// This machine's name, as DNS allows it in a label.
fn machine_name() -> String {
    let name = sysinfo::System::host_name().unwrap_or_default();
    let name: String = name
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if name.is_empty() {
        "paddock".into()
    } else {
        name
    }
}
