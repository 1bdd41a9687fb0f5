//! Validation of every message latch writes against the official DAP schema
//! (`../shared/dap/debugAdapterProtocol.json`, or `$LATCH_DAP_SCHEMA`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::Validator;
use serde_json::{json, Value};

pub fn schema_path() -> PathBuf {
    match std::env::var_os("LATCH_DAP_SCHEMA") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/dap/debugAdapterProtocol.json"
        )),
    }
}

pub struct Schema {
    document: Value,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

impl Schema {
    pub fn load(path: &std::path::Path) -> Result<Schema, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let document: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if !document["definitions"].is_object() {
            return Err(format!("{}: no \"definitions\" object", path.display()));
        }
        Ok(Schema {
            document,
            validators: Mutex::new(HashMap::new()),
        })
    }

    pub fn has(&self, definition: &str) -> bool {
        self.document["definitions"].get(definition).is_some()
    }

    fn validator(&self, definition: &str) -> Arc<Validator> {
        let mut cache = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(definition) {
            return v.clone();
        }
        let schema = json!({
            "$ref": format!("#/definitions/{definition}"),
            "definitions": self.document["definitions"],
        });
        let validator = jsonschema::draft4::options()
            .build(&schema)
            .unwrap_or_else(|e| panic!("cannot compile schema definition {definition}: {e}"));
        let validator = Arc::new(validator);
        cache.insert(definition.to_string(), validator.clone());
        validator
    }

    /// Validates `instance` against one definition; the errors, one per line.
    pub fn validate(&self, definition: &str, instance: &Value) -> Result<(), String> {
        assert!(
            self.has(definition),
            "the DAP schema has no definition {definition}"
        );
        let validator = self.validator(definition);
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("  at {}: {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "does not match {definition}:\n{}",
                errors.join("\n")
            ))
        }
    }

    /// The definition a message from the adapter must match.
    pub fn definition_for(&self, message: &Value) -> Result<String, String> {
        let pick = |name: &str, suffix: &str, fallback: &str| {
            let candidate = format!("{}{suffix}", capitalise(name));
            if self.has(&candidate) {
                candidate
            } else {
                fallback.to_string()
            }
        };
        match message["type"].as_str() {
            Some("response") if message["success"] == json!(false) => Ok("ErrorResponse".into()),
            Some("response") => Ok(pick(
                message["command"].as_str().unwrap_or(""),
                "Response",
                "Response",
            )),
            Some("event") => Ok(pick(
                message["event"].as_str().unwrap_or(""),
                "Event",
                "Event",
            )),
            Some("request") => Ok(pick(
                message["command"].as_str().unwrap_or(""),
                "Request",
                "Request",
            )),
            _ => Err("message has no valid \"type\"".to_string()),
        }
    }

    /// Validates a whole message written by the adapter.
    pub fn check_message(&self, message: &Value) -> Result<(), String> {
        self.validate("ProtocolMessage", message)?;
        let definition = self.definition_for(message)?;
        self.validate(&definition, message)
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The schema, loaded once; the error when it does not load (callers fail, or skip with
/// LATCH_ALLOW_SKIP outside CI).
pub fn schema() -> Result<&'static Schema, String> {
    static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| Schema::load(&schema_path()))
        .as_ref()
        .map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_or_skip() -> Option<&'static Schema> {
        match schema() {
            Ok(s) => Some(s),
            Err(e) => {
                super::super::skip_or_fail(&format!("DAP schema not available: {e}"));
                None
            }
        }
    }

    #[test]
    fn schema_accepts_valid_messages() {
        let Some(s) = schema_or_skip() else { return };
        let thread = json!({"seq": 3, "type": "event", "event": "thread",
                            "body": {"reason": "started", "threadId": 42}});
        s.check_message(&thread).unwrap();
        let attach = json!({"seq": 4, "type": "response", "request_seq": 2, "success": true,
                            "command": "attach"});
        s.check_message(&attach).unwrap();
        assert_eq!(s.definition_for(&attach).unwrap(), "AttachResponse");
        let error = json!({"seq": 5, "type": "response", "request_seq": 2, "success": false,
                           "command": "attach", "message": "no process",
                           "body": {"error": {"id": 1, "format": "no process 99", "showUser": true}}});
        s.check_message(&error).unwrap();
        assert_eq!(s.definition_for(&error).unwrap(), "ErrorResponse");
        let custom = json!({"seq": 6, "type": "event", "event": "latchCustom", "body": {}});
        assert_eq!(s.definition_for(&custom).unwrap(), "Event");
        s.check_message(&custom).unwrap();
    }

    #[test]
    fn schema_rejects_invalid_messages() {
        let Some(s) = schema_or_skip() else { return };
        // threadId must be an integer.
        let bad_thread = json!({"seq": 3, "type": "event", "event": "thread",
                                "body": {"reason": "started", "threadId": "42"}});
        let err = s.check_message(&bad_thread).unwrap_err();
        assert!(err.contains("ThreadEvent"), "{err}");
        // A threads response without body.threads.
        let bad_threads = json!({"seq": 4, "type": "response", "request_seq": 2, "success": true,
                                 "command": "threads", "body": {}});
        assert!(s.check_message(&bad_threads).is_err());
        // No seq at all.
        let no_seq = json!({"type": "event", "event": "initialized"});
        assert!(s.check_message(&no_seq).is_err());
        // stopped event without reason.
        let bad_stopped = json!({"seq": 1, "type": "event", "event": "stopped",
                                 "body": {"threadId": 1}});
        assert!(s.check_message(&bad_stopped).is_err());
        // Unknown message type.
        assert!(s
            .check_message(&json!({"seq": 1, "type": "bogus"}))
            .is_err());
    }
}
