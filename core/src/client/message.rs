//! Building messages to publish: [`MessageBuilder`], and conversions so that a plain body
//! (`&str`, `String`, `Vec<u8>`, `&[u8]`) can be sent as it is.

use std::time::Duration;

use crate::broker::{Delay, OutgoingMessage};

/// Builds an [`OutgoingMessage`] attribute by attribute.
///
/// ```
/// use ferrymq_core::client::MessageBuilder;
///
/// let message = MessageBuilder::new("order 42 paid")
///     .tag("paid")
///     .key("order-42")
///     .property("region", "eu")
///     .sharding_key("customer-7")
///     .build();
/// assert_eq!(message.tag.as_deref(), Some("paid"));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MessageBuilder {
    message: OutgoingMessage,
}

impl MessageBuilder {
    /// A message with this body and no attributes.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        MessageBuilder { message: OutgoingMessage { body: body.into(), ..OutgoingMessage::default() } }
    }

    /// Sets the tag, which tag filters match.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.message.tag = Some(tag.into());
        self
    }

    /// Adds a key, indexed for lookup.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.message.keys.push(key.into());
        self
    }

    /// Adds several keys.
    pub fn keys<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        self.message.keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Sets a property, which SQL filters match.
    pub fn property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.message.properties.insert(name.into(), value.into());
        self
    }

    /// Delivers after one of the broker's delay levels (1-based).
    pub fn delay_level(mut self, level: u32) -> Self {
        self.message.delay = Some(Delay::Level(level));
        self
    }

    /// Delivers this long after the send (millisecond precision).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.message.delay = Some(Delay::Millis(delay.as_millis() as u64));
        self
    }

    /// Delivers this many milliseconds after the send.
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.message.delay = Some(Delay::Millis(ms));
        self
    }

    /// Delivers at this epoch-millisecond time (at once if it has passed).
    pub fn deliver_at(mut self, epoch_ms: u64) -> Self {
        self.message.delay = Some(Delay::At(epoch_ms));
        self
    }

    /// Sets the FIFO group: messages with one sharding key land in one queue, in order.
    pub fn sharding_key(mut self, key: impl Into<String>) -> Self {
        self.message.sharding_key = Some(key.into());
        self
    }

    /// Makes the send idempotent: a repeat with this key within the dedup window returns the
    /// first result and stores nothing.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.message.idempotency_key = Some(key.into());
        self
    }

    /// The message.
    pub fn build(self) -> OutgoingMessage {
        self.message
    }
}

impl From<MessageBuilder> for OutgoingMessage {
    fn from(builder: MessageBuilder) -> Self {
        builder.build()
    }
}

impl From<&str> for OutgoingMessage {
    fn from(body: &str) -> Self {
        MessageBuilder::new(body).build()
    }
}

impl From<String> for OutgoingMessage {
    fn from(body: String) -> Self {
        MessageBuilder::new(body).build()
    }
}

impl From<Vec<u8>> for OutgoingMessage {
    fn from(body: Vec<u8>) -> Self {
        MessageBuilder::new(body).build()
    }
}

impl From<&[u8]> for OutgoingMessage {
    fn from(body: &[u8]) -> Self {
        MessageBuilder::new(body).build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_sets_every_attribute() {
        let m = MessageBuilder::new("b")
            .tag("t")
            .keys(["k1", "k2"])
            .key("k3")
            .property("p", "v")
            .delay_level(2)
            .sharding_key("s")
            .idempotency_key("i")
            .build();
        assert_eq!(m.body, b"b");
        assert_eq!(m.keys, ["k1", "k2", "k3"]);
        assert_eq!(m.properties.get("p").map(String::as_str), Some("v"));
        assert_eq!(m.delay, Some(Delay::Level(2)));
        assert_eq!(m.sharding_key.as_deref(), Some("s"));
        assert_eq!(m.idempotency_key.as_deref(), Some("i"));
        assert_eq!(MessageBuilder::new("x").delay(Duration::from_secs(2)).build().delay, Some(Delay::Millis(2000)));
    }

    #[test]
    fn plain_bodies_convert() {
        assert_eq!(OutgoingMessage::from("a").body, b"a");
        assert_eq!(OutgoingMessage::from(vec![1u8, 2]).body, [1, 2]);
        assert_eq!(OutgoingMessage::from(String::from("s")).tag, None);
    }
}
