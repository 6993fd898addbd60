//! Stored envelopes decoded in one pass. `Envelope`'s derived decoder takes the event through
//! `#[serde(flatten)]`, which first copies the `type` and the whole `data` object into serde's
//! buffered `Content` tree and then decodes the event from that copy; this one reads the
//! envelope's fields by name and, on meeting `type`, decodes the event from the `data` that
//! follows it in the bytes directly. The stored format is not changed.
//!
//! It reads no body with a sealed part (personal fields), none stored with an older schema
//! version of its type (upcast by the chain), none whose `data` does not follow `type`, nothing
//! malformed: for those it answers `None`, and [`Envelope::decode`] takes them the derived way,
//! so results and errors are always the derived decoder's.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use contingent_domain::{Event, LearnerId};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use crate::{Envelope, Hash, Source};

/// The envelope in one pass, or `None` when the body needs the derived decoder.
pub fn decode_one_pass(body: &[u8]) -> Option<Envelope> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let envelope = de.deserialize_map(EnvelopeVisitor).ok()?;
    de.end().ok()?;
    Some(envelope)
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a stored envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut position: Option<u64> = None;
        let mut event_id: Option<Uuid> = None;
        let mut schema_version: Option<u16> = None;
        let mut learner_id: Option<LearnerId> = None;
        let mut business_date: Option<NaiveDate> = None;
        let mut recorded_at: Option<DateTime<Utc>> = None;
        let mut source: Option<Source> = None;
        let mut actor: Option<String> = None;
        let mut idempotency_key: Option<String> = None;
        let mut request_fingerprint: Option<String> = None;
        let mut prev_hash: Option<Hash> = None;
        let mut event: Option<Event> = None;
        while let Some(key) = map.next_key::<&str>()? {
            match key {
                "position" => position = Some(map.next_value()?),
                "event_id" => event_id = Some(map.next_value()?),
                "schema_version" => schema_version = Some(map.next_value()?),
                "learner_id" => learner_id = map.next_value()?,
                "business_date" => business_date = Some(map.next_value()?),
                "recorded_at" => recorded_at = Some(map.next_value()?),
                "source" => source = Some(map.next_value()?),
                "actor" => actor = Some(map.next_value()?),
                "idempotency_key" => idempotency_key = map.next_value()?,
                "request_fingerprint" => request_fingerprint = map.next_value()?,
                "prev_hash" => prev_hash = Some(map.next_value()?),
                "type" => {
                    let name: &str = map.next_value()?;
                    event = Some(Event::deserialize(Adjacent {
                        name,
                        map: &mut map,
                    })?);
                }
                "sealed" => return Err(de::Error::custom("a sealed part")),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let missing = |field: &'static str| -> A::Error { de::Error::missing_field(field) };
        let event = event.ok_or_else(|| missing("type"))?;
        let schema_version = schema_version.ok_or_else(|| missing("schema_version"))?;
        // Stored with an older version of its type: the standard decoder upcasts it.
        if schema_version < Event::current_schema_version(event.type_name()) {
            return Err(de::Error::custom("an older schema version"));
        }
        Ok(Envelope {
            position: position.ok_or_else(|| missing("position"))?,
            event_id: event_id.ok_or_else(|| missing("event_id"))?,
            schema_version,
            learner_id,
            business_date: business_date.ok_or_else(|| missing("business_date"))?,
            recorded_at: recorded_at.ok_or_else(|| missing("recorded_at"))?,
            source: source.ok_or_else(|| missing("source"))?,
            actor: actor.ok_or_else(|| missing("actor"))?,
            idempotency_key,
            request_fingerprint,
            prev_hash: prev_hash.ok_or_else(|| missing("prev_hash"))?,
            event,
            personal: None,
            stored_schema_version: None,
        })
    }
}

/// The event as its adjacently tagged form `{"type": name, "data": …}`, the `data` read from the
/// envelope's next entry.
struct Adjacent<'a, A> {
    name: &'a str,
    map: &'a mut A,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for Adjacent<'_, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_map(AdjacentMap {
            name: self.name,
            map: self.map,
            state: 0,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

struct AdjacentMap<'a, A> {
    name: &'a str,
    map: &'a mut A,
    /// 0: `type` next; 1: `data` next; 2: done.
    state: u8,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for AdjacentMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let key = match self.state {
            0 => "type",
            1 => match self.map.next_key::<&str>()? {
                Some("data") => "data",
                _ => return Err(de::Error::custom("`data` does not follow `type`")),
            },
            _ => return Ok(None),
        };
        seed.deserialize(de::value::StrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.state += 1;
        match self.state {
            1 => seed.deserialize(de::value::StrDeserializer::new(self.name)),
            _ => self.map.next_value_seed(seed),
        }
    }
}
