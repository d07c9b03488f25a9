//! The events port (docs/DESIGN.md §6): what downstream systems (wallet
//! provisioning, webhooks) start from. An event carries the user object,
//! never a code or a token; [`crate::services::events::emit`] publishes
//! one without ever failing the user's request.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};

use crate::model::records::{User, UserObject};

/// The event types (docs/DESIGN.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum EventType {
    #[serde(rename = "user.registered")]
    UserRegistered,
    #[serde(rename = "user.onboarded")]
    UserOnboarded,
    #[serde(rename = "user.blocked")]
    UserBlocked,
    #[serde(rename = "session.revoked")]
    SessionRevoked,
    #[serde(rename = "session.reuse_detected")]
    SessionReuseDetected,
    #[serde(rename = "otp.verified")]
    OtpVerified,
    #[serde(rename = "invite.claimed")]
    InviteClaimed,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::UserRegistered => "user.registered",
            EventType::UserOnboarded => "user.onboarded",
            EventType::UserBlocked => "user.blocked",
            EventType::SessionRevoked => "session.revoked",
            EventType::SessionReuseDetected => "session.reuse_detected",
            EventType::OtpVerified => "otp.verified",
            EventType::InviteClaimed => "invite.claimed",
        }
    }
}

/// One event as published: `{"type", "id", "occurred_at", "user", "data"}`.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventType,
    /// `evt_` + 22 base62 characters: consumers de-duplicate on it.
    pub id: String,
    /// Epoch seconds.
    pub occurred_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserObject>,
    /// Event-specific fields (never a code, a token or a hash).
    pub data: Value,
}

impl Event {
    pub fn new(kind: EventType, user: Option<&User>, data: Value, now: i64) -> Self {
        let id = crate::base::ids::random_base62().unwrap_or_default();
        Self {
            kind,
            id: format!("evt_{id}"),
            occurred_at: now,
            user: user.map(UserObject::from),
            data,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| json!({"type": self.kind.as_str()}).to_string())
    }
}

/// Where events go (SNS in production; nowhere when `EVENTS_TOPIC_ARN` is unset).
#[async_trait]
pub trait Events: Send + Sync {
    /// Publishes one event; the error is a short reason for the log.
    async fn publish(&self, event: &Event) -> Result<(), String>;
}

/// Publishes nothing (no topic configured).
#[derive(Debug, Default)]
pub struct NoEvents;

#[async_trait]
impl Events for NoEvents {
    async fn publish(&self, _event: &Event) -> Result<(), String> {
        Ok(())
    }
}

/// Keeps every event (tests).
#[derive(Debug, Default)]
pub struct RecordingEvents {
    pub events: std::sync::Mutex<Vec<Event>>,
}

impl RecordingEvents {
    pub fn of(&self, kind: EventType) -> Vec<Event> {
        self.events
            .lock()
            .map(|v| v.iter().filter(|e| e.kind == kind).cloned().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Events for RecordingEvents {
    async fn publish(&self, event: &Event) -> Result<(), String> {
        if let Ok(mut v) = self.events.lock() {
            v.push(event.clone());
        }
        Ok(())
    }
}
