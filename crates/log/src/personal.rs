//! Personal fields sealed in the stored event (crypto-shredding).
//!
//! When an event about a learner has personal fields (`contingent_domain::personal`), the
//! stored envelope carries `data` without them and `sealed`: the key id, a 24-byte nonce and
//! the XChaCha20-Poly1305 ciphertext of the removed fields (a JSON object of path → value),
//! bound to the event by its id and type as associated data. The hash chain and the writer's
//! signatures cover those stored bytes, so they verify without any key, before and after the
//! key is destroyed. An event without personal fields is stored in clear, exactly as before.
//!
//! Decoding needs no key either ([`Envelope::decode`]): an event whose sealed part is not
//! opened reads with its required personal fields set to the erased marker
//! ([`contingent_domain::personal::ERASED`]) and its optional ones absent, and says so in
//! [`Envelope::personal`]. [`unseal`] opens the part with the learner's data key.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use contingent_domain::personal::{personal_fields, PersonalField};
use contingent_domain::{Event, LearnerId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::envelope::{Envelope, Hash, RecordedEvent};
use crate::LogError;

/// The associated data's prefix: names the format, so a ciphertext of another use never opens.
const AAD_PREFIX: &[u8] = b"contingent.personal.v1";

/// How an event's personal fields are held, as a reader sees the decoded envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonalSeal {
    /// The data key they are sealed under.
    pub key_id: Uuid,
    /// False when they could not be opened (the key was destroyed: the learner's personal
    /// data was erased, or the reader holds no keys): the fields read as erased.
    pub readable: bool,
}

/// The sealed part as stored.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed {
    key_id: Uuid,
    nonce: String,
    ciphertext: String,
}

/// A learner's data key: 32 random bytes, held only in memory and in the key store, wrapped.
pub struct DataKey {
    /// Its id, written in every event sealed under it.
    pub id: Uuid,
    /// The learner it belongs to.
    pub learner: LearnerId,
    secret: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .field("learner", &self.learner)
            .finish_non_exhaustive()
    }
}

impl DataKey {
    /// A fresh random key for a learner.
    pub fn generate(learner: LearnerId) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, secret.as_mut());
        Self {
            id: Uuid::now_v7(),
            learner,
            secret,
        }
    }

    /// A key from its stored parts.
    pub fn from_bytes(id: Uuid, learner: LearnerId, bytes: &[u8]) -> Option<Self> {
        let secret: [u8; 32] = bytes.try_into().ok()?;
        Some(Self {
            id,
            learner,
            secret: Zeroizing::new(secret),
        })
    }

    /// The secret bytes, for wrapping in the key store.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.secret.as_ref().into())
    }
}

fn aad(event_id: Uuid, type_name: &str) -> Vec<u8> {
    let mut aad = AAD_PREFIX.to_vec();
    aad.extend_from_slice(event_id.as_bytes());
    aad.extend_from_slice(type_name.as_bytes());
    aad
}

fn codec(e: impl std::fmt::Display) -> LogError {
    LogError::Codec(e.to_string())
}

fn split(path: &str) -> (&str, Option<&str>) {
    match path.split_once('.') {
        Some((outer, inner)) => (outer, Some(inner)),
        None => (path, None),
    }
}

/// Takes the personal fields out of `data`: a map of path → value; empty when it has none.
fn take_personal(data: &mut Map<String, Value>, fields: &[PersonalField]) -> Map<String, Value> {
    let mut taken = Map::new();
    for field in fields {
        let value = match split(field.path) {
            (key, None) => data.remove(key),
            (outer, Some(inner)) => data
                .get_mut(outer)
                .and_then(Value::as_object_mut)
                .and_then(|o| o.remove(inner)),
        };
        if let Some(value) = value {
            taken.insert(field.path.to_owned(), value);
        }
    }
    taken
}

/// Puts fields back into `data`: the opened values, or, when none, the erased marker of each
/// required field whose object is there.
fn put_personal(
    data: &mut Map<String, Value>,
    fields: &[PersonalField],
    opened: Option<Map<String, Value>>,
) {
    let mut opened = opened;
    for field in fields {
        let value = match &mut opened {
            Some(values) => values.remove(field.path),
            None => field
                .required
                .then(|| Value::String(field.kind.erased().to_owned())),
        };
        let Some(value) = value else { continue };
        match split(field.path) {
            (key, None) => {
                data.insert(key.to_owned(), value);
            }
            (outer, Some(inner)) => {
                if let Some(o) = data.get_mut(outer).and_then(Value::as_object_mut) {
                    o.insert(inner.to_owned(), value);
                }
            }
        }
    }
}

/// Encodes an envelope with its personal fields sealed under the key `key_for` gives for its
/// learner (asked only when there are personal fields to seal); an event without any is
/// encoded in clear ([`RecordedEvent::seal`]).
pub fn seal_personal(
    mut envelope: Envelope,
    key_for: impl FnOnce(LearnerId) -> Result<std::sync::Arc<DataKey>, LogError>,
) -> Result<RecordedEvent, LogError> {
    let type_name = envelope.event.type_name();
    let fields = personal_fields(type_name);
    let Some(learner) = envelope.learner_id.filter(|_| !fields.is_empty()) else {
        return RecordedEvent::seal(envelope);
    };
    envelope.personal = None;
    envelope.stored_schema_version = None;
    let mut stored = serde_json::to_value(&envelope).map_err(codec)?;
    let object = stored
        .as_object_mut()
        .ok_or_else(|| codec("not an object"))?;
    let data = object
        .get_mut("data")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| codec("no data"))?;
    let taken = take_personal(data, fields);
    if taken.is_empty() {
        return RecordedEvent::seal(envelope);
    }
    let key = key_for(learner)?;
    let plaintext = Zeroizing::new(serde_json::to_vec(&taken).map_err(codec)?);
    let mut nonce = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
    let ciphertext = key
        .cipher()
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plaintext,
                aad: &aad(envelope.event_id, type_name),
            },
        )
        .map_err(|_| codec("sealing the personal fields failed"))?;
    let sealed = Sealed {
        key_id: key.id,
        nonce: BASE64.encode(nonce),
        ciphertext: BASE64.encode(ciphertext),
    };
    object.insert(
        "sealed".into(),
        serde_json::to_value(sealed).map_err(codec)?,
    );
    let body = serde_json::to_vec(&stored).map_err(codec)?;
    let hash = Hash::of(&body);
    envelope.personal = Some(PersonalSeal {
        key_id: key.id,
        readable: true,
    });
    Ok(RecordedEvent {
        envelope,
        body,
        hash,
    })
}

/// Whether stored bytes have a sealed part. The key `"sealed"` followed by an object cannot
/// occur inside a JSON string, whose quotes are escaped.
fn has_sealed_part(body: &[u8]) -> bool {
    static FINDER: std::sync::OnceLock<memchr::memmem::Finder<'static>> =
        std::sync::OnceLock::new();
    FINDER
        .get_or_init(|| memchr::memmem::Finder::new(br#""sealed":{"#))
        .find(body)
        .is_some()
}

/// Decodes a stored body with a sealed part, opening it with `key` when given.
fn decode_sealed(body: &[u8], key: Option<&DataKey>) -> Result<Envelope, LogError> {
    let mut stored: Value = serde_json::from_slice(body).map_err(codec)?;
    let object = stored
        .as_object_mut()
        .ok_or_else(|| codec("not an object"))?;
    let sealed: Sealed = serde_json::from_value(
        object
            .remove("sealed")
            .ok_or_else(|| codec("no sealed part"))?,
    )
    .map_err(codec)?;
    let type_name = object
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| codec("no type"))?
        .to_owned();
    let event_id: Uuid = object
        .get("event_id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| codec("no event id"))?;
    let fields = personal_fields(&type_name);
    let opened = match key {
        Some(key) if key.id == sealed.key_id => {
            let nonce = BASE64.decode(&sealed.nonce).map_err(codec)?;
            if nonce.len() != 24 {
                return Err(codec("the nonce is not 24 bytes"));
            }
            let ciphertext = BASE64.decode(&sealed.ciphertext).map_err(codec)?;
            let plaintext = Zeroizing::new(
                key.cipher()
                    .decrypt(
                        XNonce::from_slice(&nonce),
                        Payload {
                            msg: &ciphertext,
                            aad: &aad(event_id, &type_name),
                        },
                    )
                    .map_err(|_| codec("the personal fields do not open with their key"))?,
            );
            Some(serde_json::from_slice::<Map<String, Value>>(&plaintext).map_err(codec)?)
        }
        Some(_) => return Err(codec("the personal fields are sealed under another key")),
        None => None,
    };
    let readable = opened.is_some();
    let data = object
        .get_mut("data")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| codec("no data"))?;
    put_personal(data, fields, opened);
    let stored_version = crate::upcast::upcast(object)?;
    let mut envelope: Envelope = serde_json::from_value(stored).map_err(codec)?;
    envelope.personal = Some(PersonalSeal {
        key_id: sealed.key_id,
        readable,
    });
    envelope.stored_schema_version = stored_version;
    Ok(envelope)
}

/// Decodes stored bytes in clear, upcasting an event stored with an older schema version of
/// its type. An event of the current version is deserialized directly.
fn decode_clear(body: &[u8]) -> Result<Envelope, LogError> {
    if let Some(envelope) = crate::one_pass::decode_one_pass(body) {
        return Ok(envelope);
    }
    let direct = serde_json::from_slice::<Envelope>(body);
    if let Ok(envelope) = &direct {
        if envelope.schema_version >= Event::current_schema_version(envelope.event.type_name()) {
            return direct.map_err(codec);
        }
    }
    // Older than its type's current version (or not decodable as it): through the chain.
    let mut stored: Value = serde_json::from_slice(body).map_err(codec)?;
    let object = stored
        .as_object_mut()
        .ok_or_else(|| codec("not an object"))?;
    if crate::upcast::outdated(object).is_none() {
        return direct.map_err(codec);
    }
    let stored_version = crate::upcast::upcast(object)?;
    let mut envelope: Envelope = serde_json::from_value(stored).map_err(codec)?;
    envelope.stored_schema_version = stored_version;
    Ok(envelope)
}

impl Envelope {
    /// Decodes stored bytes with the derived decoder alone (`#[serde(flatten)]`): no sealed
    /// part, no upcasting. The reference the one-pass decoder ([`crate::decode_one_pass`]) is
    /// checked against.
    pub fn decode_derived(body: &[u8]) -> Result<Self, LogError> {
        serde_json::from_slice::<Envelope>(body).map_err(codec)
    }

    /// Decodes stored bytes without any key: sealed personal fields read as erased (see the
    /// module documentation).
    pub fn decode(body: &[u8]) -> Result<Self, LogError> {
        if has_sealed_part(body) {
            decode_sealed(body, None)
        } else {
            decode_clear(body)
        }
    }
}

/// Opens the sealed personal fields of a stored event with its learner's data key, in place.
/// The stored bytes and the hash do not change.
pub fn unseal(event: &mut RecordedEvent, key: &DataKey) -> Result<(), LogError> {
    if event
        .envelope
        .personal
        .as_ref()
        .is_some_and(|p| !p.readable)
    {
        event.envelope = decode_sealed(&event.body, Some(key))?;
    }
    Ok(())
}
