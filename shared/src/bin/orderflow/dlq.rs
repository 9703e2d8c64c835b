//! `orderflow dlq`: list, show, replay and purge the dead-letter queues (the library's
//! [`orderflow::dlq`] does the work; this is arguments and printing).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use orderflow::dlq::{DeadLetterMessage, DeadLetterQueue, Dlq, ReplayOptions, Selection};

/// What to do with the DLQs.
#[derive(Debug, Subcommand)]
pub(crate) enum DlqCommand {
    /// Per DLQ: depth, oldest message's age and a count by errorKind; nothing is taken off.
    List {
        #[command(flatten)]
        queues: Queues,
        /// Each message too: event, ids, errorKind, errorMessage, receive count, when.
        #[arg(long)]
        messages: bool,
        /// JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The message carrying event `event_id`: body, attributes and the decoded event.
    Show {
        /// The event's id (`eventId`).
        event_id: String,
        #[command(flatten)]
        queues: Queues,
    },
    /// Move messages back to the queue they came from, once their cause is fixed.
    Replay {
        /// The DLQ (name, URL or ARN).
        #[arg(long)]
        queue: String,
        /// Only the messages of these events (repeatable).
        #[arg(long = "event-id", conflicts_with_all = ["error_kind", "all"])]
        event_ids: Vec<String>,
        /// Only the messages dead-lettered with this errorKind.
        #[arg(long, conflicts_with = "all")]
        error_kind: Option<String>,
        /// Every message.
        #[arg(long)]
        all: bool,
        /// Say what would move; move nothing.
        #[arg(long)]
        dry_run: bool,
        /// At most this many messages a second.
        #[arg(long)]
        rate: Option<f64>,
        /// Seconds each message is held invisible while the replay has it (messages not taken
        /// are made visible again at the end, or after this if the replay dies).
        #[arg(long, default_value_t = 120)]
        hold_seconds: u64,
    },
    /// Remove every message of a DLQ, after you type its name (or with --yes).
    Purge {
        /// The DLQ (name, URL or ARN).
        #[arg(long)]
        queue: String,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
}

/// Which DLQs: a stack's, or named ones.
#[derive(Debug, Args)]
pub(crate) struct Queues {
    /// Every DLQ of the stack NAME (its queues are named `NAME-…`).
    #[arg(long, required_unless_present = "queue")]
    stack: Option<String>,
    /// This DLQ (name, URL or ARN; repeatable).
    #[arg(long)]
    queue: Vec<String>,
}

impl Queues {
    async fn find(&self, dlq: &Dlq) -> anyhow::Result<Vec<DeadLetterQueue>> {
        let mut found = Vec::new();
        if let Some(stack) = &self.stack {
            // `<stack>-`: not another stack whose name starts with this one's.
            found = dlq.discover(&format!("{stack}-")).await?;
            if found.is_empty() {
                bail!(
                    "no dead-letter queue named {stack}-…: is the stack name right, and the endpoint?"
                );
            }
        }
        for queue in &self.queue {
            found.push(dlq.dead_letter_queue(queue).await?);
        }
        Ok(found)
    }
}

/// Runs `command`.
pub(crate) async fn run(command: DlqCommand) -> anyhow::Result<ExitCode> {
    let config = orderflow::aws::sdk_config().await;
    let dlq = Dlq::new(aws_sdk_sqs::Client::new(&config));
    let mut out = std::io::stdout().lock();
    match command {
        DlqCommand::List {
            queues,
            messages,
            json,
        } => {
            let mut listed = Vec::new();
            for queue in queues.find(&dlq).await? {
                let (visible, in_flight) = dlq.depth(&queue.queue).await?;
                let peeked = dlq.peek(&queue.queue, visible as usize + 10).await?;
                if (peeked.len() as u64) < visible {
                    eprintln!(
                        "{}: read {} of about {visible} (messages in flight elsewhere, or FIFO groups behind one, stay hidden)",
                        queue.queue.name,
                        peeked.len()
                    );
                }
                listed.push((queue, visible, in_flight, peeked));
            }
            if json {
                let value: Vec<serde_json::Value> = listed
                    .iter()
                    .map(|(queue, visible, in_flight, peeked)| {
                        Ok(serde_json::json!({
                            "queue": queue.queue.name,
                            "url": queue.queue.url,
                            "sources": queue.sources.iter().map(|s| &s.name).collect::<Vec<_>>(),
                            "depth": visible,
                            "inFlight": in_flight,
                            "oldestAgeSeconds": oldest_age(peeked),
                            "byErrorKind": by_kind(peeked),
                            "messages": if messages { serde_json::to_value(peeked)? } else { serde_json::Value::Null },
                        }))
                    })
                    .collect::<Result<_, serde_json::Error>>()?;
                writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
                return Ok(ExitCode::SUCCESS);
            }
            for (queue, visible, in_flight, peeked) in &listed {
                let kinds: Vec<String> = by_kind(peeked)
                    .iter()
                    .map(|(kind, n)| format!("{n} {kind}"))
                    .collect();
                let oldest = oldest_age(peeked)
                    .map(|s| format!("oldest {}", human(s)))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{:<48} {visible:>5} messages{} {oldest:<14} {}",
                    queue.queue.name,
                    if *in_flight > 0 {
                        format!(" (+{in_flight} in flight)")
                    } else {
                        String::new()
                    },
                    kinds.join(", ")
                )?;
                if messages {
                    for message in peeked {
                        writeln!(out, "    {}", describe(message))?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DlqCommand::Show { event_id, queues } => {
            for queue in queues.find(&dlq).await? {
                let (visible, _) = dlq.depth(&queue.queue).await?;
                let peeked = dlq.peek(&queue.queue, visible as usize + 10).await?;
                if let Some(message) = peeked
                    .iter()
                    .find(|m| m.event.as_ref().is_some_and(|e| e.event_id == event_id))
                {
                    writeln!(out, "queue: {}", queue.queue.name)?;
                    writeln!(out, "{}", serde_json::to_string_pretty(message)?)?;
                    let decoded = orderflow::sns::message_body(&message.body)
                        .message()
                        .map(|m| orderflow::Event::decode(m.as_bytes()));
                    match decoded {
                        Some(Ok(event)) => writeln!(
                            out,
                            "decoded event:\n{}",
                            serde_json::to_string_pretty(&event)?
                        )?,
                        Some(Err(err)) => writeln!(out, "the body does not decode: {err}")?,
                        None => writeln!(out, "the body holds no event")?,
                    }
                    return Ok(ExitCode::SUCCESS);
                }
            }
            bail!("no message of event {event_id} in those dead-letter queues")
        }
        DlqCommand::Replay {
            queue,
            event_ids,
            error_kind,
            all,
            dry_run,
            rate,
            hold_seconds,
        } => {
            let selection = match (event_ids.is_empty(), error_kind, all) {
                (false, _, _) => Selection::EventIds(event_ids),
                (true, Some(kind), _) => Selection::ErrorKind(kind),
                (true, None, true) => Selection::All,
                (true, None, false) => {
                    bail!("say which messages: --event-id ID, --error-kind KIND or --all")
                }
            };
            let target = dlq.dead_letter_queue(&queue).await?;
            let (visible, in_flight) = dlq.depth(&target.queue).await?;
            if in_flight > 0 {
                eprintln!(
                    "{in_flight} message(s) of {} are in flight (someone is reading them): not replayed now",
                    target.queue.name
                );
            }
            let bar = indicatif::ProgressBar::new(visible);
            let options = ReplayOptions {
                dry_run,
                rate,
                hold: std::time::Duration::from_secs(hold_seconds.max(1)),
            };
            let report = dlq
                .replay(&target, &selection, &options, |_| bar.inc(1))
                .await
                .with_context(|| format!("replaying {}", target.queue.name))?;
            bar.finish_and_clear();
            if let Some((moved, to_move, destination)) = &report.by_move_task {
                let counted = to_move.map(|n| format!(" of {n}")).unwrap_or_default();
                writeln!(
                    out,
                    "moved {moved}{counted} by an SQS message move task to {}",
                    destination.name
                )?;
                let (left, _) = dlq.depth(&target.queue).await?;
                if left > 0 {
                    eprintln!("{left} message(s) are still in {}", target.queue.name);
                    return Ok(ExitCode::FAILURE);
                }
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(why) = &report.move_task_refused {
                eprintln!("SQS's message move task was refused ({why}); moved one by one");
            }
            let verb = if dry_run { "would move" } else { "moved" };
            for (message, source) in &report.moved {
                writeln!(out, "{verb} {} -> {}", describe(message), source.name)?;
            }
            for (message, why) in &report.failed {
                writeln!(out, "NOT moved {}: {why}", describe(message))?;
            }
            writeln!(
                out,
                "{verb} {}, skipped {} (not selected), failed {}",
                report.moved.len(),
                report.skipped,
                report.failed.len()
            )?;
            if let Some(why) = &report.stopped {
                eprintln!("stopped before the end of the queue: {why}");
            }
            Ok(if report.failed.is_empty() && report.stopped.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        DlqCommand::Purge { queue, yes } => {
            let target = dlq.dead_letter_queue(&queue).await?;
            if !yes {
                eprint!(
                    "This deletes every message in {}. Type its name to go on: ",
                    target.queue.name
                );
                let mut typed = String::new();
                std::io::stdin().lock().read_line(&mut typed)?;
                if typed.trim() != target.queue.name {
                    bail!("not purged: the name typed was not {}", target.queue.name);
                }
            }
            let removed = dlq
                .purge(&target.queue, std::time::Duration::from_secs(120))
                .await?;
            for message in &removed {
                writeln!(out, "removed {}", describe(message))?;
            }
            writeln!(out, "removed {} from {}", removed.len(), target.queue.name)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Messages by errorKind.
fn by_kind(messages: &[DeadLetterMessage]) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for message in messages {
        *kinds.entry(message.kind_label().to_owned()).or_default() += 1;
    }
    kinds
}

/// The oldest message's age in seconds.
fn oldest_age(messages: &[DeadLetterMessage]) -> Option<i64> {
    let now = chrono::Utc::now();
    messages
        .iter()
        .filter_map(|m| m.dead_lettered_at)
        .min()
        .map(|t| (now - t).num_seconds().max(0))
}

/// An age as an operator reads it.
fn human(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// One line about a message.
fn describe(message: &DeadLetterMessage) -> String {
    let event = message
        .event
        .as_ref()
        .map(|e| {
            format!(
                "{} {} (correlation {})",
                e.event_type,
                e.event_id,
                e.correlation_id.as_deref().unwrap_or("-")
            )
        })
        .unwrap_or_else(|| "(unreadable body)".into());
    let when = message
        .dead_lettered_at
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default();
    format!(
        "{event} {} after {} receive(s), {when}: {}",
        message.kind_label(),
        message.receive_count.map_or("?".into(), |n| n.to_string()),
        message.error_message.as_deref().unwrap_or("")
    )
}
