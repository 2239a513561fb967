//! The hosting side: Paddock started with [`super::HOST_ARG`] loads the one model the server
//! names on its first stdin line, then answers the server's requests on stdout. It ends when
//! stdin closes (the server unloaded the model, or went away itself), after freeing the model.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::sync::oneshot;

use super::wire::{line, FromHost, ToHost};
use crate::engine::{rpc, ActivityHook, EngineHandle, Event, LoadProgress};

/// Requests being generated, each with the switch that abandons it.
type Cancels = Arc<Mutex<HashMap<u64, oneshot::Sender<()>>>>;

/// Lines for stdout's writer; `None` tells it to stop once it has written what came before
/// (the engine's hooks hold senders until the model is freed, so it cannot wait for them).
type Out = UnboundedSender<Option<FromHost>>;

/// Runs the host; the process's exit status.
pub fn run() -> i32 {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(serve()),
        Err(e) => {
            tracing::error!("cannot start the model host: {e}");
            1
        }
    }
}

async fn serve() -> i32 {
    let (out, mut outbox) = unbounded_channel::<Option<FromHost>>();
    // stdout's one writer, so lines never interleave.
    let writer = std::thread::spawn(move || {
        let mut stdout = std::io::stdout().lock();
        while let Some(Some(message)) = outbox.blocking_recv() {
            let sent = stdout.write_all(line(&message).as_bytes());
            if sent.and_then(|()| stdout.flush()).is_err() {
                break; // the server is gone
            }
        }
    });
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let first = lines.next_line().await.ok().flatten().unwrap_or_default();
    let Ok(ToHost::Load { spec, workers }) = serde_json::from_str(&first) else {
        tracing::error!("a model host's first line must say what to load");
        return 2;
    };
    let engine = match load(spec, workers, &out).await {
        Ok(engine) => engine,
        Err(e) => {
            let _ = out.send(Some(FromHost::Loaded(Err(e))));
            let _ = out.send(None);
            let _ = writer.join();
            return 1;
        }
    };
    let _ = out.send(Some(FromHost::Loaded(Ok(Box::new(engine.info().clone())))));

    let cancels = Cancels::default();
    while let Ok(Some(text)) = lines.next_line().await {
        match serde_json::from_str::<ToHost>(&text) {
            Ok(message) => answer(message, &engine, &out, &cancels),
            Err(e) => tracing::error!("model host: unreadable line from the server: {e}"),
        }
    }
    // The server is done with this model: abandon what runs, free the model, then go.
    lock(&cancels).clear();
    let exited = engine.exited();
    drop(engine);
    let _ = tokio::task::spawn_blocking(move || exited.wait(Duration::from_secs(10))).await;
    let _ = out.send(None);
    let _ = writer.join();
    0
}

/// Reaches the workers, then loads the model with hooks that report to the server.
async fn load(
    mut spec: crate::engine::EngineSpec,
    workers: Vec<String>,
    out: &Out,
) -> Result<EngineHandle, crate::engine::EngineError> {
    let progress = out.clone();
    spec.load_progress = Some(LoadProgress(Arc::new(move |p| {
        let _ = progress.send(Some(FromHost::Progress(p)));
    })));
    let activity = out.clone();
    spec.on_activity = Some(ActivityHook(Arc::new(move |now| {
        let _ = activity.send(Some(FromHost::Activity(now)));
    })));
    // The server bounds its own queue.
    spec.max_queue = usize::MAX;
    tokio::task::spawn_blocking(move || {
        if !workers.is_empty() {
            rpc::connect(&workers)?;
        }
        EngineHandle::spawn(spec)
    })
    .await
    .map_err(|e| crate::engine::EngineError::Context(e.to_string()))?
}

fn answer(message: ToHost, engine: &EngineHandle, out: &Out, cancels: &Cancels) {
    match message {
        ToHost::Load { .. } => tracing::error!("model host: a model is loaded already"),
        ToHost::Submit { id, request } => match engine.submit(request) {
            Err(e) => {
                let _ = out.send(Some(FromHost::Event {
                    id,
                    event: Event::Error(e),
                }));
            }
            Ok(mut events) => {
                let (cancel, mut cancelled) = oneshot::channel();
                lock(cancels).insert(id, cancel);
                let (out, cancels) = (out.clone(), Arc::clone(cancels));
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            event = events.recv() => {
                                let Some(event) = event else { break };
                                let last = !matches!(event, Event::Token(_));
                                let _ = out.send(Some(FromHost::Event { id, event }));
                                if last {
                                    break;
                                }
                            }
                            // Dropping the receiver is how the engine hears of it.
                            _ = &mut cancelled => break,
                        }
                    }
                    lock(&cancels).remove(&id);
                });
            }
        },
        ToHost::Cancel { id } => {
            lock(cancels).remove(&id);
        }
        ToHost::Embed { id, inputs } => {
            let (engine, out) = (engine.clone(), out.clone());
            tokio::spawn(async move {
                let result = engine.embed(inputs).await;
                let _ = out.send(Some(FromHost::Embedded { id, result }));
            });
        }
        ToHost::Slots { id } => {
            let (engine, out) = (engine.clone(), out.clone());
            tokio::task::spawn_blocking(move || {
                let slots = engine.slots().unwrap_or_default();
                let _ = out.send(Some(FromHost::Slots { id, slots }));
            });
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
