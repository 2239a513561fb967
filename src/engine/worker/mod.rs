//! The engine thread: owns the llama.cpp context and runs the scheduling loop. Each step admits
//! waiting requests to free slots, fills one batch (one token for every generating slot, then
//! prompt chunks up to `n_batch`), decodes it once, and samples for every slot that needs a token.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Instant;

use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::DecodeError;
use tokio::sync::mpsc::UnboundedSender;

use super::activity::Activity;
use super::draft_model::DraftModel;
use super::embed::Embedder;
use super::error::EngineError;
use super::mtp::Target;
use super::sampling::TokenSampler;
use super::scheduler::{caches_to_evict, choose_slot, common_prefix, IdleSlot};
use super::slot::{Job, Slot, SlotState, SlotStatus};
use super::speculation::{DecodeCost, Speculation};
use super::types::{Event, FinishReason, Request, TokenId};

mod sample;

/// What the handle sends to the engine thread.
pub enum Command {
    /// Boxed: a request is much larger than the other commands.
    Submit(Box<Submission>),
    /// Report every slot's state (answered between steps).
    Status(std::sync::mpsc::Sender<Vec<SlotStatus>>),
    /// Embed each input (answered between steps; generation pauses meanwhile).
    Embed {
        inputs: Vec<Vec<TokenId>>,
        reply: tokio::sync::oneshot::Sender<Result<Vec<Vec<f32>>, EngineError>>,
    },
}

/// A request on its way to a slot.
pub struct Submission {
    pub request: Request,
    pub events: UnboundedSender<Event>,
}

/// Engine-thread settings that are not llama.cpp context parameters.
pub struct WorkerConfig {
    pub n_ctx: u32,
    pub n_batch: u32,
    pub context_shift: bool,
    /// Sliding-window size of SWA layers (0 = none): limits how far a cached prefix can be cut.
    pub swa_window: u32,
    /// Threads for the embedding context.
    pub n_threads: i32,
    /// Off for models whose state cannot drop a rejected guess (recurrent, hybrid).
    pub speculation: Speculation,
}

pub struct Worker<'m> {
    model: &'m LlamaModel,
    /// The context, with the model's MTP heads where they guess.
    ctx: Target<'m>,
    config: WorkerConfig,
    slots: Vec<Slot>,
    queue: VecDeque<Submission>,
    /// Shared with the handle: requests submitted but not yet in a slot (for the queue bound).
    queued: Arc<AtomicUsize>,
    batch: LlamaBatch<'static>,
    clock: u64,
    /// Made on the first embeddings request.
    embedder: Option<Embedder<'m>>,
    /// `--model-draft`: guesses where the n-gram lookup finds nothing.
    draft_model: Option<DraftModel<'m>>,
    /// What checking a guessed token costs here, learnt from the decode times.
    cost: DecodeCost,
    /// Generation speed and guess acceptance of the request that finished last, not yet
    /// reported.
    last_finished: Option<(f64, Option<f64>)>,
}

impl<'m> Worker<'m> {
    pub fn new(
        model: &'m LlamaModel,
        ctx: Target<'m>,
        config: WorkerConfig,
        n_slots: u32,
        queued: Arc<AtomicUsize>,
        draft_model: Option<DraftModel<'m>>,
    ) -> Self {
        // Generating slots' tokens and guesses share the batch with prompt chunks, all of it
        // within `n_batch` (what llama.cpp accepts per decode).
        let batch_capacity = config.n_batch as usize;
        Self {
            model,
            ctx,
            slots: (0..n_slots as i32).map(Slot::new).collect(),
            queue: VecDeque::new(),
            queued,
            batch: LlamaBatch::new(batch_capacity, 1),
            clock: 0,
            embedder: None,
            draft_model,
            cost: DecodeCost::default(),
            last_finished: None,
            config,
        }
    }

    /// Runs until every `EngineHandle` is dropped and all work is done.
    pub fn run(mut self, inbox: Receiver<Command>, activity: &Activity) {
        let mut open = true;
        loop {
            activity.set_busy(self.slots.iter().filter(|s| !s.is_idle()).count());
            if let Some((tps, acceptance)) = self.last_finished.take() {
                activity.finished(tps, acceptance);
            }
            let busy = !self.queue.is_empty() || self.slots.iter().any(|s| !s.is_idle());
            if !busy {
                if !open {
                    return;
                }
                // Nothing to do: block until a request arrives.
                match inbox.recv() {
                    Ok(command) => self.handle(command),
                    Err(_) => return,
                }
            }
            loop {
                match inbox.try_recv() {
                    Ok(command) => self.handle(command),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            self.step();
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Submit(sub) => self.queue.push_back(*sub),
            Command::Status(reply) => {
                let _ = reply.send(self.slots.iter().map(Slot::status).collect());
            }
            Command::Embed { inputs, reply } => {
                let _ = reply.send(self.embed(&inputs));
            }
        }
    }

    fn embed(&mut self, inputs: &[Vec<TokenId>]) -> Result<Vec<Vec<f32>>, EngineError> {
        let embedder = match &mut self.embedder {
            Some(e) => e,
            None => self
                .embedder
                .insert(Embedder::new(self.model, self.config.n_threads)?),
        };
        embedder.embed(inputs)
    }

    fn step(&mut self) {
        self.clock += 1;
        self.drop_cancelled();
        self.admit();
        self.fill_batch();
        if self.batch.n_tokens() == 0 {
            return;
        }
        let started = Instant::now();
        match self.decode() {
            Ok(()) => {
                let n = self.batch.n_tokens() as usize;
                self.cost.observe(n, started.elapsed().as_secs_f64());
                self.sample();
            }
            Err(e) => self.fail_batch(&e),
        }
    }

    fn drop_cancelled(&mut self) {
        let before = self.queue.len();
        self.queue.retain(|s| !s.events.is_closed());
        self.queued
            .fetch_sub(before - self.queue.len(), Ordering::Relaxed);
        for slot in &mut self.slots {
            if slot.job.as_ref().is_some_and(Job::is_cancelled) {
                tracing::info!(parent: &slot.job.as_ref().map(|j| j.request.span.clone()).unwrap_or_else(tracing::Span::none), slot = slot.seq, "client went away; slot freed");
                slot.job = None;
                slot.last_used = self.clock;
            }
        }
    }

    /// Moves waiting requests into idle slots, reusing the longest cached prefix.
    fn admit(&mut self) {
        while !self.queue.is_empty() {
            let idle = self.idle_slots(None);
            let Some(front) = self.queue.front() else {
                break;
            };
            let Some(index) = choose_slot(&idle, &front.request.prompt) else {
                break;
            };
            let keep = self.reusable_prefix(index, &front.request.prompt);
            let need = front.request.prompt.len() - keep;
            if !self.has_room(index, keep, need) {
                // Wait in the queue until running requests finish and free cells.
                break;
            }
            let Some(sub) = self.queue.pop_front() else {
                break;
            };
            self.queued.fetch_sub(1, Ordering::Relaxed);
            let reused = self.reuse_prefix(index, &sub.request.prompt, keep);
            let sampler = match TokenSampler::new(
                &sub.request.sampling,
                self.model,
                self.config.n_ctx,
                &sub.request.prompt,
            ) {
                Ok(sampler) => sampler,
                Err(e) => {
                    let _ = sub.events.send(Event::Error(e));
                    continue;
                }
            };
            tracing::debug!(parent: &sub.request.span, slot = index, reused, prompt = sub.request.prompt.len(), "admitted");
            let slot = &mut self.slots[index];
            slot.last_used = self.clock;
            let draft_max = self.config.speculation.draft_max;
            slot.job = Some(Job::new(
                sub.request,
                sub.events,
                sampler,
                reused,
                draft_max,
            ));
        }
    }

    /// How many of the slot's cached tokens `prompt` can reuse. At least one prompt token is
    /// always decoded, since sampling needs its logits.
    fn reusable_prefix(&self, index: usize, prompt: &[TokenId]) -> usize {
        let slot = &self.slots[index];
        let keep = common_prefix(&slot.cache, prompt).min(prompt.len() - 1);
        if keep < slot.cache.len() && keep > 0 {
            // A sliding-window cache only holds the last `window` positions; cutting it back
            // further than that leaves holes, so the prompt is decoded from scratch instead.
            let pos_min = self.ctx.kv_cache_seq_pos_min(slot.seq).max(0) as usize;
            let window = self.config.swa_window as usize;
            if window > 0 && pos_min > keep.saturating_sub(window) {
                return 0;
            }
        }
        keep
    }

    /// Whether a prompt needing `need` more cells fits into slot `index` (keeping `keep` of its
    /// cached tokens) next to the prompts already admitted, each of which keeps room to finish:
    /// so two large prompts never wait on each other forever. Drops other idle caches if needed.
    fn has_room(&mut self, index: usize, keep: usize, need: usize) -> bool {
        let reserved: usize = self
            .slots
            .iter()
            .filter_map(
                |s| match s.job.as_ref().map(|j| (j.state, j.request.prompt.len())) {
                    Some((SlotState::Prompt { next }, len)) => Some(len - next),
                    _ => None,
                },
            )
            .sum();
        let released = self.slots[index].cache.len() - keep;
        let used = self.used_cells() - released + reserved;
        let capacity = self.config.n_ctx as usize;
        if used + need <= capacity {
            return true;
        }
        let idle = self.idle_slots(Some(index));
        let evict = caches_to_evict(&idle, used, need, capacity);
        let freed: usize = evict.iter().map(|&i| self.slots[i].cache.len()).sum();
        if used - freed + need > capacity {
            return false;
        }
        for i in evict {
            let _ = self.ctx.seq_rm(self.slots[i].seq, None, None);
            self.slots[i].cache.clear();
        }
        true
    }

    /// Cuts the slot's cache back to its first `keep` tokens (from `reusable_prefix`).
    /// Returns how many prompt tokens are reused.
    fn reuse_prefix(&mut self, index: usize, prompt: &[TokenId], keep: usize) -> usize {
        let seq = self.slots[index].seq;
        let mut keep = keep.min(prompt.len() - 1);
        if keep < self.slots[index].cache.len() {
            let cut = u32::try_from(keep).ok();
            // Recurrent models cannot drop a tail of their state: start over.
            if keep == 0 || self.ctx.seq_rm(seq, cut, None).is_err() {
                keep = 0;
                let _ = self.ctx.seq_rm(seq, None, None);
            }
        }
        self.slots[index].cache.truncate(keep);
        keep
    }

    /// Idle slots as the scheduler sees them, optionally leaving one out.
    fn idle_slots(&self, except: Option<usize>) -> Vec<IdleSlot<'_>> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(i, s)| s.is_idle() && Some(*i) != except)
            .map(|(index, s)| IdleSlot {
                index,
                cached: &s.cache,
                last_used: s.last_used,
            })
            .collect()
    }

    fn used_cells(&self) -> usize {
        self.slots.iter().map(|s| s.cache.len()).sum()
    }

    /// Makes room for `need` more KV cells by dropping idle slots' caches, oldest first.
    /// Returns how many cells are free afterwards.
    fn make_room(&mut self, need: usize) -> usize {
        let capacity = self.config.n_ctx as usize;
        let used = self.used_cells();
        if used + need > capacity {
            let idle = self.idle_slots(None);
            for index in caches_to_evict(&idle, used, need, capacity) {
                let slot = &mut self.slots[index];
                let _ = self.ctx.seq_rm(slot.seq, None, None);
                slot.cache.clear();
            }
        }
        capacity.saturating_sub(self.used_cells())
    }

    /// One token for every generating slot first (so streams keep flowing), then prompt chunks
    /// in admission order until the batch holds `n_batch` tokens.
    fn fill_batch(&mut self) {
        self.batch.clear();
        let generating = self
            .slots
            .iter()
            .filter(|s| {
                s.job
                    .as_ref()
                    .is_some_and(|j| matches!(j.state, SlotState::Generating { .. }))
            })
            .count();
        // Batch room for guesses, after one token for every generating slot.
        let mut spare = (self.config.n_batch as usize).saturating_sub(generating);
        for i in 0..self.slots.len() {
            let Some(job) = &self.slots[i].job else {
                continue;
            };
            let SlotState::Generating { token } = job.state else {
                continue;
            };
            if self.slots[i].cache.len() >= self.config.n_ctx as usize && !self.shift_context(i) {
                self.finish(i, FinishReason::Length);
                continue;
            }
            if self.make_room(1) == 0 {
                // The shared cache is full of other slots' work: this one ends here.
                self.finish(i, FinishReason::Length);
                continue;
            }
            let slot = &mut self.slots[i];
            let pos = slot.cache.len() as i32;
            let at = self.batch.n_tokens();
            if self
                .batch
                .add(LlamaToken(token), pos, &[slot.seq], true)
                .is_err()
            {
                continue;
            }
            slot.cache.push(token);
            let seq = slot.seq;
            let draft = self.draft(i, spare);
            spare -= draft.len();
            let slot = &mut self.slots[i];
            for (k, &guess) in draft.iter().enumerate() {
                // Capacity was checked: `spare` counts the batch's free entries.
                let _ = self
                    .batch
                    .add(LlamaToken(guess), pos + 1 + k as i32, &[seq], true);
                slot.cache.push(guess);
            }
            if let Some(job) = slot.job.as_mut() {
                job.logits_at = Some(at);
                job.draft = draft;
            }
        }
        let mut order: Vec<usize> = (0..self.slots.len()).collect();
        order.sort_by_key(|&i| self.slots[i].job.as_ref().map(|j| j.prompt_started));
        for i in order {
            let budget =
                (self.config.n_batch as usize).saturating_sub(self.batch.n_tokens() as usize);
            if budget == 0 {
                break;
            }
            let Some(job) = &self.slots[i].job else {
                continue;
            };
            let SlotState::Prompt { next } = job.state else {
                continue;
            };
            let wanted = (job.request.prompt.len() - next).min(budget);
            // A prompt that cannot get cells now waits for other slots to finish.
            let take = wanted.min(self.make_room(wanted));
            if take == 0 {
                continue;
            }
            let slot = &mut self.slots[i];
            let Some(job) = slot.job.as_mut() else {
                continue;
            };
            let last = job.request.prompt.len() - 1;
            for pos in next..next + take {
                let token = job.request.prompt[pos];
                let at = self.batch.n_tokens();
                if self
                    .batch
                    .add(LlamaToken(token), pos as i32, &[slot.seq], pos == last)
                    .is_err()
                {
                    break;
                }
                slot.cache.push(token);
                if pos == last {
                    job.logits_at = Some(at);
                }
            }
            job.state = SlotState::Prompt { next: next + take };
        }
    }

    /// Context shift (opt-in, as in llama-server): drops the older half of a full slot's
    /// context after the first token so generation can go on. Returns false when off.
    fn shift_context(&mut self, i: usize) -> bool {
        if !self.config.context_shift {
            return false;
        }
        let slot = &mut self.slots[i];
        let n_keep = 1usize;
        let n_past = slot.cache.len();
        let n_discard = (n_past - n_keep) / 2;
        let (keep, end) = (n_keep as u32, (n_keep + n_discard) as u32);
        if self.ctx.seq_rm(slot.seq, Some(keep), Some(end)).is_err()
            || self
                .ctx
                .seq_add(
                    slot.seq,
                    Some(end),
                    Some(n_past as u32),
                    -(n_discard as i32),
                )
                .is_err()
        {
            return false;
        }
        slot.cache.drain(n_keep..n_keep + n_discard);
        tracing::info!(slot = slot.seq, discarded = n_discard, "context shift");
        true
    }

    fn decode(&mut self) -> Result<(), DecodeError> {
        match self.ctx.decode(&mut self.batch) {
            // No room in the KV cache despite our accounting (e.g. fragmentation): drop every
            // idle cache and try once more.
            Err(DecodeError::NoKvCacheSlot) => {
                for slot in self.slots.iter_mut().filter(|s| s.is_idle()) {
                    let _ = self.ctx.seq_rm(slot.seq, None, None);
                    slot.cache.clear();
                }
                self.ctx.decode(&mut self.batch)
            }
            other => other,
        }
    }

    /// A failed decode leaves the batch's sequences in an unknown state: clear them and fail
    /// their requests; the other slots and the server go on.
    fn fail_batch(&mut self, e: &DecodeError) {
        tracing::error!(error = %e, "decode failed");
        for slot in &mut self.slots {
            let in_batch = slot.job.as_ref().is_some_and(|j| {
                j.logits_at.is_some() || matches!(j.state, SlotState::Prompt { .. })
            });
            if !in_batch {
                continue;
            }
            let _ = self.ctx.seq_rm(slot.seq, None, None);
            slot.cache.clear();
            if let Some(job) = slot.job.take() {
                let _ = job
                    .events
                    .send(Event::Error(EngineError::Decode(e.to_string())));
            }
        }
    }

    fn finish(&mut self, i: usize, reason: FinishReason) {
        let slot = &mut self.slots[i];
        slot.last_used = self.clock;
        if let Some(job) = slot.job.take() {
            let draft = job.timings.draft;
            self.last_finished = Some((job.finish(reason), draft.acceptance()));
        }
    }
}
