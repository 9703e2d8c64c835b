//! `orderflow outbox`: the outbox rows still `PENDING`, and publishing them again (the
//! library's [`orderflow::outbox::DynamoOutboxStore`] does the work).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use orderflow::outbox::{DynamoOutboxStore, PendingRow};
use orderflow::publish::Publisher;

/// What to do with the outbox.
#[derive(Debug, Subcommand)]
pub(crate) enum OutboxCommand {
    /// List the rows still PENDING: not published yet, or set aside by the relay.
    Pending {
        #[command(flatten)]
        rows: Rows,
        /// JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Publish PENDING rows again, unchanged (their original event ids: consumers skip what
    /// they already did), and mark them SENT.
    Republish {
        #[command(flatten)]
        rows: Rows,
        /// The topic to publish to.
        #[arg(long, env = "ORDERFLOW_TOPIC_ARN")]
        topic_arn: String,
        /// Say what would be published; publish nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which rows.
#[derive(Debug, Args)]
pub(crate) struct Rows {
    /// The table holding the outbox (the stack's orders table).
    #[arg(long, env = "ORDERFLOW_ORDERS_TABLE")]
    table: String,
    /// Only rows whose event is older than this (`30s`, `10m`, `2h`, `1d`).
    #[arg(long, value_parser = parse_age)]
    older_than: Option<Duration>,
    /// Only the rows of these events (repeatable).
    #[arg(long = "event-id")]
    event_ids: Vec<String>,
    /// Every row (republish asks for a selection: a row written a moment ago is the relay's).
    #[arg(long, conflicts_with_all = ["older_than", "event_ids"])]
    all: bool,
}

impl Rows {
    async fn find(&self, store: &DynamoOutboxStore) -> anyhow::Result<Vec<PendingRow>> {
        let now = chrono::Utc::now();
        let rows = store.pending().await?;
        Ok(rows
            .into_iter()
            .filter(|r| {
                self.event_ids.is_empty()
                    || self
                        .event_ids
                        .iter()
                        .any(|id| *id == r.row.event.event_id.to_string())
            })
            .filter(|r| match (self.older_than, r.occurred_at) {
                (None, _) => true,
                (Some(age), Some(at)) => (now - at).to_std().is_ok_and(|a| a >= age),
                (Some(_), None) => false,
            })
            .collect())
    }
}

/// `30s`, `10m`, `2h`, `1d`.
fn parse_age(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s, 10m, 2h or 1d"))?;
    let seconds = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    Ok(Duration::from_secs(n * seconds))
}

/// One line about a row.
fn describe(row: &PendingRow) -> String {
    format!(
        "{} {} {} occurred {} attempts {}{}",
        row.row.event.event_type,
        row.row.event.event_id,
        row.row.pk,
        row.occurred_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "?".into()),
        row.attempts,
        row.last_error
            .as_deref()
            .map(|e| format!(", last error: {e}"))
            .unwrap_or_default()
    )
}

/// Runs `command`.
pub(crate) async fn run(command: OutboxCommand) -> anyhow::Result<ExitCode> {
    let config = orderflow::aws::sdk_config().await;
    let mut out = std::io::stdout().lock();
    match command {
        OutboxCommand::Pending { rows, json } => {
            let store = DynamoOutboxStore::new(aws_sdk_dynamodb::Client::new(&config), &rows.table);
            let pending = rows.find(&store).await?;
            if json {
                let value: Vec<serde_json::Value> = pending
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "pk": r.row.pk, "sk": r.row.sk,
                            "eventId": r.row.event.event_id, "eventType": r.row.event.event_type,
                            "occurredAt": r.occurred_at, "attempts": r.attempts, "lastError": r.last_error,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            } else {
                for row in &pending {
                    writeln!(out, "{}", describe(row))?;
                }
                writeln!(out, "{} pending in {}", pending.len(), rows.table)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Republish {
            rows,
            topic_arn,
            dry_run,
        } => {
            if !rows.all && rows.older_than.is_none() && rows.event_ids.is_empty() {
                bail!(
                    "say which rows: --older-than DURATION (rows the relay has had time for), --event-id ID, or --all"
                );
            }
            let store = DynamoOutboxStore::new(aws_sdk_dynamodb::Client::new(&config), &rows.table);
            let pending = rows.find(&store).await?;
            if dry_run {
                for row in &pending {
                    writeln!(out, "would publish {}", describe(row))?;
                }
                writeln!(out, "would publish {}", pending.len())?;
                return Ok(ExitCode::SUCCESS);
            }
            let publisher = Publisher::new(aws_sdk_sns::Client::new(&config), topic_arn);
            let results = store.republish(&publisher, &pending).await;
            let mut failed = 0;
            for (row, result) in pending.iter().zip(&results) {
                match result {
                    Ok(()) => writeln!(out, "published {}", describe(row))?,
                    Err(why) => {
                        failed += 1;
                        writeln!(out, "NOT published {}: {why}", describe(row))?;
                    }
                }
            }
            writeln!(out, "published {}, failed {failed}", pending.len() - failed)?;
            if failed > 0 {
                bail!("{failed} row(s) not published; they stay PENDING");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_an_operator_writes_them() {
        assert_eq!(parse_age("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_age("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_age("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_age("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_age("45"), Ok(Duration::from_secs(45)));
        assert!(parse_age("ten minutes").is_err());
        assert!(parse_age("5w").is_err());
    }
}
