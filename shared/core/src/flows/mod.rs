//! One module per endpoint, named like its function crate: the typed
//! request (`Request::parse`, the whole 422 in one place), the flow (`run`)
//! and what it answers, with `NEEDS` (what the function uses). No flow
//! imports another: what two share is a service.

pub mod account_bio;
pub mod account_device_verify;
pub mod account_email_start;
pub mod account_email_verify;
pub mod account_interests;
pub mod account_me;
pub mod account_oauth_link;
pub mod account_oauth_nonce;
pub mod account_oauth_unlink;
pub mod account_password;
pub mod account_pin;
pub mod account_pin_recovery_start;
pub mod account_pin_recovery_verify;
pub mod account_profile_pic;
pub mod account_session_revoke;
pub mod account_sessions_list;
pub mod account_username;
pub mod admin;
pub mod auth_check;
pub mod auth_login_oauth;
pub mod auth_login_password;
pub mod auth_logout;
pub mod auth_onboarding_primary;
pub mod auth_otp_trigger;
pub mod auth_otp_verify;
pub mod auth_password_forgot_initiate;
pub mod auth_password_forgot_reset;
pub mod auth_password_forgot_verify_otp;
pub mod auth_passwordless_channels;
pub mod auth_passwordless_start;
pub mod auth_resend_otp;
pub mod auth_step_up;
pub mod auth_token_refresh;
pub mod auth_token_revoke;
pub mod auth_verify_otp;
pub mod invites_create;
pub mod jwks;
pub mod otp_resend;
pub mod otp_send;
pub mod otp_sessions;
pub mod otp_verify;
pub mod step_up_consume;
pub mod users_find;
pub mod users_get;
