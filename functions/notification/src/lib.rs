//! The notification service: tells the customer when an order is placed, confirmed or
//! cancelled, once per event, through an [`EmailSender`] (the bundled one records each message
//! in the notification table; [`InMemoryNotifications`] keeps them in memory for tests).

pub mod compose;
pub mod error;
pub mod memory;
pub mod table;

use std::sync::Arc;

use orderflow::Event;
use orderflow::consume::{Consumer, ConsumerEnv, HandlerError, Message, Outcome};
use orderflow::env::{EnvError, FromVars, Vars};
use orderflow::event::{OrderCancelled, OrderConfirmed, OrderPlaced};

pub use compose::Email;
pub use error::NotificationError;
pub use memory::InMemoryNotifications;
pub use table::{Contact, Contacts, EmailSender, NotificationTable};

/// The consumer's name: idempotency key prefix.
pub const NAME: &str = "notification";

/// The function's configuration, from the environment the template sets.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Idempotency and DLQ.
    pub consumer: ConsumerEnv,
    /// `NOTIFICATIONS_TABLE`.
    pub notifications_table: String,
}

impl FromVars for Config {
    fn from_vars(vars: &Vars) -> Result<Self, EnvError> {
        Ok(Config {
            consumer: ConsumerEnv::from_vars(vars)?,
            notifications_table: vars.required("NOTIFICATIONS_TABLE")?,
        })
    }
}

/// What the handlers share.
pub struct State {
    /// Sends messages.
    pub sender: Arc<dyn EmailSender>,
    /// Knows each order's customer.
    pub contacts: Arc<dyn Contacts>,
}

/// The consumer as the Lambda runs it.
pub fn consumer(sdk: &aws_config::SdkConfig, config: Config) -> Consumer<State> {
    let table = Arc::new(NotificationTable::new(
        aws_sdk_dynamodb::Client::new(sdk),
        config.notifications_table,
    ));
    handlers(State {
        sender: table.clone(),
        contacts: table,
    })
    .wired_without_publisher(sdk, &config.consumer)
}

/// The handlers, unwired.
pub fn handlers(state: State) -> Consumer<State> {
    Consumer::new(NAME, state)
        .on(order_placed)
        .on(order_confirmed)
        .on(order_cancelled)
        .emits_no_events()
}

async fn send(
    state: &State,
    event: &Event,
    order_id: &str,
    contact: &Contact,
    (subject, body): (String, String),
) -> Result<Outcome, HandlerError> {
    let Some(to) = contact.email.clone() else {
        return Ok(Outcome::done().with_result(
            serde_json::json!({"sent": false, "reason": "the order gave no email address"}),
        ));
    };
    let email = Email {
        message_id: event.event_id.to_string(),
        order_id: order_id.to_owned(),
        to,
        subject,
        body,
    };
    state.sender.send(&email).await?;
    Ok(Outcome::done().with_result(serde_json::json!({"sent": true, "to": email.to})))
}

/// The contact of an order, or a transient error while its OrderPlaced has not been seen yet
/// (standard queues do not keep order; the redrive policy ends the wait).
async fn contact_of(state: &State, order_id: &str) -> Result<Contact, NotificationError> {
    state
        .contacts
        .lookup(order_id)
        .await?
        .ok_or_else(|| NotificationError::ContactNotYetKnown(order_id.to_owned()))
}

/// OrderPlaced: remember the contact, confirm receipt.
pub async fn order_placed(
    message: Message<OrderPlaced>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    let order = &message.data;
    let contact = Contact {
        customer_id: order.customer_id.clone(),
        email: order.customer_email.clone(),
    };
    state.contacts.remember(&order.order_id, &contact).await?;
    send(
        &state,
        &message.event,
        &order.order_id,
        &contact,
        compose::placed(order),
    )
    .await
}

/// OrderConfirmed: tell the customer.
pub async fn order_confirmed(
    message: Message<OrderConfirmed>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    let contact = contact_of(&state, &message.data.order_id).await?;
    send(
        &state,
        &message.event,
        &message.data.order_id,
        &contact,
        compose::confirmed(&message.data),
    )
    .await
}

/// OrderCancelled: tell the customer why.
pub async fn order_cancelled(
    message: Message<OrderCancelled>,
    state: Arc<State>,
) -> Result<Outcome, HandlerError> {
    let contact = contact_of(&state, &message.data.order_id).await?;
    send(
        &state,
        &message.event,
        &message.data.order_id,
        &contact,
        compose::cancelled(&message.data),
    )
    .await
}
