//! The message rules: what a message is, and which phone numbers and contents Qubit accepts.
//!
//! [`PhoneNumber`] and [`Content`] check themselves when built, so an invalid value cannot
//! reach the store or the webhook.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// The most characters a message's content may hold, counted as Unicode scalar values.
pub const MAX_CONTENT_CHARS: usize = 500;

/// A phone number in E.164 form, such as `+905321234567`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPhoneNumber {
    #[error(
        "must be an international number starting with + and a country code, such as +905321234567"
    )]
    NotInternational,
    #[error("may hold only digits, spaces and the separators - . ( ) / after the +")]
    UnexpectedCharacter,
    #[error("is not a phone number: {0}")]
    Unparsable(String),
    #[error("is not a valid number for its country")]
    NotValid,
}

impl PhoneNumber {
    /// Parses an international number in any common notation (spaces, dashes, brackets)
    /// and normalises it to E.164.
    pub fn parse(raw: &str) -> Result<Self, InvalidPhoneNumber> {
        let raw = raw.trim();

        // Without a leading + the country is a guess; a message sent to the wrong country
        // is worse than a refused request.
        if !raw.starts_with('+') {
            return Err(InvalidPhoneNumber::NotInternational);
        }

        // libphonenumber reads letters as keypad digits (O as 6, l as 5) and drops
        // extensions: a typo would reach another person. Only plain notation gets through.
        let plain = |c: char| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')' | '/');
        if !raw[1..].chars().all(plain) {
            return Err(InvalidPhoneNumber::UnexpectedCharacter);
        }

        let number = phonenumber::parse(None, raw)
            .map_err(|err| InvalidPhoneNumber::Unparsable(err.to_string()))?;
        if !phonenumber::is_valid(&number) {
            return Err(InvalidPhoneNumber::NotValid);
        }

        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        Ok(Self(e164))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message's text: 1 to [`MAX_CONTENT_CHARS`] characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidContent {
    #[error("must not be empty or only whitespace")]
    Blank,
    #[error("must be at most {MAX_CONTENT_CHARS} characters, got {0}")]
    TooLong(usize),
    #[error("must not contain the NUL character (U+0000)")]
    ContainsNul,
}

impl Content {
    pub fn parse(raw: String) -> Result<Self, InvalidContent> {
        if raw.chars().all(is_invisible) {
            return Err(InvalidContent::Blank);
        }

        // Characters, not bytes: 500 Turkish letters or emoji are 500 characters.
        let chars = raw.chars().count();
        if chars > MAX_CONTENT_CHARS {
            return Err(InvalidContent::TooLong(chars));
        }

        // PostgreSQL text cannot hold NUL; refusing it here keeps it a 4xx, not a 500.
        if raw.contains('\0') {
            return Err(InvalidContent::ContainsNul);
        }

        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whitespace, control characters, and the format characters that print nothing (zero-width
/// spaces and joiners, direction marks, the BOM, Hangul and Braille blanks): text made only of
/// these looks empty on a phone.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
        )
}

/// A message that passed the rules and may be stored.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub phone_number: PhoneNumber,
    pub content: Content,
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    /// Waiting to be sent, or between attempts.
    Pending,
    /// The webhook accepted it.
    Sent,
    /// Every allowed attempt failed, or the webhook refused it for good.
    Failed,
    /// Withdrawn by a client before it was sent.
    Cancelled,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "sent" => Some(Self::Sent),
            "failed" => Some(Self::Failed),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// A stored message as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: Uuid,
    pub phone_number: String,
    pub content: String,
    pub status: MessageStatus,
    /// Delivery attempts made so far.
    pub attempts: i32,
    /// The webhook's `messageId` once it accepted the message.
    pub message_id: Option<String>,
    /// Why the latest attempt failed, if it did.
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due, while the message is pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the message was sent, failed for good or cancelled.
    pub processed_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_in_several_countries_formats_are_normalised_to_e164() {
        let cases = [
            ("+905321234567", "+905321234567"),
            ("+90 532 123 45 67", "+905321234567"),
            ("+1 (415) 555-2671", "+14155552671"),
            ("+44 20 7946 0958", "+442079460958"),
            ("+49 30 901820", "+4930901820"),
            ("+81 3-1234-5678", "+81312345678"),
            ("  +33 6 12 34 56 78 ", "+33612345678"),
        ];
        for (raw, want) in cases {
            let number = PhoneNumber::parse(raw).unwrap_or_else(|err| panic!("{raw}: {err}"));
            assert_eq!(number.as_str(), want, "{raw}");
        }
    }

    #[test]
    fn a_number_without_a_country_code_is_refused() {
        assert_eq!(
            PhoneNumber::parse("5321234567"),
            Err(InvalidPhoneNumber::NotInternational)
        );
        assert_eq!(
            PhoneNumber::parse("05321234567"),
            Err(InvalidPhoneNumber::NotInternational)
        );
    }

    #[test]
    fn letters_and_extensions_are_refused_rather_than_read_as_digits() {
        for raw in [
            "+44 20 7946 O958",
            "+1 415 555 267l",
            "+1-800-FLOWERS",
            "+905321234567 ext. 12",
            "+14155552671x12",
            "+14155552671#12",
            "++905321234567",
            "+905321234567\u{200B}",
        ] {
            assert_eq!(
                PhoneNumber::parse(raw),
                Err(InvalidPhoneNumber::UnexpectedCharacter),
                "{raw}"
            );
        }
    }

    #[test]
    fn numbers_that_cannot_exist_are_refused() {
        for raw in [
            "+",
            "+90",
            "+90 532",
            "+999 1234567",
            "+90 532 123 45 67 89 01",
            "+abc",
        ] {
            assert!(PhoneNumber::parse(raw).is_err(), "{raw} was accepted");
        }
    }

    #[test]
    fn content_of_500_multibyte_characters_is_accepted() {
        for unit in ["ş", "🚀", "é", "a"] {
            let text = unit.repeat(MAX_CONTENT_CHARS);
            assert!(Content::parse(text).is_ok(), "500 x {unit}");
        }
    }

    #[test]
    fn content_of_501_characters_is_refused_with_its_length() {
        let text = "ş".repeat(MAX_CONTENT_CHARS + 1);
        assert_eq!(Content::parse(text), Err(InvalidContent::TooLong(501)));
    }

    #[test]
    fn blank_content_is_refused() {
        for text in [
            "",
            " ",
            "\n\t ",
            "\u{200B}\u{200D}",
            "\u{FEFF}\u{2060}",
            "\u{3164}",
            "\u{1}\u{7}",
        ] {
            assert_eq!(Content::parse(text.to_owned()), Err(InvalidContent::Blank));
        }
    }

    #[test]
    fn content_with_nul_is_refused() {
        assert_eq!(
            Content::parse("a\0b".to_owned()),
            Err(InvalidContent::ContainsNul)
        );
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in [
            MessageStatus::Pending,
            MessageStatus::Sent,
            MessageStatus::Failed,
            MessageStatus::Cancelled,
        ] {
            assert_eq!(MessageStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(MessageStatus::parse("all"), None);
    }
}
