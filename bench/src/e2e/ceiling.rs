//! The emulator's ceiling: how many SQS send → receive → delete round trips a second it
//! serves, from one client (one after another) and from several at once, and how much CPU it
//! spends on them. Nothing of ours runs in between, so this is what the emulator itself allows.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::cpu;

/// One measurement of round trips.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RoundTrips {
    /// Clients sending at once.
    pub(crate) clients: usize,
    /// Round trips completed (3 requests each, plus empty receives retried).
    pub(crate) round_trips: u64,
    /// Requests made.
    pub(crate) requests: u64,
    /// Wall time.
    pub(crate) elapsed: Duration,
    /// The emulator's CPU time meanwhile (`None`: its process is unknown).
    pub(crate) emulator_cpu: Option<Duration>,
    /// The CPU time of the emulator's own process meanwhile (its children not counted).
    pub(crate) emulator_root_cpu: Option<Duration>,
}

impl RoundTrips {
    /// Round trips a second.
    pub(crate) fn per_second(&self) -> f64 {
        self.round_trips as f64 / self.elapsed.as_secs_f64()
    }

    /// Requests a second.
    pub(crate) fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The emulator's CPU use meanwhile, in cores.
    pub(crate) fn emulator_cores(&self) -> Option<f64> {
        self.emulator_cpu
            .map(|cpu| cpu.as_secs_f64() / self.elapsed.as_secs_f64())
    }

    /// The emulator's own process's CPU use meanwhile, in cores: the most it can do.
    pub(crate) fn emulator_root_cores(&self) -> Option<f64> {
        self.emulator_root_cpu
            .map(|cpu| cpu.as_secs_f64() / self.elapsed.as_secs_f64())
    }

    /// The emulator's CPU time a request.
    pub(crate) fn emulator_cpu_per_request(&self) -> Option<Duration> {
        self.emulator_cpu
            .map(|cpu| cpu.div_f64(self.requests.max(1) as f64))
    }
}

/// Sends, receives and deletes one message after another on `queue_url` for `duration`.
async fn client_loop(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    until: Instant,
) -> anyhow::Result<(u64, u64)> {
    let (mut round_trips, mut requests) = (0, 0);
    let body = "x".repeat(512);
    while Instant::now() < until {
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(&body)
            .send()
            .await
            .context("SendMessage")?;
        requests += 1;
        // SNS-less, so the message is there at once; an emulator that shows it a moment later
        // costs an extra receive, counted.
        let handle = loop {
            let out = sqs
                .receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages(1)
                .send()
                .await
                .context("ReceiveMessage")?;
            requests += 1;
            if let Some(handle) = out
                .messages()
                .first()
                .and_then(|m| m.receipt_handle())
                .map(str::to_owned)
            {
                break handle;
            }
        };
        sqs.delete_message()
            .queue_url(&queue_url)
            .receipt_handle(handle)
            .send()
            .await
            .context("DeleteMessage")?;
        requests += 1;
        round_trips += 1;
    }
    Ok((round_trips, requests))
}

/// `clients` clients at once, each on a queue of its own, for `duration`.
pub(crate) async fn measure(
    sdk: &aws_config::SdkConfig,
    emulator_pid: Option<u32>,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<RoundTrips> {
    let mut queues = Vec::new();
    for i in 0..clients {
        let name = orderflow_tests::unique_name(&format!("ceiling-{i}"));
        let url = aws_sdk_sqs::Client::new(sdk)
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .context("CreateQueue")?
            .queue_url
            .context("no queue URL")?;
        queues.push(url);
    }
    let cpu_before = emulator_pid.map(cpu::of_tree);
    let root_before = emulator_pid.and_then(cpu::of).map(|t| t.own);
    let started = Instant::now();
    let until = started + duration;
    let tasks: Vec<_> = queues
        .iter()
        .map(|url| {
            // A client (and connection pool) each, as separate processes would have.
            let sqs = aws_sdk_sqs::Client::new(sdk);
            tokio::spawn(client_loop(sqs, url.clone(), until))
        })
        .collect();
    let (mut round_trips, mut requests) = (0, 0);
    for task in tasks {
        let (r, q) = task.await.context("a client stopped")??;
        round_trips += r;
        requests += q;
    }
    let elapsed = started.elapsed();
    let emulator_cpu = match (emulator_pid, cpu_before) {
        (Some(pid), Some(before)) => Some(cpu::of_tree(pid).saturating_sub(before)),
        _ => None,
    };
    let emulator_root_cpu = match (emulator_pid.and_then(cpu::of), root_before) {
        (Some(now), Some(before)) => Some(now.own.saturating_sub(before)),
        _ => None,
    };
    let sqs = aws_sdk_sqs::Client::new(sdk);
    for url in queues {
        let _ = sqs.delete_queue().queue_url(url).send().await;
    }
    Ok(RoundTrips {
        clients,
        round_trips,
        requests,
        elapsed,
        emulator_cpu,
        emulator_root_cpu,
    })
}
