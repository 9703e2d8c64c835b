//! The one list of the system's consumer functions the tests know: each one's name, its own
//! table and how its crate builds it. Adding a consumer function to the tests is one entry here;
//! the flow ([`crate::flow::Flow`]) and the template wiring tests (`tests/template.rs`) take
//! everything from this list.

use std::any::Any;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsEvent;
use orderflow::EventType;
use orderflow::consume::{BatchOutcome, Consumer, ConsumerOptions, Invocation};
use orderflow::env::{EnvError, FromVars, Vars};

/// A consumer function as the tests drive it, whatever its state type.
#[async_trait]
pub trait QueueConsumer: Send + Sync {
    /// The event types its handlers are registered for (its filter policy).
    fn handled_event_types(&self) -> Vec<EventType>;
    /// Processes one SQS batch as its Lambda would.
    async fn process(&self, event: &SqsEvent) -> BatchOutcome;
    /// The consumer itself, for a test that needs its typed state.
    fn as_any(&self) -> &dyn Any;
}

#[async_trait]
impl<S: Send + Sync + 'static> QueueConsumer for Consumer<S> {
    fn handled_event_types(&self) -> Vec<EventType> {
        Consumer::handled_event_types(self)
    }

    async fn process(&self, event: &SqsEvent) -> BatchOutcome {
        Consumer::process(self, event, &Invocation::default()).await
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A service's own DynamoDB table: the variable its function reads the name from and the key
/// schema the template gives it (string keys; `tests/template.rs` checks them against the
/// template).
#[derive(Clone, Copy, Debug)]
pub struct TableSpec {
    /// The role, as tests name the table (`flow.table("payments")`).
    pub role: &'static str,
    /// The environment variable the function reads the table's name from.
    pub variable: &'static str,
    /// The partition key.
    pub hash: &'static str,
    /// The sort key, if any.
    pub range: Option<&'static str>,
    /// Whether the table has a `NEW_IMAGE` stream (the outbox relay reads it).
    pub stream: bool,
}

/// Builds a consumer from the environment the template sets, with the given options.
pub type Build = fn(&SdkConfig, &Vars, ConsumerOptions) -> Result<Box<dyn QueueConsumer>, EnvError>;

/// One consumer function of the system.
#[derive(Clone, Copy)]
pub struct Service {
    /// Its binary's name (the crate in `functions/`), which is also its queue's name in the flow.
    pub name: &'static str,
    /// Its own table.
    pub table: TableSpec,
    /// How its crate builds it, exactly as its `main.rs` does.
    pub build: Build,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

fn built<C: FromVars, S: Send + Sync + 'static>(
    sdk: &SdkConfig,
    vars: &Vars,
    options: ConsumerOptions,
    consumer: fn(&SdkConfig, C) -> Consumer<S>,
) -> Result<Box<dyn QueueConsumer>, EnvError> {
    Ok(Box::new(
        consumer(sdk, C::from_vars(vars)?).with_options(options),
    ))
}

/// The table of idempotency records every consumer shares.
pub const IDEMPOTENCY_TABLE: TableSpec = TableSpec {
    role: "idempotency",
    variable: orderflow::env::vars::IDEMPOTENCY_TABLE,
    hash: "id",
    range: None,
    stream: false,
};

/// Every consumer function, by name (the order the flow pumps their queues in).
pub const SERVICES: &[Service] = &[
    Service {
        name: "analytics",
        table: TableSpec {
            role: "analytics",
            variable: "ANALYTICS_TABLE",
            hash: "pk",
            range: None,
            stream: false,
        },
        build: |sdk, vars, options| built(sdk, vars, options, analytics::consumer),
    },
    Service {
        name: "inventory",
        table: TableSpec {
            role: "inventory",
            variable: "INVENTORY_TABLE",
            hash: "pk",
            range: None,
            stream: false,
        },
        build: |sdk, vars, options| built(sdk, vars, options, inventory::consumer),
    },
    Service {
        name: "notification",
        table: TableSpec {
            role: "notifications",
            variable: "NOTIFICATIONS_TABLE",
            hash: "pk",
            range: None,
            stream: false,
        },
        build: |sdk, vars, options| built(sdk, vars, options, notification::consumer),
    },
    Service {
        name: "orders",
        table: TableSpec {
            role: "orders",
            variable: "ORDERS_TABLE",
            hash: "pk",
            range: Some("sk"),
            stream: true,
        },
        build: |sdk, vars, options| built(sdk, vars, options, orders::consumer),
    },
    Service {
        name: "payment",
        table: TableSpec {
            role: "payments",
            variable: "PAYMENTS_TABLE",
            hash: "orderId",
            range: None,
            stream: false,
        },
        build: |sdk, vars, options| built(sdk, vars, options, payment::consumer),
    },
];

/// The service whose binary is `name`.
pub fn service(name: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.name == name)
}
