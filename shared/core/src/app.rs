//! The dependencies of a process (a Lambda cold start, or local mode),
//! built once and shared by reference, and [`Needs`]: what one function
//! declares it uses. A function's App holds only what it declared; asking
//! for anything else is an internal error, so a function that reads a
//! secret or sends a message it did not declare fails its tests (local
//! mode mounts every function with its own App) instead of quietly
//! holding more privilege than the deployment grants it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::base::config::Settings;
use crate::base::error::{Error, Result};
use crate::base::otp::Pepper;
use crate::base::tokens::KeyRing;
use crate::ports::clock::Clock;
use crate::ports::events::Events;
use crate::ports::id_tokens::IdTokenVerifier;
use crate::ports::metrics::{Metrics, StdoutMetrics};
use crate::ports::secrets::Live;
use crate::ports::sender::Sender;
use crate::ports::table::{Db, Table};

/// What a function uses, besides its settings, clock and metrics. The
/// deployment follows it: `template.yaml` and `deploy/iam.json` grant each
/// function exactly the secrets and actions its `Needs` imply (checked by
/// the deployment tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// The DynamoDB table.
    pub store: bool,
    /// The signing keys (`SIGNING_KEYS`): issuing or checking a JWT.
    pub signing_keys: bool,
    /// The OTP pepper (`OTP_PEPPER`): code hashes, and the key of the
    /// Argon2id hashes of passwords and PINs.
    pub otp_pepper: bool,
    /// The API-key pepper (`API_KEY_PEPPER`): integrator requests.
    pub api_key_pepper: bool,
    /// SMS, WhatsApp and email (`SENDERS`; the WhatsApp token).
    pub senders: bool,
    /// The Google and Apple idToken checks.
    pub oauth: bool,
    /// The events topic (`EVENTS_TOPIC_ARN`).
    pub events: bool,
}

impl Needs {
    /// Nothing but settings, clock and metrics.
    pub const NOTHING: Needs = Needs {
        store: false,
        signing_keys: false,
        otp_pepper: false,
        api_key_pepper: false,
        senders: false,
        oauth: false,
        events: false,
    };

    /// Everything (local mode, before it hands each function its own).
    pub const ALL: Needs = Needs {
        store: true,
        signing_keys: true,
        otp_pepper: true,
        api_key_pepper: true,
        senders: true,
        oauth: true,
        events: true,
    };

    /// What either needs.
    pub const fn union(self, o: Needs) -> Needs {
        Needs {
            store: self.store || o.store,
            signing_keys: self.signing_keys || o.signing_keys,
            otp_pepper: self.otp_pepper || o.otp_pepper,
            api_key_pepper: self.api_key_pepper || o.api_key_pepper,
            senders: self.senders || o.senders,
            oauth: self.oauth || o.oauth,
            events: self.events || o.events,
        }
    }
}

fn undeclared(what: &str) -> Error {
    Error::internal(format!("{what} is not among this function's needs (app::Needs)"))
}

#[derive(Clone)]
pub struct App {
    pub settings: Settings,
    /// The table (an absent one when the function declares no store).
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    /// Where metric lines go (stdout as CloudWatch EMF by default).
    pub metrics: Arc<dyn Metrics>,
    /// Circuit-breaker thresholds per calling code, cached for 5 minutes.
    pub breaker: Arc<BreakerCache>,
    /// What this App was built for.
    pub needs: Needs,
    keys: Option<Arc<Live<KeyRing>>>,
    pepper: Option<Arc<Live<Pepper>>>,
    api_key_pepper: Option<Arc<Live<Pepper>>>,
    sender: Option<Arc<dyn Sender>>,
    events: Option<Arc<dyn Events>>,
    oauth: Option<Arc<dyn IdTokenVerifier>>,
}

impl App {
    /// An App with every dependency but the optional ones (the API-key
    /// pepper, events, OAuth: see the `with_*` methods), declared as
    /// needing them all.
    pub fn new(
        settings: Settings,
        table: Arc<dyn Table>,
        clock: Arc<dyn Clock>,
        keys: Arc<KeyRing>,
        pepper: Pepper,
        sender: Arc<dyn Sender>,
    ) -> Self {
        Self {
            settings,
            db: Db::new(table),
            clock,
            metrics: Arc::new(StdoutMetrics),
            breaker: Arc::new(BreakerCache::default()),
            needs: Needs::ALL,
            keys: Some(Arc::new(Live::from_arc(keys))),
            pepper: Some(Arc::new(Live::new(pepper))),
            api_key_pepper: None,
            sender: Some(sender),
            events: None,
            oauth: None,
        }
    }

    /// An App with only its settings, clock and table: a function starts
    /// from this and adds what its [`Needs`] name.
    pub fn bare(settings: Settings, db: Db, clock: Arc<dyn Clock>, needs: Needs) -> Self {
        Self {
            settings,
            db,
            clock,
            metrics: Arc::new(StdoutMetrics),
            breaker: Arc::new(BreakerCache::default()),
            needs,
            keys: None,
            pepper: None,
            api_key_pepper: None,
            sender: None,
            events: None,
            oauth: None,
        }
    }

    /// The same App restricted to `needs`: what they do not name is gone.
    pub fn only(&self, needs: Needs) -> App {
        let mut a = self.clone();
        a.needs = needs;
        if !needs.store {
            a.db = Db::absent();
        }
        if !needs.signing_keys {
            a.keys = None;
        }
        if !needs.otp_pepper {
            a.pepper = None;
        }
        if !needs.api_key_pepper {
            a.api_key_pepper = None;
        }
        if !needs.senders {
            a.sender = None;
        }
        if !needs.events {
            a.events = None;
        }
        if !needs.oauth {
            a.oauth = None;
        }
        a
    }

    pub fn with_keys(mut self, keys: Arc<Live<KeyRing>>) -> Self {
        self.keys = Some(keys);
        self
    }

    pub fn with_pepper(mut self, pepper: Arc<Live<Pepper>>) -> Self {
        self.pepper = Some(pepper);
        self
    }

    pub fn with_api_key_pepper(mut self, pepper: Arc<Live<Pepper>>) -> Self {
        self.api_key_pepper = Some(pepper);
        self
    }

    pub fn with_sender(mut self, sender: Arc<dyn Sender>) -> Self {
        self.sender = Some(sender);
        self
    }

    pub fn with_events(mut self, events: Arc<dyn Events>) -> Self {
        self.events = Some(events);
        self
    }

    /// The idToken verifier (`None`: no provider configured).
    pub fn with_oauth(mut self, verifier: Option<Arc<dyn IdTokenVerifier>>) -> Self {
        self.oauth = verifier;
        self
    }

    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn now(&self) -> i64 {
        self.clock.now_secs()
    }

    /// The signing keys (replaced when the secret is refreshed).
    pub fn keys(&self) -> Result<&Live<KeyRing>> {
        self.keys.as_deref().ok_or_else(|| undeclared("the signing keys"))
    }

    /// The OTP pepper (replaced when the secret is refreshed).
    pub fn pepper(&self) -> Result<&Live<Pepper>> {
        self.pepper.as_deref().ok_or_else(|| undeclared("the OTP pepper"))
    }

    /// The API-key pepper (`API_KEY_PEPPER_SECRET_ARN`).
    pub fn api_key_pepper(&self) -> Result<&Live<Pepper>> {
        match &self.api_key_pepper {
            Some(p) => Ok(p),
            None if self.needs.api_key_pepper => Err(Error::internal("API_KEY_PEPPER is not configured")),
            None => Err(undeclared("the API-key pepper")),
        }
    }

    /// The senders (SMS, WhatsApp, email).
    pub fn sender(&self) -> Result<&dyn Sender> {
        self.sender.as_deref().ok_or_else(|| undeclared("sending"))
    }

    /// Where events go: `None` when the function declares them but the
    /// deployment has no topic (`EVENTS_TOPIC_ARN` unset).
    pub fn events(&self) -> Result<Option<&dyn Events>> {
        if self.needs.events {
            Ok(self.events.as_deref())
        } else {
            Err(undeclared("publishing events"))
        }
    }

    /// The idToken verifier: `None` when the function declares it but no
    /// provider is configured.
    pub fn oauth(&self) -> Result<Option<&Arc<dyn IdTokenVerifier>>> {
        if self.needs.oauth {
            Ok(self.oauth.as_ref())
        } else {
            Err(undeclared("the idToken check"))
        }
    }

    /// The shared handles whose values a secret refresh replaces.
    pub fn live_keys(&self) -> Option<Arc<Live<KeyRing>>> {
        self.keys.clone()
    }

    pub fn live_pepper(&self) -> Option<Arc<Live<Pepper>>> {
        self.pepper.clone()
    }

    pub fn live_api_key_pepper(&self) -> Option<Arc<Live<Pepper>>> {
        self.api_key_pepper.clone()
    }
}

/// Per-process cache of circuit-breaker thresholds, refreshed every 5 minutes
/// per calling code (the trailing average changes slowly; reading seven
/// daily counters on every send would cost a round trip).
#[derive(Default)]
pub struct BreakerCache {
    entries: Mutex<HashMap<u16, (u64, i64)>>,
}

impl BreakerCache {
    pub const TTL: i64 = 300;

    pub fn get(&self, cc: u16, now: i64) -> Option<u64> {
        let map = self.entries.lock().ok()?;
        map.get(&cc).filter(|(_, at)| now - at < Self::TTL).map(|(t, _)| *t)
    }

    pub fn put(&self, cc: u16, threshold: u64, now: i64) {
        if let Ok(mut map) = self.entries.lock() {
            map.insert(cc, (threshold, now));
        }
    }
}
