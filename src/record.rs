//! What the crate keeps in the session, and under which key.

use serde::{de, de::DeserializeOwned, ser, Deserialize, Deserializer, Serialize, Serializer};

use crate::hash::STORED_HASH_LEN;

/// The session key of the [`AuthRecord`]. One key keeps the per-request work
/// to one lookup and one decode.
pub(crate) const SESSION_KEY: &str = "_auth";

/// The signed-in user of a session: the user id and the auth hash. The
/// password hash itself never reaches the store.
///
/// Stored as one string, the 43-character hash followed by the id as JSON
/// (`"iJrSg…gh3U42"` for user `42`): reading it on every request costs one
/// string copy, where a JSON object costs a map, its keys and the strings
/// (about half the decode time, measured in `bench/benches/breakdown.rs`).
/// The hash has a fixed length, so the split is unambiguous.
pub(crate) struct AuthRecord<Id> {
    pub(crate) user_id: Id,
    pub(crate) auth_hash: String,
}

impl<Id: Serialize> Serialize for AuthRecord<Id> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut packed = self.auth_hash.clone();
        let id = serde_json::to_string(&self.user_id).map_err(ser::Error::custom)?;
        packed.push_str(&id);
        serializer.serialize_str(&packed)
    }
}

impl<'de, Id: DeserializeOwned> Deserialize<'de> for AuthRecord<Id> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut packed = String::deserialize(deserializer)?;
        if !packed.is_char_boundary(STORED_HASH_LEN) {
            return Err(de::Error::custom("auth record shorter than its hash"));
        }
        let user_id =
            serde_json::from_str(&packed[STORED_HASH_LEN..]).map_err(de::Error::custom)?;
        packed.truncate(STORED_HASH_LEN);
        Ok(Self {
            user_id,
            auth_hash: packed,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    const HASH: &str = "iJrSgUXLcbJg1N3uQ7LHtXFof-5f7ILEYAvztu6gh3U";

    fn record<Id>(user_id: Id) -> AuthRecord<Id> {
        AuthRecord {
            user_id,
            auth_hash: HASH.to_owned(),
        }
    }

    fn decode<Id: DeserializeOwned>(value: Value) -> Result<AuthRecord<Id>, serde_json::Error> {
        serde_json::from_value(value)
    }

    #[test]
    fn packs_hash_and_id_into_one_string() {
        let stored = serde_json::to_value(record(42_u64)).unwrap();
        assert_eq!(stored, json!(format!("{HASH}42")));
        let stored = serde_json::to_value(record("a\"b")).unwrap();
        assert_eq!(stored, json!(format!("{HASH}\"a\\\"b\"")));
    }

    #[test]
    fn round_trips_ids_of_any_serde_type() {
        let back: AuthRecord<u64> = decode(json!(format!("{HASH}42"))).unwrap();
        assert_eq!((back.user_id, back.auth_hash.as_str()), (42, HASH));
        let id = "7f0c2a9e-3d4b-4c61-9a57-2b8e1f6d0c33".to_owned();
        let stored = serde_json::to_value(record(id.clone())).unwrap();
        let back: AuthRecord<String> = decode(stored).unwrap();
        assert_eq!(back.user_id, id);
        let back: AuthRecord<(u8, i32)> = decode(json!(format!("{HASH}[1,-2]"))).unwrap();
        assert_eq!(back.user_id, (1, -2));
    }

    #[test]
    fn refuses_malformed_records() {
        let malformed = [
            json!(""),
            json!("short"),
            json!(HASH),
            json!(format!("{HASH}\"one\"")),
            json!(format!("{HASH}-1")),
            json!(format!("{HASH}1 trailing")),
            json!(format!("{}é1", &HASH[..42])),
            json!(42),
            json!({ "id": 1, "hash": HASH }),
            json!(null),
        ];
        for value in malformed {
            assert!(decode::<u64>(value.clone()).is_err(), "{value}");
        }
    }
}
