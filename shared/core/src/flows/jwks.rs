//! `GET /.well-known/jwks.json`: the public halves of the current and
//! previous signing keys, as a plain JWKS document (JWT libraries read it
//! directly). Needs the signing keys and nothing else: no table, no pepper.

use serde_json::Value;

use crate::App;
use crate::app::Needs;
use crate::base::error::Result;

pub const NEEDS: Needs = Needs {
    signing_keys: true,
    ..Needs::NOTHING
};

pub fn run(app: &App) -> Result<Value> {
    Ok(app.keys()?.jwks())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn the_document_holds_public_keys_only() {
        let t = testing::app();
        let doc = run(&t.app.only(NEEDS)).unwrap();
        let keys = doc["keys"].as_array().unwrap();
        assert!(!keys.is_empty());
        assert!(keys.iter().all(|k| k.get("d").is_none() && k["kid"].is_string()));
    }
}
