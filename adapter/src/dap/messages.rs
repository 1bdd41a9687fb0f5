//! DAP message envelopes and the typed arguments and bodies latch uses.
//!
//! Outgoing messages are built as `serde_json::Value` bodies inside typed envelopes; the
//! writer assigns `seq` when it sends, so ordering and numbering live in one place.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

/// An incoming request. Anything else a client sends (responses to reverse requests,
/// events) is logged and dropped.
#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub command: String,
    #[serde(default)]
    pub arguments: Option<Value>,
}

/// What latch writes; `seq` is filled in by the writer.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Outgoing {
    Response(Response),
    Event(Event),
    /// A reverse request (`runInTerminal`, `startDebugging`): latch asks the client.
    Request(ReverseRequest),
}

#[derive(Debug, Clone, Serialize)]
pub struct ReverseRequest {
    pub command: String,
    pub arguments: Value,
}

/// The client's answer to a reverse request.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientResponse {
    #[serde(default)]
    pub request_seq: i64,
    pub command: String,
    pub success: bool,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub body: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    #[serde(rename = "request_seq")]
    pub request_seq: i64,
    pub success: bool,
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
}

/// A response body: a JSON value, or JSON text latch assembled itself from serde_json's
/// output (a thousand threads' stacks, whose frames repeat: each is written once per
/// stop and copied after). The text is spliced in by [`Outgoing::encode`] unparsed;
/// serializing it any other way is an error.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Body {
    Value(Value),
    #[serde(skip)]
    Written(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

impl Outgoing {
    /// The message's JSON with `seq` as its first field: one pass of serialization, no
    /// copy of the body into a new map.
    pub fn encode(self, seq: i64) -> Vec<u8> {
        let (message, written) = match self {
            Outgoing::Response(Response {
                body: Some(Body::Written(text)),
                request_seq,
                success,
                command,
                message,
            }) => (
                Outgoing::Response(Response {
                    request_seq,
                    success,
                    command,
                    message,
                    body: None,
                }),
                Some(text),
            ),
            other => (other, None),
        };
        let fields = serde_json::to_vec(&message).expect("messages serialize");
        let mut out =
            Vec::with_capacity(fields.len() + written.as_ref().map_or(0, String::len) + 24);
        out.extend_from_slice(format!("{{\"seq\":{seq},").as_bytes());
        // `fields` is `{...}`: its first brace is already written, its last closes the
        // body's field when there is one.
        match written {
            Some(body) => {
                out.extend_from_slice(&fields[1..fields.len() - 1]);
                out.extend_from_slice(b",\"body\":");
                out.extend_from_slice(body.as_bytes());
                out.push(b'}');
            }
            None => out.extend_from_slice(&fields[1..]),
        }
        out
    }
}

impl Response {
    pub fn ok(request: &Request, body: Option<Value>) -> Response {
        Response {
            request_seq: request.seq,
            success: true,
            command: request.command.clone(),
            message: None,
            body: body.map(Body::Value),
        }
    }

    /// A success response whose body is serialized straight from typed data: no `Value`
    /// maps built (for a 4000-thread `threads` answer they cost 4-8 ms).
    pub fn ok_typed(request: &Request, body: &impl Serialize) -> Response {
        let text = serde_json::to_string(body).expect("response bodies serialize");
        Response::ok_written(request, text)
    }

    /// A success response whose body is JSON text latch wrote from serde_json's output
    /// (see [`Body::Written`]).
    pub fn ok_written(request: &Request, body: String) -> Response {
        Response {
            request_seq: request.seq,
            success: true,
            command: request.command.clone(),
            message: None,
            body: Some(Body::Written(body)),
        }
    }

    /// An error response: `short` is the machine-readable `message` (e.g. "cancelled"),
    /// `text` the full explanation shown to the user.
    pub fn error(request_seq: i64, command: &str, short: &str, text: &str) -> Response {
        Response {
            request_seq,
            success: false,
            command: command.to_string(),
            message: Some(short.to_string()),
            body: Some(Body::Value(json!({
                "error": { "id": 1, "format": escape_format(text), "showUser": true }
            }))),
        }
    }
}

/// `Message.format` treats `{name}` as a variable; braces from user data must not be.
fn escape_format(text: &str) -> String {
    text.replace('{', "(").replace('}', ")")
}

impl Event {
    pub fn new(event: &str, body: Value) -> Event {
        Event {
            event: event.to_string(),
            body: Some(body),
        }
    }
}

/// `initialize` arguments we act on.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeArguments {
    #[serde(default, rename = "clientID")]
    pub client_id: Option<String>,
    #[serde(default)]
    pub supports_progress_reporting: Option<bool>,
    #[serde(default)]
    pub supports_run_in_terminal_request: Option<bool>,
    #[serde(default)]
    pub supports_start_debugging_request: Option<bool>,
}

/// The `attach` arguments: the single source of truth for what an editor may send.
/// `schemas/attach.schema.json` is generated from this type.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "latch attach arguments", transform = add_process_id_alias)]
pub struct AttachArguments {
    /// The process to attach to: a number, or a numeric string as process pickers return
    /// (in launch.json, an editor variable such as `${command:pickProcess}` that becomes one).
    #[serde(default, alias = "processId", deserialize_with = "deserialize_pid")]
    #[schemars(schema_with = "pid_schema")]
    pub pid: Option<i64>,
    /// Wait for a process whose name starts with this, and attach to it as it starts
    /// (instead of `pid`).
    #[serde(default)]
    pub wait_for: Option<String>,
    /// How `waitFor` matches: `name` (the 15-byte process name, or the executable's or
    /// argv[0]'s basename) or `cmdline` (a prefix of the full command line).
    #[serde(default)]
    #[schemars(extend("default" = "name"))]
    pub wait_for_match: Option<WaitForMatch>,
    /// Give up waiting after this many milliseconds (default: wait until cancelled).
    #[serde(default)]
    pub wait_for_timeout: Option<u64>,
    /// How often to scan /proc when the kernel's process events are not available, in
    /// milliseconds (default 1).
    #[serde(default)]
    #[schemars(extend("default" = 1))]
    pub wait_for_interval: Option<u64>,
    /// Also take a matching process that is already running (default false: only a
    /// process that starts after the wait began).
    #[serde(default)]
    #[schemars(extend("default" = false))]
    pub wait_for_existing: Option<bool>,
    /// The executable to read symbols from, when /proc/PID/exe is not the right file.
    #[serde(default)]
    pub program: Option<String>,
    /// Stay stopped after attaching (default false: the target runs on after
    /// configuration).
    #[serde(default)]
    #[schemars(extend("default" = false))]
    pub stop_on_entry: Option<bool>,
    /// What happens to a process the target forks (`fork`, `vfork`, `clone` without
    /// CLONE_THREAD): `false` (the default) lets it go at once, with latch's breakpoints
    /// taken out of its memory; `true` stops it and offers it to the editor as a child
    /// debug session of its own (DAP's `startDebugging`).
    #[serde(default)]
    #[schemars(extend("default" = false))]
    pub follow_forks: Option<bool>,
    /// Show a Go program's goroutines as the thread list (default true): `threads` lists
    /// goroutines (ids from 4194304 = 1<<22 up, the goroutine id added), `stackTrace` of
    /// one unwinds it even when no thread runs it. `false` shows the OS threads.
    #[serde(default)]
    #[schemars(extend("default" = true))]
    pub goroutines: Option<bool>,
    /// The most goroutines a `threads` answer lists (default 1000): the goroutine of the
    /// stop first, then running ones, then by id; a console line says when some are left
    /// out.
    #[serde(default)]
    #[schemars(extend("default" = 1000), range(min = 1))]
    pub max_goroutines: Option<u64>,
    /// The longest string a value shows, in bytes (default 200, as gdb's `print
    /// elements`); longer ones end in `...`. Raise it to read long strings whole.
    #[serde(default)]
    #[schemars(extend("default" = 200), range(min = 1, max = 1048576))]
    pub max_string_length: Option<u64>,
    /// Set by latch in the configuration of a child session it offers: the socket of the
    /// latch that holds the child. Editors connect there instead of starting a new latch.
    #[serde(default)]
    pub latch_child_session: Option<String>,
}

/// The `launch` arguments: the single source of truth for what an editor may send to
/// start a program under latch. `schemas/launch.schema.json` is generated from this type.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(title = "latch launch arguments")]
pub struct LaunchArguments {
    /// The program to start: a path to an executable file (a script with `#!` works).
    /// Relative paths are taken from `cwd`.
    pub program: String,
    /// The program's arguments, after its name.
    #[serde(default)]
    pub args: Vec<String>,
    /// The program's working directory (default: latch's own).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Environment variables set over latch's own environment (latch's `LATCH_*`
    /// variables are never passed on); a variable set to `null` is removed.
    #[serde(default)]
    #[schemars(schema_with = "env_schema")]
    pub env: std::collections::BTreeMap<String, Option<String>>,
    /// Stop at the program's entry point (its first instruction, after the dynamic
    /// loader has loaded the libraries it needs), before any of its code runs.
    #[serde(default)]
    #[schemars(extend("default" = false))]
    pub stop_on_entry: Option<bool>,
    /// Stop at the first line of `main` (`main.main` in Go, the crate's `main` in Rust).
    #[serde(default)]
    #[schemars(extend("default" = false))]
    pub stop_at_main: Option<bool>,
    /// Where the program's input and output go: `internalConsole` (the default: its
    /// stdout and stderr come to the debug console, its stdin is empty), or the
    /// editor's `integratedTerminal` or an `externalTerminal` (through DAP's
    /// `runInTerminal`, so interactive programs work).
    #[serde(default)]
    #[schemars(extend("default" = "internalConsole"))]
    pub console: Option<ConsoleKind>,
    /// Turn address space layout randomization off for the program, as gdb's
    /// `disable-randomization` does (default false: addresses vary from run to run, as
    /// without a debugger).
    #[serde(default, rename = "disableASLR")]
    #[schemars(extend("default" = false))]
    pub disable_aslr: Option<bool>,
    /// What happens to a process the program forks; see the attach argument of the same
    /// name.
    #[serde(default)]
    #[schemars(extend("default" = false))]
    pub follow_forks: Option<bool>,
    /// Show a Go program's goroutines as the thread list (default true): `threads` lists
    /// goroutines (ids from 4194304 = 1<<22 up, the goroutine id added), `stackTrace` of
    /// one unwinds it even when no thread runs it. `false` shows the OS threads.
    #[serde(default)]
    #[schemars(extend("default" = true))]
    pub goroutines: Option<bool>,
    /// The most goroutines a `threads` answer lists (default 1000): the goroutine of the
    /// stop first, then running ones, then by id; a console line says when some are left
    /// out.
    #[serde(default)]
    #[schemars(extend("default" = 1000), range(min = 1))]
    pub max_goroutines: Option<u64>,
    /// The longest string a value shows, in bytes (default 200, as gdb's `print
    /// elements`); longer ones end in `...`. Raise it to read long strings whole.
    #[serde(default)]
    #[schemars(extend("default" = 200), range(min = 1, max = 1048576))]
    pub max_string_length: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ConsoleKind {
    InternalConsole,
    IntegratedTerminal,
    ExternalTerminal,
}

fn env_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": { "type": ["string", "null"] },
        "default": {}
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WaitForMatch {
    Name,
    Cmdline,
}

/// `processId` is accepted as another name for `pid` (serde's alias); editors' process
/// pickers are often bound to it, so the schema lists it too, or their launch.json
/// validation would flag it.
fn add_process_id_alias(schema: &mut schemars::Schema) {
    let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let Some(mut alias) = properties.get("pid").and_then(|p| p.as_object()).cloned() else {
        return;
    };
    alias.insert(
        "description".into(),
        "Another name for `pid` (use one of the two).".into(),
    );
    properties.insert("processId".into(), alias.into());
}

/// `pid` in the schema: an integer or a string of digits (pickers return either). Editors
/// validate launch.json before substituting variables, so `${command:pickProcess}` must
/// pass too; latch itself only ever sees the substituted value.
fn pid_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [
            { "type": "integer", "minimum": 1 },
            { "type": "string", "pattern": "^\\s*([0-9]+|\\$\\{[^}]+\\})\\s*$" }
        ]
    })
}

fn deserialize_pid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("pid {n} is not a whole number"))),
        Some(Value::String(s)) if s.trim().starts_with("${") => Err(D::Error::custom(format!(
            "pid {s:?} is an editor variable that was not replaced by a process id: the \
             editor does not know it (VS Code: install the latch extension, which provides \
             ${{command:pickProcess}}), so give the pid itself"
        ))),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("pid {s:?} is not a number"))),
        Some(other) => Err(D::Error::custom(format!(
            "pid must be a number or a numeric string, not {other}"
        ))),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisconnectArguments {
    #[serde(default)]
    pub terminate_debuggee: Option<bool>,
    #[serde(default)]
    pub suspend_debuggee: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelArguments {
    #[serde(default)]
    pub request_id: Option<i64>,
    #[serde(default)]
    pub progress_id: Option<String>,
}

/// Capabilities: only what works. `exception_filters` comes from the session, which
/// owns what each filter means.
pub fn capabilities(exception_filters: Value) -> Value {
    json!({
        "supportsConfigurationDoneRequest": true,
        "supportTerminateDebuggee": true,
        "supportSuspendDebuggee": true,
        "supportsTerminateRequest": true,
        "supportsCancelRequest": true,
        "supportsModulesRequest": true,
        "supportsDelayedStackTraceLoading": true,
        "supportsFunctionBreakpoints": true,
        "supportsInstructionBreakpoints": true,
        "supportsBreakpointLocationsRequest": true,
        "supportsCompletionsRequest": true,
        "completionTriggerCharacters": [".", ">"],
        "supportsConditionalBreakpoints": true,
        "supportsHitConditionalBreakpoints": true,
        "supportsLogPoints": true,
        "supportsExceptionInfoRequest": true,
        "supportsExceptionFilterOptions": true,
        "supportsSteppingGranularity": true,
        "supportsSingleThreadExecutionRequests": true,
        "supportsEvaluateForHovers": true,
        "supportsValueFormattingOptions": true,
        "supportsReadMemoryRequest": true,
        "supportsSetVariable": true,
        "supportsWriteMemoryRequest": true,
        "supportsDisassembleRequest": true,
        "exceptionBreakpointFilters": exception_filters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_accepts_numbers_strings_and_the_alias() {
        let a: AttachArguments = serde_json::from_value(json!({"pid": 42})).unwrap();
        assert_eq!(a.pid, Some(42));
        let a: AttachArguments = serde_json::from_value(json!({"pid": " 42 "})).unwrap();
        assert_eq!(a.pid, Some(42));
        let a: AttachArguments = serde_json::from_value(json!({"processId": "7"})).unwrap();
        assert_eq!(a.pid, Some(7));
        let err = serde_json::from_value::<AttachArguments>(json!({"pid": true})).unwrap_err();
        assert!(err.to_string().contains("pid"), "{err}");
        let err = serde_json::from_value::<AttachArguments>(json!({"pid": "abc"})).unwrap_err();
        assert!(err.to_string().contains("not a number"), "{err}");
    }

    #[test]
    fn unknown_fields_from_editors_are_accepted() {
        let a: AttachArguments = serde_json::from_value(
            json!({"type": "latch", "request": "attach", "name": "x", "__sessionId": "1", "waitFor": "srv"}),
        )
        .unwrap();
        assert_eq!(a.wait_for.as_deref(), Some("srv"));
    }

    #[test]
    fn encoding_puts_seq_first_and_splices_written_bodies() {
        let request: Request =
            serde_json::from_value(json!({"seq": 9, "type": "request", "command": "stackTrace"}))
                .unwrap();
        let written = r#"{"stackFrames":[{"id":1,"name":"a\"b"}],"totalFrames":1}"#;
        let cases = [
            (
                Outgoing::Response(Response::ok_written(&request, written.to_string())),
                json!({"seq": 4, "type": "response", "request_seq": 9, "success": true,
                       "command": "stackTrace", "body": serde_json::from_str::<Value>(written).unwrap()}),
            ),
            (
                Outgoing::Response(Response::ok(&request, Some(json!({"x": 1})))),
                json!({"seq": 4, "type": "response", "request_seq": 9, "success": true,
                       "command": "stackTrace", "body": {"x": 1}}),
            ),
            (
                Outgoing::Response(Response::ok(&request, None)),
                json!({"seq": 4, "type": "response", "request_seq": 9, "success": true,
                       "command": "stackTrace"}),
            ),
            (
                Outgoing::Event(Event::new("stopped", json!({"reason": "pause"}))),
                json!({"seq": 4, "type": "event", "event": "stopped", "body": {"reason": "pause"}}),
            ),
        ];
        for (message, expected) in cases {
            let bytes = message.encode(4);
            assert!(
                bytes.starts_with(br#"{"seq":4,"#),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
            let got: Value = serde_json::from_slice(&bytes).expect("valid JSON");
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn error_text_braces_are_not_format_variables() {
        let r = Response::error(3, "attach", "failed", "bad {x}");
        let Some(Body::Value(body)) = r.body else {
            panic!("errors carry a Value body")
        };
        assert_eq!(body["error"]["format"], "bad (x)");
    }
}

/// The JSON schema of the `attach` arguments, as `schemas/attach.schema.json` holds it
/// (editors check their configurations against that file).
///
/// Shaped for editors rather than for serde: an optional field is simply absent (no
/// `null` in its type), defaults are the values latch applies, and nothing hides behind
/// a `$ref`, because VS Code copies this into a `package.json`, where `#/$defs` would
/// point at nothing.
pub fn attach_schema() -> Value {
    editor_schema::<AttachArguments>()
}

/// The JSON schema of the `launch` arguments, as `schemas/launch.schema.json` holds it;
/// shaped for editors as `attach_schema` is.
pub fn launch_schema() -> Value {
    editor_schema::<LaunchArguments>()
}

fn editor_schema<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.inline_subschemas = true;
        })
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let mut schema = serde_json::to_value(schema).expect("schemas serialize");
    if let Some(properties) = schema["properties"].as_object_mut() {
        properties.values_mut().for_each(drop_null_from_property);
    }
    schema
}

/// `Option<T>` becomes "T or null, default null" in schemars; for editors an optional
/// attach argument is one that is left out.
fn drop_null_from_property(property: &mut Value) {
    let Some(property) = property.as_object_mut() else {
        return;
    };
    if property.get("default") == Some(&Value::Null) {
        property.remove("default");
    }
    if let Some(Value::Array(types)) = property.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            property.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = property.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    // Doc comments wrap at 90 columns; editors show descriptions as flowing text.
    if let Some(Value::String(text)) = property.get_mut("description") {
        *text = text.replace('\n', " ");
    }
    if let Some(Value::Array(choices)) = property.get_mut("anyOf") {
        choices.retain(|c| c.get("type").is_none_or(|t| t != "null"));
        if let [Value::Object(only)] = choices.as_slice() {
            let only = only.clone();
            property.remove("anyOf");
            property.extend(only);
        }
    }
}

#[cfg(test)]
mod schema_file {
    /// Fails when `schemas/attach.schema.json` no longer matches `AttachArguments`;
    /// `LATCH_UPDATE_SCHEMA=1 cargo test -p latch schema_file` rewrites it.
    #[test]
    fn checked_in_attach_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/attach.schema.json");
        let expected = serde_json::to_string_pretty(&super::attach_schema()).unwrap() + "\n";
        if std::env::var("LATCH_UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
            std::fs::write(path, &expected).unwrap();
        }
        let actual = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            actual == expected,
            "{path} is stale: regenerate it with `LATCH_UPDATE_SCHEMA=1 cargo test -p latch schema_file`"
        );
    }

    /// Fails when `schemas/launch.schema.json` no longer matches `LaunchArguments`.
    #[test]
    fn checked_in_launch_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/launch.schema.json");
        let expected = serde_json::to_string_pretty(&super::launch_schema()).unwrap() + "\n";
        if std::env::var("LATCH_UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
            std::fs::write(path, &expected).unwrap();
        }
        let actual = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            actual == expected,
            "{path} is stale: regenerate it with `LATCH_UPDATE_SCHEMA=1 cargo test -p latch schema_file`"
        );
    }

    #[test]
    fn launch_schema_and_parser_agree_on_examples() {
        use serde_json::json;
        let validator = jsonschema::validator_for(&super::launch_schema()).unwrap();
        let accepted = [
            json!({"program": "/bin/true"}),
            json!({"program": "./a.out", "args": ["-v"], "cwd": "/tmp", "env": {"A": "1", "B": null}}),
            json!({"program": "a", "stopOnEntry": true, "stopAtMain": false, "console": "integratedTerminal"}),
            json!({"program": "a", "disableASLR": true, "followForks": true}),
        ];
        for config in accepted {
            assert!(validator.is_valid(&config), "schema rejects {config}");
            serde_json::from_value::<super::LaunchArguments>(config.clone())
                .unwrap_or_else(|e| panic!("latch rejects {config}: {e}"));
        }
        let rejected = [
            json!({}),
            json!({"program": 3}),
            json!({"program": "a", "args": "-v"}),
            json!({"program": "a", "env": {"A": 1}}),
            json!({"program": "a", "console": "terminal"}),
        ];
        for config in rejected {
            assert!(!validator.is_valid(&config), "schema allows {config}");
            assert!(
                serde_json::from_value::<super::LaunchArguments>(config.clone()).is_err(),
                "latch accepts {config}"
            );
        }
    }

    /// What editors validate against agrees with what latch accepts: configurations the
    /// schema allows parse, and the ones it rejects are the ones latch refuses too.
    #[test]
    fn schema_and_parser_agree_on_examples() {
        use serde_json::json;
        let validator = jsonschema::validator_for(&super::attach_schema()).unwrap();
        let accepted = [
            json!({"pid": 42}),
            json!({"pid": "42"}),
            json!({"processId": "7"}),
            json!({"waitFor": "server", "waitForMatch": "cmdline", "waitForTimeout": 5000}),
            json!({"pid": 1, "stopOnEntry": true, "program": "/usr/bin/server"}),
        ];
        for config in accepted {
            assert!(validator.is_valid(&config), "schema rejects {config}");
            serde_json::from_value::<super::AttachArguments>(config.clone())
                .unwrap_or_else(|e| panic!("latch rejects {config}: {e}"));
        }
        let rejected = [
            json!({"pid": true}),
            json!({"pid": "abc"}),
            json!({"waitForMatch": "regex"}),
            json!({"stopOnEntry": "yes"}),
        ];
        // Editors check launch.json before they replace variables, so the schema lets
        // them through; latch only refuses one left unreplaced, and says why.
        let variable = json!({"pid": "${command:pickProcess}"});
        assert!(validator.is_valid(&variable));
        let err = serde_json::from_value::<super::AttachArguments>(variable).unwrap_err();
        assert!(err.to_string().contains("editor variable"), "{err}");
        for config in rejected {
            assert!(!validator.is_valid(&config), "schema allows {config}");
            assert!(
                serde_json::from_value::<super::AttachArguments>(config.clone()).is_err(),
                "latch accepts {config}"
            );
        }
    }
}
