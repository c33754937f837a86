//! The structured header fields of device-bound sessions (RFC 9651), read
//! and written with `sfv`.
//!
//! Read: `Sec-Secure-Session-Id` and `Secure-Session-Response` are each an
//! sf-string item whose parameters are ignored; `Secure-Session-Skipped`
//! is a list of reason tokens, each naming its session in a
//! `session_identifier` parameter. Written:
//! `Secure-Session-Registration`, a list of one inner list of algorithm
//! tokens with `path` and `challenge` parameters, and
//! `Secure-Session-Challenge`, an sf-string with an `id` parameter. An
//! sf-string holds printable ASCII only (0x20 to 0x7E); what holds anything
//! else cannot be written, and these functions answer `None`.

use std::convert::Infallible;

use sfv::{
    key_ref,
    visitor::{
        EntryVisitor, Ignored, InnerListVisitor, ItemVisitor, ListVisitor, ParameterVisitor,
    },
    BareItemFromInput, GenericBareItem, ItemSerializer, KeyRef, ListSerializer, Parser, StringRef,
    TokenRef,
};

const ID: &KeyRef = key_ref("id");
const PATH: &KeyRef = key_ref("path");
const CHALLENGE: &KeyRef = key_ref("challenge");
const SESSION_IDENTIFIER: &KeyRef = key_ref("session_identifier");

/// The text of a field value that is one sf-string item, its parameters
/// ignored: `"session-id"` or `"c";id="s"`. Anything else (a token, a
/// number, a list, trailing text, bytes outside printable ASCII) is `None`.
pub(crate) fn parse_sf_string(value: &[u8]) -> Option<String> {
    let mut text = None;
    Parser::new(value)
        .parse_item_with_visitor(StringItem(&mut text))
        .ok()?;
    text
}

/// The JWT of a `Secure-Session-Response` (or of a registration request's
/// header): the draft's sf-string form, or a bare JWT, which some clients
/// send (base64url characters and dots only). Whether it is a valid proof
/// is for [`proof`](super::proof) to say.
pub(crate) fn jwt_from_header(value: &[u8]) -> Option<String> {
    if let Some(jwt) = parse_sf_string(value) {
        return Some(jwt);
    }
    let bare = !value.is_empty()
        && value
            .iter()
            .all(|&byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
    // All ASCII, so the bytes are UTF-8.
    bare.then(|| String::from_utf8_lossy(value).into_owned())
}

/// `text` as an sf-string: quoted, `"` and `\` escaped. `None` if it holds
/// anything but printable ASCII. (The headers the layer writes are built
/// whole by [`registration_header`] and [`challenge_header`]; the tests
/// write single strings.)
#[cfg(test)]
pub(crate) fn sf_string(text: &str) -> Option<String> {
    let text = StringRef::from_str(text).ok()?;
    Some(ItemSerializer::new().bare_item(text).finish())
}

/// A `Secure-Session-Registration` value:
/// `(ES256 RS256);path="/dbsc/register";challenge="…"`. `None` without an
/// algorithm, with an algorithm that is no sf-token, or with a path or
/// challenge that is no sf-string.
pub(crate) fn registration_header(
    algorithms: &[&str],
    path: &str,
    challenge: &str,
) -> Option<String> {
    if algorithms.is_empty() {
        return None;
    }
    let algorithms = algorithms
        .iter()
        .map(|algorithm| TokenRef::from_str(algorithm).ok())
        .collect::<Option<Vec<_>>>()?;
    let path = StringRef::from_str(path).ok()?;
    let challenge = StringRef::from_str(challenge).ok()?;
    let mut list = ListSerializer::new();
    {
        let mut inner = list.inner_list();
        for algorithm in algorithms {
            _ = inner.bare_item(algorithm);
        }
        _ = inner
            .finish()
            .parameter(PATH, path)
            .parameter(CHALLENGE, challenge);
    }
    list.finish()
}

/// A `Secure-Session-Challenge` value: `"challenge";id="session id"`.
/// `None` if either is no sf-string.
pub(crate) fn challenge_header(challenge: &str, session_id: &str) -> Option<String> {
    let challenge = StringRef::from_str(challenge).ok()?;
    let session_id = StringRef::from_str(session_id).ok()?;
    Some(
        ItemSerializer::new()
            .bare_item(challenge)
            .parameter(ID, session_id)
            .finish(),
    )
}

/// The session identifiers a `Secure-Session-Skipped` value names: for
/// each reason token, its `session_identifier` string. A value that does
/// not parse names none.
pub(crate) fn skipped_sessions(value: &[u8]) -> Vec<String> {
    let mut ids = Vec::new();
    match Parser::new(value).parse_list_with_visitor(&mut Skipped(&mut ids)) {
        Ok(()) => ids,
        Err(_) => Vec::new(),
    }
}

/// Collects the session identifiers of a `Secure-Session-Skipped` list.
struct Skipped<'a>(&'a mut Vec<String>);

impl<'de> ListVisitor<'de> for Skipped<'_> {
    type Error = Infallible;

    fn entry(&mut self) -> Result<impl EntryVisitor<'de>, Self::Error> {
        Ok(SkippedEntry(self.0))
    }
}

struct SkippedEntry<'a>(&'a mut Vec<String>);

impl<'de> ItemVisitor<'de> for SkippedEntry<'_> {
    type Error = Infallible;

    fn bare_item(
        self,
        bare_item: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de>, Self::Error> {
        Ok(NamedSession {
            ids: self.0,
            // A reason is a token; anything else names no session.
            reason: matches!(bare_item, GenericBareItem::Token(_)),
            id: None,
        })
    }
}

impl<'de> EntryVisitor<'de> for SkippedEntry<'_> {
    fn inner_list(self) -> Result<impl InnerListVisitor<'de>, Self::Error> {
        Ok(Ignored)
    }
}

/// The `session_identifier` of one skipped entry: the last one given, as
/// RFC 9651 has duplicate parameters.
struct NamedSession<'a> {
    ids: &'a mut Vec<String>,
    reason: bool,
    id: Option<String>,
}

impl<'de> ParameterVisitor<'de> for NamedSession<'_> {
    type Error = Infallible;

    fn parameter(
        &mut self,
        key: &'de KeyRef,
        value: BareItemFromInput<'de>,
    ) -> Result<(), Self::Error> {
        if key == SESSION_IDENTIFIER {
            self.id = match value {
                GenericBareItem::String(text) => Some(text.as_str().to_owned()),
                _ => None,
            };
        }
        Ok(())
    }

    fn finish(self) -> Result<(), Self::Error> {
        if let (true, Some(id)) = (self.reason, self.id) {
            self.ids.push(id);
        }
        Ok(())
    }
}

/// Keeps the item's text if it is an sf-string; its parameters are parsed
/// (a malformed one still fails the field) and dropped.
struct StringItem<'a>(&'a mut Option<String>);

impl<'de> ItemVisitor<'de> for StringItem<'_> {
    type Error = std::convert::Infallible;

    fn bare_item(
        self,
        bare_item: BareItemFromInput<'de>,
    ) -> Result<impl ParameterVisitor<'de>, Self::Error> {
        if let GenericBareItem::String(text) = bare_item {
            *self.0 = Some(text.as_str().to_owned());
        }
        Ok(Ignored)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_drafts_request_fields_parse() {
        // `Sec-Secure-Session-Id: "session-id"`
        assert_eq!(
            parse_sf_string(b"\"session-id\"").as_deref(),
            Some("session-id")
        );
        // Parameters are ignored.
        assert_eq!(
            parse_sf_string(br#""new challenge";id="my session""#).as_deref(),
            Some("new challenge")
        );
        assert_eq!(parse_sf_string(br#""a";b;c=1;d=?0"#).as_deref(), Some("a"));
        // Escapes and surrounding spaces.
        assert_eq!(
            parse_sf_string(br#"  "a\"b\\c"  "#).as_deref(),
            Some(r#"a"b\c"#)
        );
        assert_eq!(parse_sf_string(b"\"\"").as_deref(), Some(""));
    }

    #[test]
    fn skipped_refreshes_name_their_sessions() {
        assert_eq!(
            skipped_sessions(
                b"unreachable;session_identifier=\"123\", quota_exceeded;session_identifier=\"456\""
            ),
            ["123", "456"]
        );
        assert_eq!(
            skipped_sessions(b"server_error;session_identifier=\"a\";session_identifier=\"b\""),
            ["b"]
        );
        for value in [
            &b"unreachable"[..],
            b"unreachable;session_identifier=123",
            b"\"unreachable\";session_identifier=\"123\"",
            b"(unreachable);session_identifier=\"123\"",
            b"unreachable;session_identifier=\"123\", !",
            b"",
        ] {
            assert!(
                skipped_sessions(value).is_empty(),
                "{}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn anything_but_one_sf_string_is_refused() {
        for value in [
            &b""[..],
            b"token",
            b"12",
            b"?1",
            b":AAAA:",
            b"\"a\", \"b\"",
            b"(\"a\")",
            b"\"a\" trailing",
            b"\"unterminated",
            b"\"bad \\n escape\"",
            b"\"tab\there\"",
            "\"é\"".as_bytes(),
            b"\"a\";=x",
            b"\"a\";Id=\"x\"",
            b"\"a\"\t",
        ] {
            assert_eq!(
                parse_sf_string(value),
                None,
                "{}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn a_jwt_comes_quoted_or_bare() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJjIn0.c2ln-_";
        assert_eq!(
            jwt_from_header(format!("\"{jwt}\"").as_bytes()).as_deref(),
            Some(jwt)
        );
        assert_eq!(
            jwt_from_header(format!("\"{jwt}\";x=1").as_bytes()).as_deref(),
            Some(jwt)
        );
        assert_eq!(jwt_from_header(jwt.as_bytes()).as_deref(), Some(jwt));
        for value in [
            &b""[..],
            b"a b",
            b"a=b",
            b"a+b",
            b"\"a",
            b"a,b",
            "é".as_bytes(),
        ] {
            assert_eq!(
                jwt_from_header(value),
                None,
                "{}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn response_fields_are_written_as_the_draft_shows() {
        assert_eq!(
            registration_header(&["ES256", "RS256"], "/dbsc/register", "cv").as_deref(),
            Some(r#"(ES256 RS256);path="/dbsc/register";challenge="cv""#)
        );
        assert_eq!(
            registration_header(&["ES256"], "reg", "c\"v").as_deref(),
            Some(r#"(ES256);path="reg";challenge="c\"v""#)
        );
        assert_eq!(
            challenge_header("new challenge", "my session").as_deref(),
            Some(r#""new challenge";id="my session""#)
        );
        assert_eq!(sf_string(r#"a"b\c"#).as_deref(), Some(r#""a\"b\\c""#));
        assert_eq!(sf_string("").as_deref(), Some(r#""""#));
    }

    #[test]
    fn what_an_sf_string_cannot_hold_is_not_written() {
        assert_eq!(sf_string("line\nbreak"), None);
        assert_eq!(sf_string("café"), None);
        assert_eq!(sf_string("\u{7f}"), None);
        assert_eq!(challenge_header("c", "tab\t"), None);
        assert_eq!(challenge_header("c\r\n", "s"), None);
        assert_eq!(registration_header(&[], "/r", "c"), None);
        assert_eq!(registration_header(&["ES 256"], "/r", "c"), None);
        assert_eq!(registration_header(&["256"], "/r", "c"), None);
        assert_eq!(registration_header(&["ES256"], "/r\n", "c"), None);
        assert_eq!(registration_header(&["ES256"], "/r", "ç"), None);
    }

    proptest! {
        #[test]
        fn printable_ascii_round_trips(text in "[ -~]{0,200}", id in "[ -~]{0,40}") {
            let written = sf_string(&text).unwrap();
            prop_assert_eq!(parse_sf_string(written.as_bytes()), Some(text.clone()));
            prop_assert_eq!(jwt_from_header(written.as_bytes()), Some(text.clone()));
            let challenge = challenge_header(&text, &id).unwrap();
            prop_assert_eq!(parse_sf_string(challenge.as_bytes()), Some(text.clone()));
        }

        #[test]
        fn anything_else_is_not_written(text in ".*[^ -~].*") {
            prop_assert_eq!(sf_string(&text), None);
        }

        #[test]
        fn arbitrary_bytes_never_panic(value in prop::collection::vec(any::<u8>(), 0..300)) {
            if let Some(text) = parse_sf_string(&value) {
                // What parses is printable ASCII, so it can be written back.
                prop_assert!(sf_string(&text).is_some());
            }
            if let Some(jwt) = jwt_from_header(&value) {
                prop_assert!(jwt.bytes().all(|byte| (b' '..=b'~').contains(&byte)));
            }
        }
    }
}
