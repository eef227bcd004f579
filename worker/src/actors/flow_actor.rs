//! One flow: a thin shell around `flowwatch_core::live::LiveFlow`.
//!
//! It feeds the flow's records (stored by the supervisor before they arrive) to its
//! `LiveFlow`, evaluates due ticks on its own timer (so silence is
//! evaluated too), and stores every tick and status change. A change of a tick older than the
//! alarm window is a revision: stored, not alarmed.
//!
//! A late record makes the flow *stale*: it must be rebuilt from stored traffic, but storage
//! may already hold records the actor has not been handed yet (the supervisor stores the next
//! batch while the actors take this one). So the actor says so in its reply, evaluates nothing
//! more, and rebuilds when the supervisor sends [`FlowMsg::Rebuild`]: after handing it every
//! record stored, and before storing more.

use std::collections::HashMap;
use std::sync::Arc;

use flowwatch_core::FlowId;
use flowwatch_core::calendar::CountryCalendar;
use flowwatch_core::config::FlowConfig;
use flowwatch_core::detection::Status;
use flowwatch_core::event::{FLAPPING_SETTLED, SILENCE_ENDED};
use flowwatch_core::flapping::Flapping;
use flowwatch_core::live::{Added, LiveFlow, LiveTick, transition_id};
use flowwatch_core::time::{EpochDay, Instant, local_day, local_midnight};
use flowwatch_storage::{Event, Store, StoredTick};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::metrics::METRICS;
use crate::tick_writer::TickWriter;
use crate::{Clock, WorkerSettings};

/// The flow actor.
pub struct FlowActor;

/// What a flow actor starts from.
pub struct FlowArgs {
    /// The flow.
    pub flow: FlowId,
    /// Its effective configuration.
    pub config: FlowConfig,
    /// Its country's calendar.
    pub calendar: Arc<CountryCalendar>,
    /// Where everything is kept.
    pub store: Arc<dyn Store>,
    /// The clock.
    pub clock: Clock,
    /// Worker settings.
    pub settings: Arc<WorkerSettings>,
    /// The local day of the flow's first record.
    pub first_day: EpochDay,
    /// Where alarms (status changes within the alarm window) go.
    pub alarms: broadcast::Sender<Event>,
    /// Where ticks are stored (group commit with the other actors).
    pub ticks: TickWriter,
}

/// The actor's state.
pub struct FlowState {
    args: FlowArgs,
    live: LiveFlow,
    timer: Option<JoinHandle<Result<(), ractor::MessagingErr<FlowMsg>>>>,
    /// When the armed timer fires.
    timer_due: Instant,
    /// Stale: a late record came; ticks from here on are evaluated again by the next rebuild,
    /// and nothing is evaluated until then.
    stale: Option<Instant>,
    /// The trace of the newest records taken (empty when tracing is off): the status changes
    /// they bring are evaluated in it.
    cause: opentelemetry::Context,
    /// Its recent changes, and whether its notifications are held while it flaps.
    flapping: Flapping,
}

/// Messages of a flow actor.
pub enum FlowMsg {
    /// Stored records (time, bytes) to evaluate; replies once they are taken, with the start
    /// of the first tick to evaluate again when the flow is stale (see [`FlowMsg::Rebuild`]).
    Records(Vec<(Instant, u64)>, RpcReplyPort<Option<Instant>>),
    /// Rebuild a stale flow from storage, which now holds exactly the records handed to it.
    Rebuild(RpcReplyPort<()>),
    /// Evaluate the ticks that are due (sent by the actor's own timer).
    Evaluate,
    /// The current status.
    Status(RpcReplyPort<Status>),
    /// New settings or calendar: they take effect from the next tick, on a history rebuilt
    /// from stored traffic (so a new granularity, new holidays or new independent days apply
    /// to the past days the median reads too). Replies when done.
    Reconfigure(FlowConfig, Arc<CountryCalendar>, RpcReplyPort<()>),
}

impl FlowState {
    fn grace(&self) -> i64 {
        self.args.config.grace_seconds as i64
    }

    /// Rebuilds the flow from stored traffic and stores its ticks from `from` on. Where stored
    /// statuses change, the first tick of each run of changed ticks is recorded as a change of
    /// that tick (a revision when it is older than the alarm window).
    async fn rebuild(&mut self, from: Instant) -> Result<(), ActorProcessingErr> {
        self.rebuild_knowing(from, None).await
    }

    /// As [`FlowState::rebuild`], with the stored ticks from `from` on when they were just
    /// read (`known`: a start reads them anyway; one query less per flow).
    async fn rebuild_knowing(
        &mut self,
        from: Instant,
        known: Option<Vec<StoredTick>>,
    ) -> Result<(), ActorProcessingErr> {
        METRICS.rebuilds.add(1);
        let a = &self.args;
        let now = a.clock.now();
        let start = LiveFlow::rebuild_start(&a.config, &a.calendar, a.first_day, from);
        let records = a
            .store
            .read_buckets(
                &a.flow,
                local_midnight(a.calendar.tz(), start),
                Instant::MAX,
            )
            .await?;
        let stored = match known {
            Some(ticks) => ticks,
            None => a.store.read_ticks(&a.flow, from, Instant::MAX).await?,
        };
        let before: HashMap<Instant, Status> = stored
            .into_iter()
            .filter(|t| t.start >= from)
            .map(|t| (t.start, t.status))
            .collect();
        let (live, ticks) = LiveFlow::rebuild(
            a.flow.clone(),
            &a.config,
            a.calendar.clone(),
            a.first_day,
            records.into_iter().map(|b| (b.second, b.bytes)),
            from,
            now,
            self.grace(),
        );
        // One event per run of consecutive ticks whose stored status changed, at its first
        // tick: an import that turns a week of silence-evaluated outages into traffic is one
        // revision, not one per tick (the new timeline's own changes are events of `persist`).
        let mut revised = Vec::new();
        let mut in_run = false;
        for t in &ticks {
            match before.get(&t.start) {
                Some(&old) if old != t.eval.status => {
                    if !in_run {
                        revised.push(self.event(t, old, t.eval.status, now));
                    }
                    in_run = true;
                }
                _ => in_run = false,
            }
        }
        self.live = live;
        self.flapping.forget_from(from);
        self.persist(ticks, now).await?;
        self.emit(revised).await
    }

    /// The event of a change of `tick` from `previous` to `new`, found at `now`.
    fn event(&self, tick: &LiveTick, previous: Status, new: Status, now: Instant) -> Event {
        let a = &self.args;
        Event {
            id: transition_id(&a.flow, tick.start, previous, new),
            flow: a.flow.clone(),
            tick_time: tick.start,
            time: now,
            previous_status: previous,
            new_status: new,
            actual: tick.eval.actual,
            expected: tick.eval.values.map(|v| v.expected),
            difference: tick.eval.values.map(|v| v.difference),
            revision: tick.start < now - a.settings.alarm_window,
            silenced: self.covered(tick.start),
            flapping: false,
            acknowledged: None,
        }
    }

    /// Whether a silence covers the tick starting at `start`.
    fn covered(&self, start: Instant) -> bool {
        let a = &self.args;
        a.settings.silences.covers(&a.flow, start, a.calendar.tz())
    }

    /// The alarm of a flow still not `OK` when its silence ends (SPEC §11): `tick` is the last
    /// one covered (the next starts outside every silence) and leaves the flow in `WARNING`
    /// or `OUTAGE`. It says the change from the status the flow had before the silence, the
    /// one subscribers last heard; none when that was the same status already. Stored like
    /// any change (its id is stable, so a rebuild or a second owner adds it once).
    async fn silence_ended(
        &self,
        tick: &LiveTick,
        now: Instant,
    ) -> Result<Option<Event>, ActorProcessingErr> {
        let a = &self.args;
        let status = tick.eval.status;
        let alarm_window = now - a.settings.alarm_window;
        if !status.is_alarm()
            || tick.start < alarm_window
            || !self.covered(tick.start)
            || self.covered(tick.end)
        {
            return Ok(None);
        }
        let before = a
            .store
            .read_ticks(&a.flow, alarm_window.min(tick.start), tick.start)
            .await?;
        let heard = (before.iter().rev())
            .find(|t| !self.covered(t.start))
            .map_or(Status::NotAvailable, |t| t.status);
        if heard == status {
            return Ok(None);
        }
        let mut event = self.event(tick, heard, status, now);
        event.id = format!("{}{SILENCE_ENDED}", event.id);
        event.silenced = false;
        Ok(Some(event))
    }

    /// Stores events (a repeated id is kept once) and alarms those within the alarm window and
    /// outside every silence.
    async fn emit(&self, events: Vec<Event>) -> Result<(), ActorProcessingErr> {
        if events.is_empty() {
            return Ok(());
        }
        // The status changes go on in the trace of the records that brought them, to the alarm
        // the relay publishes.
        if flowwatch_proto::trace::is_traced(&self.cause) {
            let span = tracing::info_span!("worker.evaluate", flow = %self.args.flow);
            flowwatch_proto::trace::set_parent(&span, self.cause.clone());
            let cx = flowwatch_proto::trace::context(&span);
            for e in events.iter().filter(|e| e.alarmed()) {
                crate::alarms::remember_cause(&e.id, cx.clone());
            }
        }
        self.args.store.append_events(events.clone()).await?;
        METRICS.events.add(events.len() as u64);
        for e in events.into_iter().filter(Event::alarmed) {
            // Nobody listening is fine: the events are stored.
            let _ = self.args.alarms.send(e);
        }
        Ok(())
    }

    /// Evaluates what is due and stores it.
    async fn evaluate(&mut self) -> Result<(), ActorProcessingErr> {
        let now = self.args.clock.now();
        let ticks = self.live.advance(now, self.grace());
        self.persist(ticks, now).await
    }

    /// Stores ticks and their status changes; alarms those within the alarm window.
    async fn persist(
        &mut self,
        ticks: Vec<LiveTick>,
        now: Instant,
    ) -> Result<(), ActorProcessingErr> {
        if ticks.is_empty() {
            return Ok(());
        }
        let a = &self.args;
        let stored: Vec<StoredTick> = ticks
            .iter()
            .map(|t| StoredTick {
                flow: a.flow.clone(),
                start: t.start,
                end: t.end,
                actual: t.eval.actual,
                status: t.eval.status,
                values: t.eval.values,
                evaluated_at: now,
                epoch: a.settings.epoch.get(),
            })
            .collect();
        a.ticks.write(stored).await?;
        METRICS.ticks.add(ticks.len() as u64);
        METRICS.last_evaluation.set(now);
        let mut events = Vec::new();
        let limit = a.config.flapping_changes;
        for t in &ticks {
            let before = events.len();
            let live = t.start >= now - a.settings.alarm_window;
            if let Some(tr) = &t.transition {
                let mut e = self.event(t, tr.previous, tr.new, now);
                e.flapping = live && self.flapping.change(t.start, limit);
                events.push(e);
            }
            if live && let Some(heard) = self.flapping.settle(t.start, t.eval.status, limit) {
                // Settled in another status than the one last sent: one summary.
                let mut e = self.event(t, heard, t.eval.status, now);
                e.id = format!("{}{FLAPPING_SETTLED}", e.id);
                events.push(e);
            }
            events.extend(self.silence_ended(t, now).await?);
            // The last change of this tick that goes out is what subscribers hear.
            if let Some(e) = events[before..].iter().rev().find(|e| e.alarmed()) {
                self.flapping.sent(e.new_status);
            }
        }
        self.emit(events).await
    }

    /// Arms the timer for the next due tick (keeping an armed one that is already right).
    fn schedule(&mut self, myself: &ActorRef<FlowMsg>) {
        let due = self.live.next_due(self.grace());
        if self.timer_due == due && self.timer.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        if let Some(t) = self.timer.take() {
            t.abort();
        }
        self.timer_due = due;
        let wait = self.args.clock.until(due);
        self.timer = Some(ractor::time::send_after(wait, myself.get_cell(), || {
            FlowMsg::Evaluate
        }));
    }

    /// Takes records; returns where a rebuild must start if the flow is stale.
    async fn records(
        &mut self,
        records: Vec<(Instant, u64)>,
    ) -> Result<Option<Instant>, ActorProcessingErr> {
        let tz = self.args.calendar.tz();
        for (t, bytes) in records {
            let from = match self.live.add(t, bytes) {
                Added::Pending => continue,
                Added::Late { tick_start } => tick_start,
                Added::BeforeFirstDay => {
                    self.args.first_day = self.args.first_day.min(local_day(tz, t));
                    local_midnight(tz, self.args.first_day)
                }
            };
            self.stale = Some(self.stale.map_or(from, |s| s.min(from)));
        }
        if self.stale.is_none() {
            self.evaluate().await?;
        }
        Ok(self.stale)
    }
}

impl Actor for FlowActor {
    type Msg = FlowMsg;
    type State = FlowState;
    type Arguments = FlowArgs;

    /// Rebuilds from storage and catches up every tick due since the last stored one (a
    /// restart, or a flow moved to this worker, skips no tick).
    async fn pre_start(
        &self,
        myself: ActorRef<FlowMsg>,
        args: FlowArgs,
    ) -> Result<FlowState, ActorProcessingErr> {
        let tz = args.calendar.tz();
        let now = args.clock.now();
        let first_start = local_midnight(tz, args.first_day);
        let window = local_midnight(
            tz,
            LiveFlow::rebuild_start(&args.config, &args.calendar, args.first_day, now),
        );
        let stored = args
            .store
            .read_ticks(&args.flow, window, Instant::MAX)
            .await?;
        let from = stored.last().map_or(first_start, |t| t.end);
        // Every stored tick from `from` on is among those read when `from` is in the window.
        let known = (from >= window).then_some(stored);
        let live = LiveFlow::new(
            args.flow.clone(),
            &args.config,
            args.calendar.clone(),
            args.first_day,
            args.first_day,
        );
        let mut state = FlowState {
            args,
            live,
            timer: None,
            timer_due: Instant::MIN,
            stale: None,
            cause: opentelemetry::Context::new(),
            flapping: Flapping::default(),
        };
        state.rebuild_knowing(from, known).await?;
        state.schedule(&myself);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<FlowMsg>,
        msg: FlowMsg,
        state: &mut FlowState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            FlowMsg::Records(records, reply) => {
                // Handled in the span of the ingest that brought them (ractor carries it).
                let cx = flowwatch_proto::trace::context(&tracing::Span::current());
                if flowwatch_proto::trace::is_traced(&cx) {
                    state.cause = cx;
                }
                // On failure the actor stops and is restarted from storage, where these
                // records already are.
                let stale = state.records(records).await?;
                let _ = reply.send(stale);
            }
            FlowMsg::Rebuild(reply) => {
                let done = match state.stale.take() {
                    Some(from) => match state.rebuild(from).await {
                        Ok(()) => state.evaluate().await,
                        failed => failed,
                    },
                    None => Ok(()),
                };
                let _ = reply.send(());
                done?;
            }
            // A stale flow's ticks wait for its rebuild, which evaluates up to now.
            FlowMsg::Evaluate if state.stale.is_some() => {}
            FlowMsg::Evaluate => state.evaluate().await?,
            FlowMsg::Status(reply) => {
                let _ = reply.send(state.live.status());
            }
            FlowMsg::Reconfigure(config, calendar, reply) => {
                // Sent when storage holds what the actor was handed: a stale flow is rebuilt
                // from its first late tick (before the watermark).
                let from = state.stale.take().unwrap_or(state.live.watermark());
                state.args.config = config;
                state.args.calendar = calendar;
                let done = state.rebuild(from).await;
                let _ = reply.send(());
                done?;
            }
        }
        state.schedule(&myself);
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<FlowMsg>,
        state: &mut FlowState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.timer.take() {
            t.abort();
        }
        Ok(())
    }
}
