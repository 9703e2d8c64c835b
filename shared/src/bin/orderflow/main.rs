//! `orderflow`: publish events to the orderflow SNS topic, validate them, print schemas and
//! examples; operate the dead-letter queues and the outbox. For other systems and for
//! operators.

mod dlq;
mod input;
mod outbox;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use orderflow::event::{EventType, examples, schema};
use orderflow::publish::Publisher;

/// Publish and check orderflow events.
#[derive(Debug, Parser)]
#[command(name = "orderflow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate events and publish them to an SNS topic; prints "<eventId> <messageId>" per event.
    ///
    /// Reads one event or a JSON array of events from --file or standard input. Nothing is
    /// published unless every event is valid.
    Publish {
        /// The topic to publish to (a `.fifo` ARN publishes FIFO).
        #[arg(long, env = "ORDERFLOW_TOPIC_ARN", required_unless_present = "example")]
        topic_arn: Option<String>,
        /// Read events from this file instead of standard input.
        #[arg(long, conflicts_with = "example")]
        file: Option<PathBuf>,
        /// Print a valid example event of this type (e.g. `order-placed`) and exit.
        #[arg(long, value_parser = parse_event_type, conflicts_with = "topic_arn")]
        example: Option<EventType>,
    },
    /// Validate events without publishing them; prints "<eventId> ok" per event.
    Validate {
        /// Read events from this file instead of standard input.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Operate the dead-letter queues: list, show, replay, purge.
    Dlq {
        #[command(subcommand)]
        command: dlq::DlqCommand,
    },
    /// The transactional outbox: rows still PENDING, and publishing them again.
    Outbox {
        #[command(subcommand)]
        command: outbox::OutboxCommand,
    },
    /// Print the JSON Schema of an event type (e.g. `order-placed`).
    Schema {
        /// The event type, as `OrderPlaced` or `order-placed`.
        #[arg(value_parser = parse_event_type)]
        event_type: EventType,
        /// The version; the current one if absent.
        #[arg(long)]
        version: Option<u32>,
    },
}

fn parse_event_type(name: &str) -> Result<EventType, String> {
    EventType::from_any_name(name).ok_or_else(|| {
        let known: Vec<&str> = EventType::all().map(EventType::kebab_name).collect();
        format!("unknown event type `{name}`; known: {}", known.join(", "))
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    orderflow::telemetry::init("warn");
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Publish {
            example: Some(event_type),
            ..
        } => {
            let example = serde_json::to_string_pretty(&examples::example(event_type))?;
            writeln!(stdout, "{example}")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Publish {
            topic_arn, file, ..
        } => {
            let topic_arn = topic_arn.context("--topic-arn is required")?;
            let events = input::read_events(file.as_deref())?;
            let config = orderflow::aws::sdk_config().await;
            let publisher = Publisher::new(aws_sdk_sns::Client::new(&config), topic_arn);
            let mut failed = 0;
            if let [event] = events.as_slice() {
                match publisher.publish(event).await {
                    Ok(published) => {
                        writeln!(stdout, "{} {}", published.event_id, published.message_id)?
                    }
                    Err(err) => {
                        failed += 1;
                        eprintln!("error: {err}");
                    }
                }
            } else {
                let report = publisher.publish_batch(&events).await;
                for result in &report.results {
                    match result {
                        Ok(published) => {
                            writeln!(stdout, "{} {}", published.event_id, published.message_id)?
                        }
                        Err(err) => {
                            failed += 1;
                            eprintln!("error: {err}");
                        }
                    }
                }
            }
            if failed > 0 {
                eprintln!("{failed} of {} event(s) were not published", events.len());
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dlq { command } => dlq::run(command).await,
        Command::Outbox { command } => outbox::run(command).await,
        Command::Validate { file } => {
            for event in input::read_events(file.as_deref())? {
                writeln!(stdout, "{} ok", event.event_id)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema {
            event_type,
            version,
        } => {
            let version = version.unwrap_or(event_type.current_version());
            let text = schema::schema(event_type, version).with_context(|| {
                let known = event_type.known_versions();
                format!(
                    "{event_type} has no version {version}; known: {}..={}",
                    known.start(),
                    known.end()
                )
            })?;
            write!(stdout, "{text}")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
