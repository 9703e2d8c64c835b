//! Contacts and sent messages in memory: both ports of the handlers, as
//! [`NotificationTable`](crate::NotificationTable) is. For the handlers' unit tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::compose::Email;
use crate::error::NotificationError;
use crate::table::{Contact, Contacts, EmailSender};

#[derive(Debug, Default)]
struct Book {
    contacts: BTreeMap<String, Contact>,
    /// By message id: a message is sent once.
    sent: BTreeMap<String, Email>,
}

/// Contacts and an outbox of sent messages, in memory.
#[derive(Clone, Debug, Default)]
pub struct InMemoryNotifications {
    book: Arc<Mutex<Book>>,
}

impl InMemoryNotifications {
    /// No contacts, nothing sent.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message sent, in message id order.
    pub fn sent(&self) -> Vec<Email> {
        self.book.lock().sent.values().cloned().collect()
    }
}

#[async_trait::async_trait]
impl EmailSender for InMemoryNotifications {
    async fn send(&self, email: &Email) -> Result<(), NotificationError> {
        self.book
            .lock()
            .sent
            .entry(email.message_id.clone())
            .or_insert_with(|| email.clone());
        Ok(())
    }
}

#[async_trait::async_trait]
impl Contacts for InMemoryNotifications {
    async fn remember(&self, order_id: &str, contact: &Contact) -> Result<(), NotificationError> {
        self.book
            .lock()
            .contacts
            .insert(order_id.to_owned(), contact.clone());
        Ok(())
    }

    async fn lookup(&self, order_id: &str) -> Result<Option<Contact>, NotificationError> {
        Ok(self.book.lock().contacts.get(order_id).cloned())
    }
}
