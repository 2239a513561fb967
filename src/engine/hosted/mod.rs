//! A model served from a process of its own. llama.cpp's RPC client aborts the whole process
//! when a worker goes away mid-use (it has no way to fail a computation), so a model spread
//! over workers runs in a child Paddock ([`child`]). The server keeps an [`EngineHandle`] that
//! works as an in-process one does, bridged over the child's stdin and stdout ([`wire`]).
//! When the child dies, its requests end with [`EngineError::Lost`], the handle reports that
//! its engine has exited, and the server goes on serving its other models.

mod child;
mod wire;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command as Process, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use super::worker::Command;
use super::{
    backend, Activity, EngineError, EngineHandle, EngineSpec, Event, Exited, LoadProgress, Shared,
    SlotStatus,
};
use wire::{line, FromHost, ToHost};

/// The first argument of a process started as a model host.
pub const HOST_ARG: &str = "__model-host";

/// How often the bridge looks for requests whose client went away.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// In a process started with [`HOST_ARG`]: hosts the model the server names; the exit status.
pub fn child_main() -> i32 {
    child::run()
}

/// Loads the model in a child process that spreads it over `workers`. Blocks until it is
/// loaded (reporting progress to the spec's hook) or has failed.
pub(super) fn spawn(spec: EngineSpec, workers: &[String]) -> Result<EngineHandle, EngineError> {
    let load_error = |reason: String| EngineError::Load {
        path: spec.model_path.clone(),
        reason,
    };
    // The vocabulary only, to tokenize here; the weights live in the host.
    let params = LlamaModelParams::default().with_vocab_only(true);
    let vocab = LlamaModel::load_from_file(backend()?, &spec.model_path, &params)
        .map_err(|e| load_error(e.to_string()))?;
    let mut child = Process::new(child_program().map_err(&load_error)?)
        .arg(HOST_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Out of the terminal's process group: a Ctrl-C is the server's to handle.
        .process_group(0)
        .spawn()
        .map_err(|e| load_error(format!("cannot start a model host: {e}")))?;
    let last_words = relay_stderr(&mut child);
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(load_error("the model host has no pipes".into()));
    };
    let mut stdout = BufReader::new(stdout);
    let load = ToHost::Load {
        spec: spec.clone(),
        workers: workers.to_vec(),
    };
    let _ = stdin.write_all(line(&load).as_bytes());
    let info = loop {
        match read(&mut stdout) {
            Some(FromHost::Progress(p)) => {
                if let Some(LoadProgress(report)) = &spec.load_progress {
                    report(p);
                }
            }
            Some(FromHost::Loaded(Ok(info))) => break *info,
            Some(FromHost::Loaded(Err(e))) => {
                let _ = child.wait();
                return Err(e);
            }
            Some(_) => {}
            None => {
                let _ = child.wait();
                return Err(load_error(format!(
                    "its process ended while loading ({})",
                    lock(&last_words)
                )));
            }
        }
    };
    let eog_tokens = (0..info.n_vocab)
        .filter(|&t| vocab.vocab().is_eog(LlamaToken(t)))
        .collect();
    let (inbox, commands) = mpsc::channel();
    let bridge = Bridge {
        pending: Arc::default(),
        queued: Arc::new(AtomicUsize::new(0)),
        activity: Arc::new(Activity::new(spec.on_activity.clone())),
    };
    let exited = Exited::default();
    let sender = bridge.clone();
    std::thread::Builder::new()
        .name("host-send".into())
        .spawn(move || sender.forward(commands, stdin))
        .map_err(|e| EngineError::Context(e.to_string()))?;
    let receiver = bridge.clone();
    let guard = exited.clone().on_drop();
    std::thread::Builder::new()
        .name("host-receive".into())
        .spawn(move || {
            let _exited = guard;
            receiver.receive(stdout, child, &last_words);
        })
        .map_err(|e| EngineError::Context(e.to_string()))?;
    tracing::info!(model = %spec.model_path.display(), ?workers, n_ctx = info.n_ctx, "model loaded in a process of its own");
    Ok(EngineHandle {
        inner: Arc::new(Shared {
            model: Arc::new(vocab),
            info,
            inbox,
            queued: bridge.queued,
            activity: bridge.activity,
            max_queue: spec.max_queue,
            eog_tokens,
            exited,
        }),
    })
}

/// The program Paddock's children run (this host, a lent worker): this one, or the one
/// `PADDOCK_CHILD_PROGRAM` names (for test binaries, which are not Paddock).
pub fn child_program() -> Result<std::path::PathBuf, String> {
    match std::env::var_os("PADDOCK_CHILD_PROGRAM") {
        Some(path) => Ok(path.into()),
        None => std::env::current_exe().map_err(|e| format!("cannot find this program: {e}")),
    }
}

fn read(stdout: &mut BufReader<ChildStdout>) -> Option<FromHost> {
    loop {
        let mut text = String::new();
        if stdout.read_line(&mut text).ok()? == 0 {
            return None;
        }
        match serde_json::from_str(&text) {
            Ok(message) => return Some(message),
            Err(e) => tracing::error!("unreadable line from a model host: {e}"),
        }
    }
}

/// Passes the host's log on to ours, keeping its last error: why it ended, if it died.
fn relay_stderr(child: &mut Child) -> Arc<Mutex<String>> {
    let last_words = Arc::new(Mutex::new("it exited".to_string()));
    if let Some(stderr) = child.stderr.take() {
        let kept = Arc::clone(&last_words);
        std::thread::spawn(move || {
            for text in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{text}");
                if let Some(why) = last_error(&text) {
                    *lock(&kept) = why.to_string();
                }
            }
        });
    }
    last_words
}

/// The message of a log line at error level (`<time> ERROR <target>: <message>`).
fn last_error(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once(" ERROR ")?;
    Some(
        rest.split_once(": ")
            .map_or(rest, |(_, message)| message)
            .trim(),
    )
}

type EmbedReply = oneshot::Sender<Result<Vec<Vec<f32>>, EngineError>>;

/// Requests in the host, by the id the bridge gave them.
#[derive(Default)]
struct Pending {
    next_id: u64,
    requests: HashMap<u64, Waiting>,
    embeds: HashMap<u64, EmbedReply>,
    slots: HashMap<u64, mpsc::Sender<Vec<SlotStatus>>>,
    /// Why the host is gone, once it is: later commands fail at once.
    lost: Option<String>,
}

struct Waiting {
    events: UnboundedSender<Event>,
    /// Counted as queued until its first event.
    started: bool,
}

/// What the two bridge threads share with the handle.
#[derive(Clone)]
struct Bridge {
    pending: Arc<Mutex<Pending>>,
    queued: Arc<AtomicUsize>,
    activity: Arc<Activity>,
}

impl Bridge {
    /// Handle → host: each command becomes a line; a request whose client went away, a
    /// cancel. Ends when every handle is dropped, closing the host's stdin (it then frees the
    /// model and exits).
    fn forward(&self, commands: Receiver<Command>, mut stdin: ChildStdin) {
        let mut looked = Instant::now();
        loop {
            match commands.recv_timeout(CANCEL_POLL) {
                // A failed write means the host is gone: `receive` tells everyone.
                Ok(command) => {
                    if let Some(message) = self.register(command) {
                        let _ = stdin.write_all(line(&message).as_bytes());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // On a clock, not only when idle: a busy server sends commands all the time.
            if looked.elapsed() >= CANCEL_POLL {
                for id in self.abandoned() {
                    let _ = stdin.write_all(line(&ToHost::Cancel { id }).as_bytes());
                }
                looked = Instant::now();
            }
        }
    }

    /// Gives the command an id and keeps its reply channel; `None` when the host is gone (the
    /// command is answered here).
    fn register(&self, command: Command) -> Option<ToHost> {
        let mut pending = lock(&self.pending);
        let id = pending.next_id;
        pending.next_id += 1;
        let lost = pending.lost.clone().map(EngineError::Lost);
        match command {
            Command::Submit(submission) => {
                if let Some(e) = lost {
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                    let _ = submission.events.send(Event::Error(e));
                    return None;
                }
                let waiting = Waiting {
                    events: submission.events,
                    started: false,
                };
                pending.requests.insert(id, waiting);
                Some(ToHost::Submit {
                    id,
                    request: submission.request,
                })
            }
            Command::Embed { inputs, reply } => {
                if let Some(e) = lost {
                    let _ = reply.send(Err(e));
                    return None;
                }
                pending.embeds.insert(id, reply);
                Some(ToHost::Embed { id, inputs })
            }
            Command::Status(reply) => lost.is_none().then(|| {
                pending.slots.insert(id, reply);
                ToHost::Slots { id }
            }),
        }
    }

    /// Requests whose receiver was dropped, taken out of the pending list.
    fn abandoned(&self) -> Vec<u64> {
        let mut pending = lock(&self.pending);
        let gone: Vec<u64> = pending
            .requests
            .iter()
            .filter(|(_, w)| w.events.is_closed())
            .map(|(&id, _)| id)
            .collect();
        for id in &gone {
            if let Some(w) = pending.requests.remove(id) {
                self.started(&w);
            }
        }
        gone
    }

    /// A request left the queue: it reached a slot, or ended.
    fn started(&self, waiting: &Waiting) {
        if !waiting.started {
            self.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Host → handle: answers to their requests, until the host's stdout closes; then every
    /// request still waiting ends with why.
    fn receive(
        &self,
        mut stdout: BufReader<ChildStdout>,
        mut child: Child,
        last_words: &Mutex<String>,
    ) {
        while let Some(message) = read(&mut stdout) {
            let mut pending = lock(&self.pending);
            match message {
                FromHost::Event { id, event } => {
                    let last = !matches!(event, Event::Token(_));
                    if let Some(waiting) = pending.requests.get_mut(&id) {
                        self.started(waiting);
                        waiting.started = true;
                        let _ = waiting.events.send(event);
                    }
                    if last {
                        pending.requests.remove(&id);
                    }
                }
                FromHost::Embedded { id, result } => {
                    if let Some(reply) = pending.embeds.remove(&id) {
                        let _ = reply.send(result);
                    }
                }
                FromHost::Slots { id, slots } => {
                    if let Some(reply) = pending.slots.remove(&id) {
                        let _ = reply.send(slots);
                    }
                }
                FromHost::Activity(now) => self.activity.set(now),
                FromHost::Progress(_) | FromHost::Loaded(_) => {}
            }
        }
        let status = child
            .wait()
            .map_or_else(|e| e.to_string(), |s| s.to_string());
        let why = format!("its process ended ({}; {status})", lock(last_words));
        let mut pending = lock(&self.pending);
        let stopped = pending.requests.len() + pending.embeds.len();
        if stopped > 0 || status != "exit status: 0" {
            tracing::error!(requests = stopped, "a model host stopped: {why}");
        }
        for (_, waiting) in pending.requests.drain() {
            self.started(&waiting);
            let _ = waiting
                .events
                .send(Event::Error(EngineError::Lost(why.clone())));
        }
        for (_, reply) in pending.embeds.drain() {
            let _ = reply.send(Err(EngineError::Lost(why.clone())));
        }
        pending.slots.clear();
        pending.lost = Some(why);
        drop(pending);
        self.activity.set(super::ActivityNow {
            busy_slots: 0,
            ..self.activity.now()
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::last_error;

    #[test]
    fn the_last_error_is_the_message_of_an_error_line() {
        let text = "2026-11-26T10:00:00.1Z ERROR paddock::engine::rpc: llama.cpp aborted: Remote RPC server crashed";
        assert_eq!(
            last_error(text),
            Some("llama.cpp aborted: Remote RPC server crashed")
        );
        assert_eq!(
            last_error("2026-11-26T10:00:00Z  INFO paddock: loaded"),
            None
        );
    }
}
