//! The pools' `tracing` spans (issue 11: "`tracing` spans for submit, start, finish, worker
//! death and respawn"), seen by a subscriber installed for this whole test binary: a task is a
//! `procs.pool.task` span made where it was submitted, its start and finish are events inside
//! it, and a thread task's own events are inside it too.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Mutex, MutexGuard, OnceLock};

use proc_pool::{ProcessPoolExecutor, ThreadPoolExecutor};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// A span as the subscriber saw it made.
#[derive(Debug, Clone)]
struct SpanSeen {
    name: &'static str,
    parent: Option<u64>,
    fields: HashMap<String, String>,
}

/// An event: its message, its other fields and the span it happened in.
#[derive(Debug, Clone)]
struct EventSeen {
    message: String,
    fields: HashMap<String, String>,
    span: Option<u64>,
}

#[derive(Default)]
struct Seen {
    next: u64,
    spans: HashMap<u64, SpanSeen>,
    events: Vec<EventSeen>,
    /// Each thread's stack of entered spans.
    stacks: HashMap<std::thread::ThreadId, Vec<u64>>,
}

/// Records every span and event; one for the whole binary (pool threads log too).
struct Recorder(Mutex<Seen>);

impl Recorder {
    fn seen(&self) -> MutexGuard<'_, Seen> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current(&self) -> Option<u64> {
        let seen = self.seen();
        seen.stacks
            .get(&std::thread::current().id())
            .and_then(|stack| stack.last().copied())
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    others: HashMap<String, String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        } else {
            self.others
                .insert(field.name().to_string(), format!("{value:?}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.others
            .insert(field.name().to_string(), value.to_string());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let parent = match attrs.parent() {
            Some(id) => Some(id.into_u64()),
            None if attrs.is_contextual() => self.current(),
            None => None,
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let mut seen = self.seen();
        seen.next += 1;
        let id = seen.next;
        seen.spans.insert(
            id,
            SpanSeen {
                name: attrs.metadata().name(),
                parent,
                fields: fields.others,
            },
        );
        Id::from_u64(id)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let span = match event.parent() {
            Some(id) => Some(id.into_u64()),
            None if event.is_contextual() => self.current(),
            None => None,
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.seen().events.push(EventSeen {
            message: fields.message.unwrap_or_default(),
            fields: fields.others,
            span,
        });
    }

    fn enter(&self, span: &Id) {
        let mut seen = self.seen();
        seen.stacks
            .entry(std::thread::current().id())
            .or_default()
            .push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut seen = self.seen();
        let stack = seen.stacks.entry(std::thread::current().id()).or_default();
        if let Some(at) = stack.iter().rposition(|&s| s == span.into_u64()) {
            stack.remove(at);
        }
    }
}

fn recorder() -> &'static Recorder {
    static RECORDER: OnceLock<&'static Recorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder: &'static Recorder = Box::leak(Box::new(Recorder(Mutex::default())));
        tracing::subscriber::set_global_default(Forward(recorder)).unwrap();
        recorder
    })
}

/// The global subscriber: forwards to the leaked recorder that the tests read.
struct Forward(&'static Recorder);

impl Subscriber for Forward {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        self.0.new_span(attrs)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        self.0.record(span, values)
    }
    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.0.record_follows_from(span, follows)
    }
    fn event(&self, event: &Event<'_>) {
        self.0.event(event)
    }
    fn enter(&self, span: &Id) {
        self.0.enter(span)
    }
    fn exit(&self, span: &Id) {
        self.0.exit(span)
    }
}

/// The messages of the events inside span `id`, in order.
fn messages_in(seen: &Seen, id: u64) -> Vec<String> {
    seen.events
        .iter()
        .filter(|e| e.span == Some(id))
        .map(|e| e.message.clone())
        .collect()
}

/// The ids of the spans named `name` whose parent is `parent`.
fn spans_named(seen: &Seen, name: &str, parent: Option<u64>) -> Vec<u64> {
    let mut ids: Vec<u64> = seen
        .spans
        .iter()
        .filter(|(_, s)| s.name == name && s.parent == parent)
        .map(|(&id, _)| id)
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn a_thread_task_is_a_span_of_its_submitter_holding_its_own_events() {
    let recorder = recorder();
    let executor = ThreadPoolExecutor::new(2).unwrap();
    let outer = tracing::info_span!("caller");
    let outer_id = outer.id().unwrap().into_u64();
    let futures: Vec<_> = outer.in_scope(|| {
        (0..3u64)
            .map(|i| {
                executor
                    .submit(
                        |i: u64| {
                            tracing::info!(item = i, "inside the task");
                            i * 2
                        },
                        i,
                    )
                    .unwrap()
            })
            .collect()
    });
    let values: Vec<u64> = futures.iter().map(|f| f.result().unwrap()).collect();
    assert_eq!(values, [0, 2, 4]);
    executor.shutdown(true, false);

    let seen = recorder.seen();
    let tasks = spans_named(&seen, "procs.pool.task", Some(outer_id));
    assert_eq!(
        tasks.len(),
        3,
        "one task span per submit, inside the caller's span"
    );
    let mut items = Vec::new();
    for task in tasks {
        assert_eq!(seen.spans[&task].fields["pool"], "thread");
        let messages = messages_in(&seen, task);
        assert_eq!(
            messages,
            [
                "procs.pool.submit",
                "procs.pool.task.start",
                "inside the task",
                "procs.pool.task.finish"
            ],
            "task span {task}"
        );
        let inside = seen
            .events
            .iter()
            .find(|e| e.span == Some(task) && e.message == "inside the task")
            .unwrap();
        items.push(inside.fields["item"].clone());
    }
    items.sort();
    assert_eq!(items, ["0", "1", "2"]);
}

fn double(i: u64) -> u64 {
    i * 2
}

fn die((): ()) -> u64 {
    std::process::abort()
}

/// The messages of every event in spans named `name`, with the span's fields.
fn worker_events(seen: &Seen) -> Vec<(u64, String)> {
    let mut events: Vec<(u64, String)> = seen
        .events
        .iter()
        .filter_map(|e| {
            let span = e.span?;
            (seen.spans.get(&span)?.name == "procs.pool.worker").then(|| (span, e.message.clone()))
        })
        .collect();
    events.sort();
    events
}

// A process task is a span of its submitter with its submit, start and finish events (the
// manager thread records them there); a worker is a span for its life: its start, its death
// (and the task it held fails in that task's span), and its replacement's respawn.
#[test]
fn a_process_task_is_a_span_and_a_dead_worker_ends_its_own_span() {
    let recorder = recorder();
    let executor = ProcessPoolExecutor::new(1).unwrap();
    let outer = tracing::info_span!("process caller");
    let outer_id = outer.id().unwrap().into_u64();
    let futures: Vec<_> = outer.in_scope(|| {
        (0..3u64)
            .map(|i| executor.submit(double, i).unwrap())
            .collect()
    });
    let values: Vec<u64> = futures.iter().map(|f| f.result().unwrap()).collect();
    assert_eq!(values, [0, 2, 4]);
    let doomed = outer.in_scope(|| executor.submit(die, ()).unwrap());
    let error = doomed.result().unwrap_err();
    assert!(
        matches!(error, proc_pool::core::Error::WorkerDied { .. }),
        "{error:?}"
    );
    // The replacement serves the next task.
    assert_eq!(executor.submit(double, 21).unwrap().result().unwrap(), 42);
    executor.shutdown(true, false);

    let seen = recorder.seen();
    let tasks = spans_named(&seen, "procs.pool.task", Some(outer_id));
    assert_eq!(
        tasks.len(),
        4,
        "one span per submitted task, inside the caller's span"
    );
    let mut finished = 0;
    let mut failed = 0;
    for &task in &tasks {
        assert_eq!(seen.spans[&task].fields["pool"], "process");
        let messages = messages_in(&seen, task);
        assert_eq!(
            messages[..2],
            ["procs.pool.submit", "procs.pool.task.start"],
            "span {task}"
        );
        match &messages[2..] {
            [end] if end == "procs.pool.task.finish" => finished += 1,
            [end] if end == "procs.pool.task.failed" => failed += 1,
            other => panic!("task span {task} ends with {other:?}"),
        }
    }
    assert_eq!((finished, failed), (3, 1));

    let workers = worker_events(&seen);
    let started: Vec<u64> = workers
        .iter()
        .filter(|(_, m)| m == "procs.pool.worker.start")
        .map(|&(span, _)| span)
        .collect();
    let died: Vec<u64> = workers
        .iter()
        .filter(|(_, m)| m == "procs.pool.worker.death")
        .map(|&(span, _)| span)
        .collect();
    let respawned: Vec<u64> = workers
        .iter()
        .filter(|(_, m)| m == "procs.pool.worker.respawn")
        .map(|&(span, _)| span)
        .collect();
    assert!(
        started.len() >= 2,
        "the first worker and its replacement: {workers:?}"
    );
    assert_eq!(died.len(), 1, "{workers:?}");
    assert!(
        started.contains(&died[0]),
        "the death is in the dead worker's own span"
    );
    assert_eq!(respawned.len(), 1, "{workers:?}");
    assert_ne!(
        respawned[0], died[0],
        "the respawn is in the new worker's span"
    );
    assert!(started.contains(&respawned[0]));
    assert!(seen.spans[&died[0]].fields.contains_key("pid"));
}
