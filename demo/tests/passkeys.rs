//! The demo's passkey contract (issue #18) over HTTP, with the software
//! authenticator of `common/authenticator.rs` in place of a browser. First,
//! the authenticator itself: what it encodes, parsed back and verified.

#![allow(clippy::unwrap_used)]

mod common;

use ciborium::Value as Cbor;
use p256::ecdsa::{signature::Verifier as _, DerSignature, VerifyingKey};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::common::authenticator::{
    b64, unb64, Authenticator, Backup, Tamper, AT, AUTH_DATA_HEADER, BE, BS, FOREIGN_ORIGIN, UP, UV,
};

// ---------------------------------------------------------------------------
// The software authenticator itself: what it encodes, parsed back

const TEST_ORIGIN: &str = "http://localhost:8080";

fn creation_options(rp_id: &str, user_handle: &[u8], challenge: &[u8]) -> Value {
    json!({ "publicKey": {
        "rp": { "id": rp_id, "name": "test" },
        "user": { "id": b64(user_handle), "name": "alice", "displayName": "alice" },
        "challenge": b64(challenge),
        "pubKeyCredParams": [{ "type": "public-key", "alg": -7 }],
    } })
}

fn request_options(rp_id: &str, challenge: &[u8]) -> Value {
    json!({ "publicKey": {
        "rpId": rp_id,
        "challenge": b64(challenge),
        "allowCredentials": [],
        "userVerification": "required",
    } })
}

fn cbor_text(text: &str) -> Cbor {
    Cbor::Text(text.to_owned())
}

fn cbor_int(n: i64) -> Cbor {
    Cbor::Integer(n.into())
}

/// The value at `key` of the CBOR map `map`.
fn cbor_get<'a>(map: &'a Cbor, key: &Cbor) -> &'a Cbor {
    let Cbor::Map(entries) = map else {
        panic!("not a map: {map:?}")
    };
    entries
        .iter()
        .find_map(|(found, value)| (found == key).then_some(value))
        .unwrap_or_else(|| panic!("no {key:?} in {map:?}"))
}

/// The `clientDataJSON` of `credential`, parsed.
fn client_data(credential: &Value) -> Value {
    let bytes = unb64(credential["response"]["clientDataJSON"].as_str().unwrap());
    serde_json::from_slice(&bytes).unwrap()
}

/// A registration's parts: its authenticator data and the public key of
/// its COSE key, read from the attestation object alone.
fn parse_registration(credential: &Value) -> (Vec<u8>, VerifyingKey) {
    let object = unb64(
        credential["response"]["attestationObject"]
            .as_str()
            .unwrap(),
    );
    let object: Cbor = ciborium::from_reader(object.as_slice()).unwrap();
    assert_eq!(cbor_get(&object, &cbor_text("fmt")), &cbor_text("none"));
    assert_eq!(
        cbor_get(&object, &cbor_text("attStmt")),
        &Cbor::Map(Vec::new())
    );
    let Cbor::Bytes(auth_data) = cbor_get(&object, &cbor_text("authData")) else {
        panic!("authData is no byte string")
    };
    let id = unb64(credential["id"].as_str().unwrap());
    let attested = &auth_data[AUTH_DATA_HEADER..];
    assert_eq!(&attested[..16], &[0; 16], "AAGUID");
    let id_len = usize::from(u16::from_be_bytes([attested[16], attested[17]]));
    assert_eq!(&attested[18..18 + id_len], id.as_slice());
    let mut rest = &attested[18 + id_len..];
    let cose: Cbor = ciborium::from_reader(&mut rest).unwrap();
    assert!(rest.is_empty(), "bytes after the COSE key");
    let Cbor::Map(entries) = &cose else {
        panic!("the COSE key is no map")
    };
    let keys: Vec<&Cbor> = entries.iter().map(|(key, _)| key).collect();
    let expected = [1, 3, -1, -2, -3].map(cbor_int);
    assert_eq!(keys, expected.iter().collect::<Vec<_>>(), "COSE key order");
    assert_eq!(cbor_get(&cose, &cbor_int(1)), &cbor_int(2), "kty EC2");
    assert_eq!(cbor_get(&cose, &cbor_int(3)), &cbor_int(-7), "alg ES256");
    assert_eq!(cbor_get(&cose, &cbor_int(-1)), &cbor_int(1), "crv P-256");
    let (Cbor::Bytes(x), Cbor::Bytes(y)) = (
        cbor_get(&cose, &cbor_int(-2)),
        cbor_get(&cose, &cbor_int(-3)),
    ) else {
        panic!("coordinates are no byte strings")
    };
    assert_eq!((x.len(), y.len()), (32, 32));
    let point = [&[0x04][..], x, y].concat();
    (
        auth_data.clone(),
        VerifyingKey::from_sec1_bytes(&point).unwrap(),
    )
}

/// An assertion's authenticator data, and whether its signature verifies
/// with `key` over the authenticator data and the hash of the client data.
fn check_assertion(assertion: &Value, key: &VerifyingKey) -> (Vec<u8>, bool) {
    let response = &assertion["response"];
    let auth_data = unb64(response["authenticatorData"].as_str().unwrap());
    let client_data = unb64(response["clientDataJSON"].as_str().unwrap());
    let signature = unb64(response["signature"].as_str().unwrap());
    let signature = DerSignature::from_bytes(&signature).unwrap();
    let signed = [auth_data.as_slice(), &Sha256::digest(&client_data)].concat();
    (auth_data, key.verify(&signed, &signature).is_ok())
}

#[test]
fn authenticator_registers_with_attestation_none_and_an_es256_cose_key() {
    let mut authenticator = Authenticator::new(TEST_ORIGIN);
    let (handle, challenge) = ([7; 16], [9; 32]);
    let credential = authenticator.create(&creation_options("localhost", &handle, &challenge));

    let id = credential["id"].as_str().unwrap();
    assert_eq!(unb64(id).len(), 32);
    assert_eq!(credential["rawId"], id);
    assert_eq!(credential["type"], "public-key");
    assert_eq!(credential["extensions"], json!({}));
    for field in ["clientDataJSON", "attestationObject"] {
        let text = credential["response"][field].as_str().unwrap();
        assert!(!text.contains(['=', '+', '/']), "{field}: {text}");
    }
    assert_eq!(
        client_data(&credential),
        json!({
            "type": "webauthn.create",
            "challenge": b64(&challenge),
            "origin": TEST_ORIGIN,
            "crossOrigin": false,
        })
    );
    let (auth_data, key) = parse_registration(&credential);
    assert_eq!(&auth_data[..32], Sha256::digest(b"localhost").as_slice());
    assert_eq!(auth_data[32], UP | UV | AT);
    assert_eq!(&auth_data[33..37], &[0; 4], "sign count");
    let kept = authenticator.credential(id);
    assert_eq!(key, kept.verifying_key());
    assert_eq!(kept.user_handle(), &handle);
    assert_eq!(kept.rp_id(), "localhost");
}

#[test]
fn authenticator_assertions_verify_with_the_registered_key() {
    let mut authenticator = Authenticator::new(TEST_ORIGIN);
    let handle = [3; 16];
    let credential = authenticator.create(&creation_options("localhost", &handle, &[1; 32]));
    let (_, key) = parse_registration(&credential);

    let challenge = [5; 32];
    let assertion = authenticator.get(&request_options("localhost", &challenge));
    assert_eq!(assertion["id"], credential["id"]);
    assert_eq!(assertion["rawId"], credential["id"]);
    assert_eq!(assertion["type"], "public-key");
    assert_eq!(assertion["extensions"], json!({}));
    assert_eq!(
        assertion["response"]["userHandle"].as_str(),
        Some(b64(&handle).as_str())
    );
    assert_eq!(
        client_data(&assertion),
        json!({
            "type": "webauthn.get",
            "challenge": b64(&challenge),
            "origin": TEST_ORIGIN,
            "crossOrigin": false,
        })
    );
    let (auth_data, verifies) = check_assertion(&assertion, &key);
    assert!(verifies);
    assert_eq!(auth_data.len(), AUTH_DATA_HEADER);
    assert_eq!(&auth_data[..32], Sha256::digest(b"localhost").as_slice());
    assert_eq!(auth_data[32], UP | UV);
    assert_eq!(&auth_data[33..], &[0; 4]);
}

#[test]
fn authenticator_synced_credentials_carry_be_and_bs() {
    let mut authenticator = Authenticator::new(TEST_ORIGIN);
    let options = creation_options("localhost", &[1; 16], &[2; 32]);
    let credential = authenticator.create_with(&options, Backup::Synced, None);
    let (auth_data, key) = parse_registration(&credential);
    assert_eq!(auth_data[32], UP | UV | AT | BE | BS);
    let assertion = authenticator.get(&request_options("localhost", &[4; 32]));
    let (auth_data, verifies) = check_assertion(&assertion, &key);
    assert!(verifies);
    assert_eq!(auth_data[32], UP | UV | BE | BS);
}

#[test]
fn authenticator_tampering_breaks_what_it_says_and_only_that() {
    let mut authenticator = Authenticator::new(TEST_ORIGIN);
    let credential = authenticator.create(&creation_options("localhost", &[1; 16], &[2; 32]));
    let id = credential["id"].as_str().unwrap();
    let (_, key) = parse_registration(&credential);
    let challenge = [6; 32];
    let options = request_options("localhost", &challenge);

    let wrong = authenticator.get_with(&options, id, Some(Tamper::Signature));
    let (_, verifies) = check_assertion(&wrong, &key);
    assert!(!verifies, "a tampered signature verified");
    assert_eq!(client_data(&wrong)["challenge"], b64(&challenge));

    let wrong = authenticator.get_with(&options, id, Some(Tamper::Challenge));
    assert_ne!(client_data(&wrong)["challenge"], b64(&challenge));
    assert_eq!(client_data(&wrong)["origin"], TEST_ORIGIN);
    assert!(check_assertion(&wrong, &key).1, "still signed");

    let wrong = authenticator.get_with(&options, id, Some(Tamper::Origin));
    assert_eq!(client_data(&wrong)["origin"], FOREIGN_ORIGIN);
    assert_eq!(client_data(&wrong)["challenge"], b64(&challenge));

    let wrong = authenticator.get_with(&options, id, Some(Tamper::NoUserVerification));
    let (auth_data, verifies) = check_assertion(&wrong, &key);
    assert!(verifies);
    assert_eq!(auth_data[32], UP);

    // A tampered registration is not kept.
    let options = creation_options("localhost", &[1; 16], &[8; 32]);
    let wrong = authenticator.create_with(&options, Backup::DeviceBound, Some(Tamper::Origin));
    assert_eq!(client_data(&wrong)["origin"], FOREIGN_ORIGIN);
    assert_eq!(authenticator.credentials().len(), 1);
}

#[test]
fn authenticator_answers_with_the_chosen_credential_of_the_rp() {
    let mut authenticator = Authenticator::new(TEST_ORIGIN);
    let first = authenticator.create(&creation_options("localhost", &[1; 16], &[0; 32]));
    let second = authenticator.create(&creation_options("localhost", &[2; 16], &[0; 32]));
    let elsewhere = authenticator.create(&creation_options("example.org", &[3; 16], &[0; 32]));
    let options = request_options("localhost", &[9; 32]);

    // The newest of the rp id unless told otherwise.
    assert_eq!(authenticator.get(&options)["id"], second["id"]);
    let first_id = first["id"].as_str().unwrap();
    let chosen = authenticator.get_with(&options, first_id, None);
    assert_eq!(chosen["id"], first_id);
    assert_eq!(chosen["response"]["userHandle"], b64(&[1; 16]));
    let (_, key) = parse_registration(&first);
    assert!(check_assertion(&chosen, &key).1);
    let other_rp = request_options("example.org", &[9; 32]);
    assert_eq!(authenticator.get(&other_rp)["id"], elsewhere["id"]);

    // A clone carries the passkeys to another browser.
    let copy = authenticator.clone();
    assert!(check_assertion(&copy.get_with(&options, first_id, None), &key).1);
    authenticator.forget(first_id);
    assert_eq!(authenticator.credentials().len(), 2);
    assert_eq!(copy.credentials().len(), 3);
}

#[test]
#[should_panic(expected = "do not allow")]
fn authenticator_answers_only_for_allowed_credentials() {
    let mut authenticator = Authenticator::new(TEST_ORIGIN);
    authenticator.create(&creation_options("localhost", &[1; 16], &[0; 32]));
    let mut options = request_options("localhost", &[9; 32]);
    options["publicKey"]["allowCredentials"] =
        json!([{ "type": "public-key", "id": b64(&[0; 32]) }]);
    authenticator.get(&options);
}
