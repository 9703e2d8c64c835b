//! `orderflow-local`: provision `infra/template.yaml` into an AWS endpoint and run the real
//! function binaries against it, as Lambda would.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use orderflow_local::{Config, Pseudo, Runner, Template};

#[derive(Parser)]
#[command(
    name = "orderflow-local",
    version,
    about = "A local Lambda service for the real binaries, configured by the template"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the template's resources in the endpoint, say what was created and skipped, exit.
    Provision(Common),
    /// Provision, start every function and the HTTP API, and keep running until Ctrl-C.
    Up(Common),
    /// Follow one order through every function's log: each record about it (by order id or
    /// correlation id), in time order, with how it ended and how long it took.
    Trace {
        /// An order id (`ord-…`) or a correlation id.
        id: String,
        /// Where function logs went (this folder and the ones in it).
        #[arg(long, default_value = "target/local-logs")]
        log_dir: PathBuf,
    },
    /// Every function's metrics from the EMF documents in its log (as CloudWatch would extract
    /// them): invocations, records, failures, duplicates, DLQ sends by kind, p50 / p99 duration.
    Metrics {
        /// Where function logs went (this folder and the ones in it).
        #[arg(long, default_value = "target/local-logs")]
        log_dir: PathBuf,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// The template.
    #[arg(long, default_value = "infra/template.yaml")]
    template: PathBuf,
    /// A template parameter, `Name=Value` (repeatable), e.g. `EventOrdering=Fifo`.
    #[arg(long = "param", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Where the function binaries are.
    #[arg(long, default_value = "target/debug")]
    bin_dir: PathBuf,
    /// The stack name: resource names start with it.
    #[arg(long, default_value = "orderflow-local")]
    stack_name: String,
    /// The endpoint; defaults to `AWS_ENDPOINT_URL`.
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    endpoint: Option<String>,
    /// The account id the endpoint uses in ARNs (default: ask its STS).
    #[arg(long)]
    account_id: Option<String>,
    /// The HTTP API's port (0: any free one).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Where function logs go.
    #[arg(long, default_value = "target/local-logs")]
    log_dir: PathBuf,
    /// Print every function's output, prefixed and coloured.
    #[arg(short, long)]
    verbose: bool,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not Name=Value"))
}

fn region() -> String {
    std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".into())
}

async fn sdk(common: &Common) -> anyhow::Result<aws_config::SdkConfig> {
    let Some(endpoint) = &common.endpoint else {
        bail!(
            "no endpoint: set AWS_ENDPOINT_URL (or --endpoint) to the emulator, e.g. http://127.0.0.1:5000"
        );
    };
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(orderflow::aws::TrustRoots::platform().http_client())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region()))
        .timeout_config(orderflow::aws::timeouts())
        .load()
        .await;
    Ok(config)
}

fn config(common: &Common) -> Config {
    Config {
        template: common.template.clone(),
        parameters: common.params.clone(),
        bin_dir: common.bin_dir.clone(),
        stack_name: common.stack_name.clone(),
        region: region(),
        account_id: common.account_id.clone(),
        log_dir: common.log_dir.clone(),
        verbose: common.verbose,
        http_port: common.port,
        duplicate_stream_batches: false,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Metrics { log_dir } => {
            let functions = orderflow_local::metrics::collect(&log_dir);
            if functions.is_empty() {
                bail!(
                    "no function wrote an EMF document under {} (metrics are on when \
                     POWERTOOLS_METRICS_NAMESPACE is set, as the template does)",
                    log_dir.display()
                );
            }
            print!("{}", orderflow_local::metrics::render(&functions));
            Ok(())
        }
        Command::Trace { id, log_dir } => {
            let steps = orderflow_local::trace::follow(&log_dir, &id);
            if steps.is_empty() {
                bail!(
                    "no function logged a record about {id} under {}",
                    log_dir.display()
                );
            }
            print!("{}", orderflow_local::trace::render(&steps));
            Ok(())
        }
        Command::Provision(common) => {
            let sdk = sdk(&common).await?;
            let account_id = match &common.account_id {
                Some(account_id) => account_id.clone(),
                None => orderflow_local::account_id(&sdk).await?,
            };
            let template = Template::load(
                &common.template,
                &common.params,
                Pseudo {
                    stack_name: common.stack_name.clone(),
                    region: region(),
                    account_id,
                },
            )?;
            let clients = orderflow_local::Clients {
                sns: aws_sdk_sns::Client::new(&sdk),
                sqs: aws_sdk_sqs::Client::new(&sdk),
                dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            };
            let stack = orderflow_local::provision::provision(&template, &clients).await?;
            for (id, kind, what) in &stack.log {
                println!("{id:<32} {kind:<28} {what}");
            }
            for (name, value) in &stack.outputs {
                println!("output {name:<28} {value}");
            }
            Ok(())
        }
        Command::Up(common) => {
            // Functions read the endpoint from their environment, as deployed code does: one
            // given on the command line is passed on as AWS_ENDPOINT_URL.
            if std::env::var_os("AWS_ENDPOINT_URL").is_none()
                && let Some(endpoint) = &common.endpoint
            {
                orderflow_local::set_endpoint_override(endpoint);
            }
            let sdk = sdk(&common).await?;
            let runner = Runner::start(config(&common), &sdk)
                .await
                .context("cannot start the local stack")?;
            for (id, kind, what) in &runner.stack.log {
                println!("{id:<32} {kind:<28} {what}");
            }
            let endpoint = common.endpoint.clone().unwrap_or_default();
            let topic = runner
                .stack
                .outputs
                .get("EventsTopicArn")
                .cloned()
                .unwrap_or_default();
            println!();
            println!(
                "orderflow is running locally (logs in {})",
                runner.log.dir().display()
            );
            println!("  endpoint   {endpoint}");
            if let Some(url) = runner.http_url() {
                println!("  HTTP API   {url}");
                println!(
                    "  try        curl -s -X POST {url}/orders -H 'content-type: application/json' -d '{{\"customerId\":\"cust-1\",\"currency\":\"EUR\",\"items\":[{{\"sku\":\"SKU-MUG\",\"quantity\":1,\"unitPrice\":\"12.50\"}}]}}'"
                );
            }
            if !topic.is_empty() {
                println!("  topic      {topic}");
                println!(
                    "  try        orderflow publish --example order-placed | AWS_ENDPOINT_URL={endpoint} orderflow publish --topic-arn {topic}"
                );
            }
            for (name, value) in &runner.stack.outputs {
                if name.ends_with("TableName") || name.ends_with("QueueUrl") {
                    println!("  {name:<34} {value}");
                }
            }
            println!("Ctrl-C stops every function and server.");
            wait_for_stop().await;
            runner.shutdown().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(())
        }
    }
}

async fn wait_for_stop() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
