//! The CPU a request spends outside the store (`cargo bench -p nambari-core`):
//! a code and its HMAC, an ES256 token signed and verified, a phone number
//! parsed and validated, and Argon2id at the parameters passwords and PINs
//! are hashed with.

#![allow(clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use nambari_core::base::otp::{OtpCode, Pepper};
use nambari_core::base::phone::PhoneNumber;
use nambari_core::base::tokens::{KeyRing, TokenKind};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Body {
    phone: String,
    did: String,
}

fn hot_paths(c: &mut Criterion) {
    let pepper = Pepper::new(vec![42; 32]).expect("pepper");
    c.bench_function("code: generate + HMAC-SHA256", |b| {
        b.iter(|| {
            let code = OtpCode::generate(6).expect("code");
            std::hint::black_box(pepper.hash("session-id-0123456789ab", &code))
        })
    });

    let set = KeyRing::generate_set().expect("keys");
    let ring = KeyRing::from_set(&set, "nambari", "nambari-apps").expect("ring");
    let body = || Body {
        phone: "+255745051250".into(),
        did: "android-uuid-abc123".into(),
    };
    c.bench_function("jwt: ES256 sign", |b| {
        b.iter(|| std::hint::black_box(ring.issue(TokenKind::Check, "+255745051250", body(), 1_775_212_245)))
    });
    let (token, _) = ring
        .issue(TokenKind::Check, "+255745051250", body(), 1_775_212_245)
        .expect("token");
    c.bench_function("jwt: ES256 verify", |b| {
        b.iter(|| std::hint::black_box(ring.verify::<Body>(TokenKind::Check, &token, 1_775_212_300)))
    });

    c.bench_function("phone: parse + validate E.164", |b| {
        b.iter(|| std::hint::black_box(PhoneNumber::parse_field("+255745051250", "identifier", None, |_| false)))
    });

    let t = nambari_core::testing::app();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let secret = secrecy::SecretString::from("correct horse battery staple".to_owned());
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(20);
    group.bench_function("hash (m=19 MiB, t=2, p=1)", |b| {
        b.iter(|| rt.block_on(nambari_core::services::secret_hash::hash_secret(&t.app, &secret)))
    });
    let stored = rt
        .block_on(nambari_core::services::secret_hash::hash_secret(&t.app, &secret))
        .expect("hash");
    group.bench_function("verify", |b| {
        b.iter(|| {
            rt.block_on(nambari_core::services::secret_hash::verify_secret(
                &t.app,
                &secret,
                Some(&stored),
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
