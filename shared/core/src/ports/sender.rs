//! The delivery port: how a code reaches a phone or a mailbox.

use std::sync::Arc;

use async_trait::async_trait;

use crate::base::channel::Pipe;
use crate::base::mask::{mask_email, mask_phone};
use crate::base::otp::OtpCode;

/// One message carrying a code.
#[derive(Debug, Clone)]
pub struct OtpMessage {
    pub pipe: Pipe,
    /// E.164 number or email address.
    pub to: String,
    pub code: OtpCode,
    /// BCP-47 language from `Accept-Language` (templates fall back to `en`).
    pub locale: String,
    /// What the code is for (`auth`, `reset`, …).
    pub purpose: &'static str,
    /// How long the code lives, in seconds, when not `OTP_TTL_SECONDS`
    /// (integrator sessions choose their own expiry).
    pub ttl: Option<i64>,
}

impl OtpMessage {
    pub fn masked_to(&self) -> String {
        match self.pipe {
            Pipe::Email => mask_email(&self.to),
            _ => mask_phone(&self.to),
        }
    }
}

/// An invitation to claim an account (integrator invites): a link, no code.
#[derive(Debug, Clone)]
pub struct InviteMessage {
    /// WhatsApp or SMS.
    pub pipe: Pipe,
    /// E.164 number.
    pub to: String,
    /// The claim link.
    pub link: String,
    pub locale: String,
}

/// What a notice tells the user. Never a code or a link that signs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The PIN was reset with codes to the email and the phone; every
    /// other session ended.
    PinReset,
}

impl Notice {
    pub fn as_str(self) -> &'static str {
        match self {
            Notice::PinReset => "pin_reset",
        }
    }
}

/// A security notice to one of the user's channels.
#[derive(Debug, Clone)]
pub struct NoticeMessage {
    /// SMS or email.
    pub pipe: Pipe,
    /// E.164 number or email address.
    pub to: String,
    pub notice: Notice,
    pub locale: String,
}

#[derive(Debug, thiserror::Error)]
#[error("delivery over {pipe:?} failed: {reason}")]
pub struct SendError {
    pub pipe: Pipe,
    /// Never contains the code, a token or the full destination.
    pub reason: String,
}

#[async_trait]
pub trait Sender: Send + Sync {
    async fn send(&self, msg: &OtpMessage) -> Result<(), SendError>;

    /// Sends an invite's claim link; senders that cannot refuse it.
    async fn send_invite(&self, msg: &InviteMessage) -> Result<(), SendError> {
        Err(SendError {
            pipe: msg.pipe,
            reason: "this sender does not send invites".into(),
        })
    }

    /// Sends a security notice; senders that cannot refuse it.
    async fn send_notice(&self, msg: &NoticeMessage) -> Result<(), SendError> {
        Err(SendError {
            pipe: msg.pipe,
            reason: "this sender does not send notices".into(),
        })
    }
}

/// Local mode's sender: prints the masked destination and the code on stderr.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConsoleSender;

#[async_trait]
impl Sender for ConsoleSender {
    async fn send(&self, msg: &OtpMessage) -> Result<(), SendError> {
        eprintln!(
            "[code] {} to {}: {} ({})",
            msg.pipe.as_str(),
            msg.masked_to(),
            msg.code.expose(),
            msg.purpose
        );
        Ok(())
    }

    async fn send_invite(&self, msg: &InviteMessage) -> Result<(), SendError> {
        eprintln!(
            "[invite] {} to {}: {}",
            msg.pipe.as_str(),
            mask_phone(&msg.to),
            msg.link
        );
        Ok(())
    }

    async fn send_notice(&self, msg: &NoticeMessage) -> Result<(), SendError> {
        let to = match msg.pipe {
            Pipe::Email => mask_email(&msg.to),
            _ => mask_phone(&msg.to),
        };
        eprintln!("[notice] {} to {to}: {}", msg.pipe.as_str(), msg.notice.as_str());
        Ok(())
    }
}

/// A sender that records messages (tests).
#[derive(Debug, Default)]
pub struct RecordingSender {
    pub sent: std::sync::Mutex<Vec<OtpMessage>>,
    pub invites: std::sync::Mutex<Vec<InviteMessage>>,
    pub notices_sent: std::sync::Mutex<Vec<NoticeMessage>>,
    /// Pipes that fail.
    pub failing: std::sync::Mutex<Vec<Pipe>>,
}

impl RecordingSender {
    pub fn messages(&self) -> Vec<OtpMessage> {
        self.sent.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn notices(&self) -> Vec<NoticeMessage> {
        self.notices_sent.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The code of the last message sent to `to`.
    pub fn last_code_to(&self, to: &str) -> Option<String> {
        self.messages()
            .iter()
            .rev()
            .find(|m| m.to == to)
            .map(|m| m.code.expose().to_owned())
    }

    pub fn fail(&self, pipe: Pipe) {
        if let Ok(mut f) = self.failing.lock() {
            f.push(pipe);
        }
    }

    /// `pipe` delivers again.
    pub fn heal(&self, pipe: Pipe) {
        if let Ok(mut f) = self.failing.lock() {
            f.retain(|p| *p != pipe);
        }
    }

    /// The error of a send over a pipe set to fail.
    fn refuse_failing(&self, pipe: Pipe) -> Result<(), SendError> {
        if self.failing.lock().map(|f| f.contains(&pipe)).unwrap_or(false) {
            return Err(SendError {
                pipe,
                reason: "failing on purpose".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Sender for RecordingSender {
    async fn send(&self, msg: &OtpMessage) -> Result<(), SendError> {
        self.refuse_failing(msg.pipe)?;
        if let Ok(mut v) = self.sent.lock() {
            v.push(msg.clone());
        }
        Ok(())
    }

    async fn send_invite(&self, msg: &InviteMessage) -> Result<(), SendError> {
        self.refuse_failing(msg.pipe)?;
        if let Ok(mut v) = self.invites.lock() {
            v.push(msg.clone());
        }
        Ok(())
    }

    async fn send_notice(&self, msg: &NoticeMessage) -> Result<(), SendError> {
        self.refuse_failing(msg.pipe)?;
        if let Ok(mut v) = self.notices_sent.lock() {
            v.push(msg.clone());
        }
        Ok(())
    }
}

/// Routes each message to the sender of its pipe; a pipe without one fails
/// to deliver.
#[derive(Clone, Default)]
pub struct MultiSender {
    pub sms: Option<Arc<dyn Sender>>,
    pub whatsapp: Option<Arc<dyn Sender>>,
    pub email: Option<Arc<dyn Sender>>,
}

impl MultiSender {
    fn route(&self, pipe: Pipe) -> Option<&Arc<dyn Sender>> {
        match pipe {
            Pipe::Sms => self.sms.as_ref(),
            Pipe::Whatsapp => self.whatsapp.as_ref(),
            Pipe::Email => self.email.as_ref(),
        }
    }
}

#[async_trait]
impl Sender for MultiSender {
    async fn send(&self, msg: &OtpMessage) -> Result<(), SendError> {
        match self.route(msg.pipe) {
            Some(sender) => sender.send(msg).await,
            None => Err(SendError {
                pipe: msg.pipe,
                reason: "no sender is configured for this pipe".into(),
            }),
        }
    }

    async fn send_invite(&self, msg: &InviteMessage) -> Result<(), SendError> {
        match self.route(msg.pipe) {
            Some(sender) => sender.send_invite(msg).await,
            None => Err(SendError {
                pipe: msg.pipe,
                reason: "no sender is configured for this pipe".into(),
            }),
        }
    }

    async fn send_notice(&self, msg: &NoticeMessage) -> Result<(), SendError> {
        match self.route(msg.pipe) {
            Some(sender) => sender.send_notice(msg).await,
            None => Err(SendError {
                pipe: msg.pipe,
                reason: "no sender is configured for this pipe".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(pipe: Pipe) -> OtpMessage {
        OtpMessage {
            pipe,
            to: "+255745051250".into(),
            code: OtpCode::fixed("123456"),
            locale: "en".into(),
            purpose: "auth",
            ttl: None,
        }
    }

    #[tokio::test]
    async fn multi_sender_routes_by_pipe_and_fails_a_pipe_without_a_sender() {
        let sms = Arc::new(RecordingSender::default());
        let email = Arc::new(RecordingSender::default());
        let multi = MultiSender {
            sms: Some(sms.clone()),
            whatsapp: None,
            email: Some(email.clone()),
        };
        assert!(multi.send(&message(Pipe::Sms)).await.is_ok());
        assert!(multi.send(&message(Pipe::Email)).await.is_ok());
        let e = multi.send(&message(Pipe::Whatsapp)).await.err();
        assert_eq!(e.map(|e| e.pipe), Some(Pipe::Whatsapp));
        assert_eq!((sms.messages().len(), email.messages().len()), (1, 1));
        assert_eq!(sms.messages()[0].pipe, Pipe::Sms);
    }
}
