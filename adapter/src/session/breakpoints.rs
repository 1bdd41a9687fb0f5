//! Breakpoints as the client sees them: source lines, functions, instructions, the
//! exception filters (signals, Go panics) and `breakpointLocations`.
//!
//! The session keeps DAP's ids and each breakpoint's verified state; the symbols thread
//! resolves lines and names to addresses; the ptrace thread writes the `int3`s and
//! decides each hit (DESIGN.md section 9). Whenever the set changes, the whole set goes
//! to the ptrace thread, which keeps the hit counts of the ids that stay.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::Session;
use crate::dap::{Request, Response};
use crate::ptrace::{HitCondition, SignalFilters, UserBreakpoint};
use crate::symbols::conditions::Compiled;

/// The id of the breakpoint behind Go's "unrecovered panic" filter: not a user's, so
/// never among DAP's ids (which count up from 1).
pub(super) const GO_PANIC_ID: i64 = -1;
const GO_PANIC_ALL_ID: i64 = -2;

/// The exception filters latch offers, as `initialize` lists them.
pub(super) fn exception_filters() -> Value {
    let signal = |id: &str, label: &str, description: &str| json!({ "filter": id, "label": label, "description": description, "default": true });
    json!([
        signal("SIGSEGV", "SIGSEGV: invalid memory access",
               "Stop when the program gets a segmentation fault it does not handle itself"),
        signal("SIGBUS", "SIGBUS: bus error",
               "Stop on a bus error (a truncated mapped file, misaligned access) the program does not handle"),
        signal("SIGFPE", "SIGFPE: arithmetic error",
               "Stop on an integer division by zero or overflow the program does not handle"),
        signal("SIGILL", "SIGILL: illegal instruction",
               "Stop on an illegal instruction (ud2, a Rust or C++ abort) the program does not handle"),
        signal("SIGABRT", "SIGABRT: abort",
               "Stop when the program aborts (abort(), a failed assert) without a handler of its own"),
        { "filter": "handled-signals", "label": "Even when the program handles them", "default": false,
          "description": "Also stop on the signals above when the program catches them itself (a JVM's or Go's own SIGSEGV handling: this stops often)" },
        { "filter": "other-signals", "label": "All other signals", "default": false,
          "description": "Stop on every other signal (SIGUSR1, SIGPIPE, SIGTERM, ...); continuing delivers it" },
        { "filter": "go-panic", "label": "Go: unrecovered panic", "default": true,
          "description": "Stop in runtime.fatalpanic, where an unrecovered Go panic ends the program" },
        { "filter": "go-panic-all", "label": "Go: every panic", "default": false,
          "description": "Stop in runtime.gopanic on every panic, recovered or not" },
    ])
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A line of a file, as the client gave it.
    Source {
        path: String,
        line: u32,
        column: Option<u32>,
    },
    Function {
        name: String,
    },
    Instruction {
        reference: String,
        offset: i64,
    },
    /// A Go panic filter's breakpoint on a runtime function.
    Panic {
        function: &'static str,
    },
}

/// One breakpoint and what latch knows of it.
#[derive(Debug, Clone)]
struct Entry {
    id: i64,
    kind: Kind,
    hit_condition: Option<HitCondition>,
    /// The condition as the user wrote it.
    condition: Option<String>,
    log_message: Option<String>,
    /// The condition and the message's expressions compiled for these addresses (or
    /// why they cannot be), when it has either.
    compiled: Option<(Vec<u64>, Result<Compiled, String>)>,
    /// Why it is never inserted, whatever the target (a condition, a hit condition
    /// that does not parse).
    refused: Option<String>,
    verified: bool,
    message: Option<String>,
    /// Where it resolved to: the line with code, and the file that matched.
    line: Option<u32>,
    column: Option<u32>,
    file: Option<String>,
    addresses: Vec<u64>,
}

impl Entry {
    fn new(id: i64, kind: Kind) -> Entry {
        Entry {
            id,
            kind,
            hit_condition: None,
            condition: None,
            log_message: None,
            compiled: None,
            refused: None,
            verified: false,
            message: None,
            line: None,
            column: None,
            file: None,
            addresses: Vec::new(),
        }
    }

    /// The DAP `Breakpoint`.
    fn to_json(&self) -> Value {
        let mut body = json!({ "id": self.id, "verified": self.verified });
        if let Some(message) = &self.message {
            body["message"] = json!(message);
        }
        match &self.kind {
            Kind::Source { path, line, column } => {
                body["line"] = json!(self.line.unwrap_or(*line));
                if let Some(column) = self.column.or(*column) {
                    body["column"] = json!(column);
                }
                let name = std::path::Path::new(path)
                    .file_name()
                    .map_or(path.clone(), |n| n.to_string_lossy().into_owned());
                body["source"] = json!({ "name": name, "path": path });
            }
            Kind::Function { .. } | Kind::Panic { .. } => {
                if let (Some(line @ 1..), Some(file)) = (self.line, &self.file) {
                    let name = std::path::Path::new(file)
                        .file_name()
                        .map_or(file.clone(), |n| n.to_string_lossy().into_owned());
                    body["line"] = json!(line);
                    body["source"] = json!({ "name": name, "path": file });
                }
            }
            Kind::Instruction { .. } => {}
        }
        if let Some(&address) = self.addresses.first() {
            body["instructionReference"] = json!(format!("{address:#x}"));
        }
        body
    }

    /// What the ptrace thread needs, if it is to be inserted at all.
    fn to_user(&self) -> Option<UserBreakpoint> {
        if !self.verified || self.refused.is_some() || self.addresses.is_empty() {
            return None;
        }
        let compiled = match &self.compiled {
            Some((_, Ok(compiled))) => compiled.clone(),
            Some((_, Err(_))) => return None,
            None if self.needs_compiling() => return None,
            None => Compiled::default(),
        };
        Some(UserBreakpoint {
            id: self.id,
            addresses: self.addresses.clone(),
            hit_condition: self.hit_condition,
            condition: compiled.condition,
            log_message: self.log_message.clone(),
            log: compiled.log,
        })
    }

    /// Whether it has a condition or a message with `{expressions}`, which run at its
    /// hits compiled for its addresses.
    fn needs_compiling(&self) -> bool {
        self.condition.is_some() || self.log_expressions().is_some()
    }

    /// The log message, when it has braces to read (expressions, or `{{` escapes).
    fn log_expressions(&self) -> Option<&str> {
        self.log_message
            .as_deref()
            .filter(|m| m.contains('{') || m.contains('}'))
    }

    /// What the client sees of it; a change is worth a `breakpoint` event.
    fn shown(&self) -> Shown {
        (
            self.verified,
            self.message.clone(),
            self.line,
            self.addresses.clone(),
        )
    }
}

/// Addresses a breakpoint resolved to, and the source place of the first.
type Found = (Vec<u64>, Option<(String, u32)>);

/// What the client sees of a breakpoint (see `Entry::shown`).
type Shown = (bool, Option<String>, Option<u32>, Vec<u64>);

/// What the client asked of one breakpoint, whatever its kind.
struct Wanted {
    kind: Kind,
    condition: Option<String>,
    hit_condition: Option<String>,
    log_message: Option<String>,
}

/// The breakpoints a `setFunctionBreakpoints` or `setInstructionBreakpoints` replaces.
#[derive(Debug, Clone, Copy)]
enum List {
    Functions,
    Instructions,
}

/// Every breakpoint of the session.
pub(super) struct Breakpoints {
    next_id: i64,
    sources: BTreeMap<String, Vec<Entry>>,
    functions: Vec<Entry>,
    instructions: Vec<Entry>,
    panics: Vec<Entry>,
    pub(super) signals: SignalFilters,
    /// The process whose displaced-stepping slot the ptrace thread knows.
    slot_sent_for: Option<crate::procfs::Pid>,
    /// The process the Go panic filters were resolved in.
    panics_resolved_for: Option<crate::procfs::Pid>,
}

impl Default for Breakpoints {
    fn default() -> Breakpoints {
        Breakpoints {
            next_id: 1,
            sources: BTreeMap::new(),
            functions: Vec::new(),
            instructions: Vec::new(),
            panics: vec![Entry::new(
                GO_PANIC_ID,
                Kind::Panic {
                    function: "runtime.fatalpanic",
                },
            )],
            signals: SignalFilters::default(),
            slot_sent_for: None,
            panics_resolved_for: None,
        }
    }
}

impl Breakpoints {
    fn all(&self) -> impl Iterator<Item = &Entry> {
        self.sources
            .values()
            .flatten()
            .chain(&self.functions)
            .chain(&self.instructions)
            .chain(&self.panics)
    }

    fn all_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.sources
            .values_mut()
            .flatten()
            .chain(&mut self.functions)
            .chain(&mut self.instructions)
            .chain(&mut self.panics)
    }

    /// The id an entry of `kind` had before, or a new one: an editor re-sends a file's
    /// breakpoints whenever one changes, and the others must keep their ids (and the
    /// ptrace thread their hit counts).
    fn id_for(&mut self, old: &[Entry], kind: &Kind) -> i64 {
        if let Some(entry) = old.iter().find(|e| &e.kind == kind) {
            return entry.id;
        }
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The process started another program: nothing inserted is there any more.
    pub(super) fn forget_process(&mut self) {
        self.slot_sent_for = None;
        self.panics_resolved_for = None;
        for entry in self.all_mut() {
            entry.addresses.clear();
            entry.verified = false;
        }
    }

    /// Entries for what the client asked, each keeping the id it had in `old`, and
    /// refused with why if it asks for what latch cannot do.
    fn entries(&mut self, old: &[Entry], wanted: impl Iterator<Item = Wanted>) -> Vec<Entry> {
        wanted
            .map(|wanted| {
                let id = self.id_for(old, &wanted.kind);
                let mut entry = Entry::new(id, wanted.kind);
                entry.condition = wanted
                    .condition
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty());
                match hit_condition(&wanted.hit_condition) {
                    Ok(condition) => entry.hit_condition = condition,
                    Err(why) => entry.refused = Some(why),
                }
                entry.log_message = wanted.log_message.filter(|m| !m.is_empty());
                entry
            })
            .collect()
    }

    fn list(&mut self, which: List) -> &mut Vec<Entry> {
        match which {
            List::Functions => &mut self.functions,
            List::Instructions => &mut self.instructions,
        }
    }

    /// What kind of stop a hit of `ids` is, in DAP's words.
    pub(super) fn stop_reason(&self, ids: &[i64]) -> (&'static str, String) {
        let first = ids.first().and_then(|id| self.all().find(|e| e.id == *id));
        match first.map(|e| &e.kind) {
            Some(Kind::Function { name }) => (
                "function breakpoint",
                format!("Paused on function breakpoint {name}"),
            ),
            Some(Kind::Instruction { .. }) => (
                "instruction breakpoint",
                "Paused on instruction breakpoint".into(),
            ),
            Some(Kind::Panic { .. }) => ("exception", "Paused on a Go panic".into()),
            _ => ("breakpoint", "Paused on breakpoint".into()),
        }
    }

    /// Whether the stop is a Go panic filter's, not a user's breakpoint.
    pub(super) fn is_panic(&self, ids: &[i64]) -> bool {
        ids.iter().all(|id| *id < 0)
    }

    /// Whether a breakpoint waits for a library that may be loaded later. Not the Go
    /// panic filters: a Go program's runtime is in its executable, there from the start.
    fn wants_libraries(&self) -> bool {
        self.all().any(|e| {
            !e.verified
                && e.refused.is_none()
                && matches!(e.kind, Kind::Source { .. } | Kind::Function { .. })
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceArg {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceBreakpointArg {
    line: u32,
    #[serde(default)]
    column: Option<u32>,
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    hit_condition: Option<String>,
    #[serde(default)]
    log_message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetBreakpointsArguments {
    #[serde(default)]
    source: SourceArg,
    #[serde(default)]
    breakpoints: Option<Vec<SourceBreakpointArg>>,
    #[serde(default)]
    lines: Option<Vec<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FunctionBreakpointArg {
    name: String,
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    hit_condition: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetFunctionBreakpointsArguments {
    breakpoints: Vec<FunctionBreakpointArg>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstructionBreakpointArg {
    instruction_reference: String,
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    hit_condition: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetInstructionBreakpointsArguments {
    breakpoints: Vec<InstructionBreakpointArg>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetExceptionBreakpointsArguments {
    filters: Vec<String>,
    #[serde(default)]
    filter_options: Option<Vec<FilterOption>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterOption {
    filter_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BreakpointLocationsArguments {
    source: SourceArg,
    line: u32,
    #[serde(default)]
    end_line: Option<u32>,
}

/// Reads a hit condition, or says why it cannot be used.
fn hit_condition(text: &Option<String>) -> Result<Option<HitCondition>, String> {
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => HitCondition::parse(text).map(Some),
    }
}

/// The `breakpoints` answer of a set request: each breakpoint as the client sees it.
fn respond_with(session: &Session, request: &Request, entries: &[Entry]) {
    let body: Vec<Value> = entries.iter().map(Entry::to_json).collect();
    session
        .out
        .respond(Response::ok(request, Some(json!({ "breakpoints": body }))));
}

/// When the program was built from another copy of the file (another checkout, a
/// build directory), says which file the breakpoint was matched to.
fn matched_elsewhere(requested: &str, matched: &str) -> Option<String> {
    let canonical = |path: &str| std::fs::canonicalize(path).ok();
    let same =
        matched == requested || canonical(requested).is_some_and(|c| Some(c) == canonical(matched));
    (!same).then(|| {
        format!("set in {matched}, the file the program was built from (matched by its path's end)")
    })
}

/// `0x401000`, `4198400`: DAP's instruction references are latch's own formatting of
/// addresses, but a user may type one.
fn parse_address(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

impl Session {
    pub(super) async fn set_breakpoints(&mut self, request: &Request) {
        let Some(args) = self.arguments::<SetBreakpointsArguments>(request) else {
            return;
        };
        let Some(path) = args.source.path.clone() else {
            let what = args.source.name.as_deref().unwrap_or("this source");
            let text = format!(
                "cannot set breakpoints in {what}: it has no path (latch sets breakpoints in \
                 files by path)"
            );
            return self.fail(request, "no path", &text);
        };
        let wanted: Vec<SourceBreakpointArg> = match (args.breakpoints, args.lines) {
            (Some(breakpoints), _) => breakpoints,
            (None, Some(lines)) => lines
                .into_iter()
                .map(|line| SourceBreakpointArg {
                    line,
                    ..Default::default()
                })
                .collect(),
            (None, None) => Vec::new(),
        };
        let old = self.breakpoints.sources.remove(&path).unwrap_or_default();
        let wanted = wanted.into_iter().map(|arg| Wanted {
            kind: Kind::Source {
                path: path.clone(),
                line: arg.line,
                column: arg.column,
            },
            condition: arg.condition,
            hit_condition: arg.hit_condition,
            log_message: arg.log_message,
        });
        let mut entries = self.breakpoints.entries(&old, wanted);
        self.resolve_sources(&path, &mut entries).await;
        self.breakpoints.sources.insert(path.clone(), entries);
        self.apply_breakpoints().await;
        respond_with(self, request, &self.breakpoints.sources[&path]);
    }

    pub(super) async fn set_function_breakpoints(&mut self, request: &Request) {
        let Some(args) = self.arguments::<SetFunctionBreakpointsArguments>(request) else {
            return;
        };
        let wanted = args.breakpoints.into_iter().map(|arg| Wanted {
            kind: Kind::Function {
                name: arg.name.trim().to_string(),
            },
            condition: arg.condition,
            hit_condition: arg.hit_condition,
            log_message: None,
        });
        self.replace_list(request, List::Functions, wanted).await;
    }

    pub(super) async fn set_instruction_breakpoints(&mut self, request: &Request) {
        let Some(args) = self.arguments::<SetInstructionBreakpointsArguments>(request) else {
            return;
        };
        let wanted = args.breakpoints.into_iter().map(|arg| Wanted {
            kind: Kind::Instruction {
                reference: arg.instruction_reference,
                offset: arg.offset.unwrap_or(0),
            },
            condition: arg.condition,
            hit_condition: arg.hit_condition,
            log_message: None,
        });
        self.replace_list(request, List::Instructions, wanted).await;
    }

    /// Replaces the function or instruction breakpoints with `wanted`, and answers.
    async fn replace_list(
        &mut self,
        request: &Request,
        which: List,
        wanted: impl Iterator<Item = Wanted>,
    ) {
        let old = std::mem::take(self.breakpoints.list(which));
        let mut entries = self.breakpoints.entries(&old, wanted);
        for entry in &mut entries {
            self.resolve_entry(entry).await;
        }
        *self.breakpoints.list(which) = entries;
        self.apply_breakpoints().await;
        let entries = std::mem::take(self.breakpoints.list(which));
        respond_with(self, request, &entries);
        *self.breakpoints.list(which) = entries;
    }

    pub(super) async fn set_exception_breakpoints(&mut self, request: &Request) {
        let Some(args) = self.arguments::<SetExceptionBreakpointsArguments>(request) else {
            return;
        };
        let mut filters: Vec<String> = args.filters;
        filters.extend(
            args.filter_options
                .into_iter()
                .flatten()
                .map(|o| o.filter_id),
        );
        let known = exception_filters();
        let known: Vec<&str> = known
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|f| f["filter"].as_str())
            .collect();
        if let Some(unknown) = filters.iter().find(|f| !known.contains(&f.as_str())) {
            let text = format!(
                "unknown exception filter `{unknown}`; latch's filters are {}",
                known.join(", ")
            );
            return self.fail(request, "unknown filter", &text);
        }
        let on = |name: &str| filters.iter().any(|f| f == name);
        let chosen: Vec<i32> = SignalFilters::CRASHES
            .iter()
            .copied()
            .filter(|&signal| on(&super::lifecycle::signal_name(signal)))
            .collect();
        let signals = if on("handled-signals") {
            SignalFilters {
                fatal: Vec::new(),
                always: chosen,
                all_others: on("other-signals"),
            }
        } else {
            SignalFilters {
                fatal: chosen,
                always: Vec::new(),
                all_others: on("other-signals"),
            }
        };
        self.breakpoints.signals = signals.clone();
        let mut panics = Vec::new();
        for (id, filter, function) in [
            (GO_PANIC_ID, "go-panic", "runtime.fatalpanic"),
            (GO_PANIC_ALL_ID, "go-panic-all", "runtime.gopanic"),
        ] {
            if on(filter) {
                let mut entry = Entry::new(id, Kind::Panic { function });
                self.resolve_entry(&mut entry).await;
                panics.push(entry);
            }
        }
        self.breakpoints.panics = panics;
        if self.target.is_some() {
            self.backend.set_signal_filters(signals).await;
        }
        self.apply_breakpoints().await;
        let body: Vec<Value> = filters
            .iter()
            .map(|_| json!({ "verified": true }))
            .collect();
        self.out
            .respond(Response::ok(request, Some(json!({ "breakpoints": body }))));
    }

    pub(super) async fn breakpoint_locations(&mut self, request: &Request) {
        let Some(args) = self.arguments::<BreakpointLocationsArguments>(request) else {
            return;
        };
        let Some(path) = args.source.path else {
            return self.fail(request, "no path", "the source has no path");
        };
        let locations = if self.attached_target() {
            self.symbols
                .breakpoint_locations(path, args.line, args.end_line)
                .await
        } else {
            Vec::new()
        };
        let body: Vec<Value> = locations
            .into_iter()
            .map(|(line, column)| match column {
                Some(column) => json!({ "line": line, "column": column }),
                None => json!({ "line": line }),
            })
            .collect();
        self.out
            .respond(Response::ok(request, Some(json!({ "breakpoints": body }))));
    }

    fn attached_target(&self) -> bool {
        self.target.as_ref().is_some_and(|t| !t.exited)
    }

    /// Resolves one file's breakpoints in one visit to the symbols thread.
    async fn resolve_sources(&mut self, path: &str, entries: &mut [Entry]) {
        if !self.attached_target() {
            for entry in entries.iter_mut() {
                entry.verified = false;
                entry.message = Some(
                    entry
                        .refused
                        .clone()
                        .unwrap_or_else(|| "not attached to a process yet".into()),
                );
            }
            return;
        }
        let lines: Vec<u32> = entries
            .iter()
            .map(|e| match e.kind {
                Kind::Source { line, .. } => line,
                _ => 0,
            })
            .collect();
        let resolutions = self.symbols.resolve_lines(path.to_string(), lines).await;
        for (entry, resolution) in entries.iter_mut().zip(resolutions) {
            match resolution.found {
                Ok(found) => {
                    entry.verified = entry.refused.is_none();
                    entry.message = entry
                        .refused
                        .clone()
                        .or_else(|| matched_elsewhere(path, &found.file));
                    entry.line = Some(found.line);
                    entry.column = found.column;
                    entry.file = Some(found.file);
                    entry.addresses = found.addresses;
                }
                Err(why) => {
                    entry.verified = false;
                    entry.message = Some(entry.refused.clone().unwrap_or(why));
                    entry.addresses.clear();
                }
            }
        }
    }

    /// Resolves a function, instruction or panic breakpoint.
    async fn resolve_entry(&mut self, entry: &mut Entry) {
        if !self.attached_target() {
            entry.verified = false;
            entry.message = Some(
                entry
                    .refused
                    .clone()
                    .unwrap_or_else(|| "not attached to a process yet".into()),
            );
            return;
        }
        let found: Result<Found, String> = match &entry.kind {
            Kind::Function { name } => {
                self.symbols
                    .resolve_function(name.clone())
                    .await
                    .map(|locations| {
                        let place = locations
                            .first()
                            .and_then(|l| l.file.clone().map(|f| (f, l.line)));
                        (locations.iter().map(|l| l.address).collect(), place)
                    })
            }
            Kind::Panic { function } => {
                let pid = self.target.as_ref().map_or(0, |t| t.pid);
                if crate::symbols::gopclntab::is_go_program(pid) {
                    // Resolved before the attach's first stop: Go's table and one line
                    // program place it in microseconds where the runtime unit's DWARF
                    // entries take milliseconds (same address; no inlined copies, which
                    // these functions have none of).
                    self.symbols
                        .resolve_go_runtime_function(function.to_string())
                        .await
                        .map(|locations| (locations.iter().map(|l| l.address).collect(), None))
                } else {
                    Err("not a Go program".to_string())
                }
            }
            Kind::Instruction { reference, offset } => parse_address(reference)
                .and_then(|a| a.checked_add_signed(*offset))
                .map(|a| (vec![a], None))
                .ok_or_else(|| {
                    format!(
                        "`{reference}` is not an address: give an instructionReference such as \
                         0x401136"
                    )
                }),
            Kind::Source { .. } => unreachable!("sources resolve by file"),
        };
        match found {
            Ok((addresses, _)) if addresses.is_empty() => {
                entry.verified = false;
                entry.message = Some("no code found for it in the loaded modules".into());
                entry.addresses.clear();
            }
            Ok((addresses, place)) => {
                entry.verified = entry.refused.is_none();
                entry.message = entry.refused.clone();
                entry.addresses = addresses;
                if let Some((file, line)) = place {
                    entry.file = Some(file);
                    entry.line = Some(line);
                }
            }
            Err(why) => {
                entry.verified = false;
                entry.message = Some(entry.refused.clone().unwrap_or(why));
                entry.addresses.clear();
            }
        }
    }

    /// Sends the whole set to the ptrace thread; a breakpoint none of whose addresses
    /// could be written is unverified, with why. Also watches the dynamic loader while
    /// some breakpoint waits for a library.
    async fn apply_breakpoints(&mut self) {
        if !self.attached_target() {
            return;
        }
        self.compile_breakpoints().await;
        let wanted: Vec<UserBreakpoint> =
            self.breakpoints.all().filter_map(Entry::to_user).collect();
        let pid = self.target.as_ref().map(|t| t.pid);
        if !wanted.is_empty() && self.breakpoints.slot_sent_for != pid {
            // Found once per process, when the first breakpoint goes in.
            self.breakpoints.slot_sent_for = pid;
            if let Some((address, len)) = pid.and_then(crate::symbols::scratch::displaced_slot) {
                self.backend.set_scratch(address, len).await;
            }
        }
        match self.backend.set_breakpoints(wanted).await {
            Ok(failures) => {
                for (id, failed) in failures {
                    if failed.is_empty() {
                        continue;
                    }
                    let Some(entry) = self.breakpoints.all_mut().find(|e| e.id == id) else {
                        continue;
                    };
                    entry
                        .addresses
                        .retain(|a| !failed.iter().any(|(f, _)| f == a));
                    if entry.addresses.is_empty() {
                        entry.verified = false;
                        entry.message = Some(format!(
                            "cannot write the breakpoint into the process: {}",
                            failed[0].1
                        ));
                    }
                }
            }
            Err(err) => tracing::warn!("could not set breakpoints: {err}"),
        }
        let hook = if self.breakpoints.wants_libraries() {
            self.symbols.loader_breakpoint().await
        } else {
            None
        };
        self.backend.watch_libraries(hook).await;
    }

    /// Compiles the conditions and log messages of breakpoints whose addresses changed
    /// since they were last compiled; one that cannot mean anything there is shown
    /// unverified with why, and not inserted (a condition ignored would stop where the
    /// user asked it not to).
    async fn compile_breakpoints(&mut self) {
        // (id, addresses, condition, log message) of each breakpoint to compile.
        type Pending = (i64, Vec<u64>, Option<String>, Option<String>);
        let pending: Vec<Pending> = self
            .breakpoints
            .all()
            .filter(|e| e.verified && !e.addresses.is_empty() && e.needs_compiling())
            .filter(|e| {
                e.compiled
                    .as_ref()
                    .is_none_or(|(addresses, _)| *addresses != e.addresses)
            })
            .map(|e| {
                (
                    e.id,
                    e.addresses.clone(),
                    e.condition.clone(),
                    e.log_expressions().map(str::to_string),
                )
            })
            .collect();
        for (id, addresses, condition, log) in pending {
            let compiled = self
                .symbols
                .compile_breakpoint(addresses.clone(), condition, log)
                .await;
            if let Some(entry) = self.breakpoints.all_mut().find(|e| e.id == id) {
                entry.compiled = Some((addresses, compiled));
            }
        }
        for entry in self.breakpoints.all_mut() {
            if let Some((addresses, Err(why))) = &entry.compiled {
                if entry.verified && *addresses == entry.addresses {
                    entry.verified = false;
                    entry.message = Some(why.clone());
                }
            }
        }
    }

    /// At the end of an attach: the signal filters go to the ptrace thread, and the
    /// breakpoints not yet resolved (set before the process was attached) are.
    pub(super) async fn breakpoints_for_attach(&mut self) {
        if !self.attached_target() {
            return;
        }
        if self.breakpoints.wants_libraries() {
            return self.resolve_all_breakpoints(true).await;
        }
        self.backend
            .set_signal_filters(self.breakpoints.signals.clone())
            .await;
        // The Go panic filters (on by default) are resolved once per process: in a Go
        // program they are breakpoints on its runtime.
        let pid = self.target.as_ref().map(|t| t.pid);
        if self.breakpoints.panics_resolved_for != pid {
            self.breakpoints.panics_resolved_for = pid;
            let mut panics = std::mem::take(&mut self.breakpoints.panics);
            for entry in &mut panics {
                self.resolve_entry(entry).await;
            }
            let inserted = panics.iter().any(|e| e.verified);
            self.breakpoints.panics = panics;
            if inserted {
                self.apply_breakpoints().await;
            }
        }
    }

    /// Resolves every breakpoint again (the process was attached, or libraries came or
    /// went) and tells the client of each that changed.
    pub(super) async fn resolve_all_breakpoints(&mut self, announce: bool) {
        if !self.attached_target() {
            return;
        }
        let before: Vec<(i64, Shown)> = self.breakpoints.all().map(|e| (e.id, e.shown())).collect();
        let paths: Vec<String> = self.breakpoints.sources.keys().cloned().collect();
        for path in paths {
            let mut entries = self.breakpoints.sources.remove(&path).unwrap_or_default();
            self.resolve_sources(&path, &mut entries).await;
            self.breakpoints.sources.insert(path, entries);
        }
        for list in [0, 1, 2] {
            let mut entries = match list {
                0 => std::mem::take(&mut self.breakpoints.functions),
                1 => std::mem::take(&mut self.breakpoints.instructions),
                _ => std::mem::take(&mut self.breakpoints.panics),
            };
            for entry in &mut entries {
                self.resolve_entry(entry).await;
            }
            match list {
                0 => self.breakpoints.functions = entries,
                1 => self.breakpoints.instructions = entries,
                _ => self.breakpoints.panics = entries,
            }
        }
        self.backend
            .set_signal_filters(self.breakpoints.signals.clone())
            .await;
        self.apply_breakpoints().await;
        if !announce {
            return;
        }
        let changed: Vec<Value> = self
            .breakpoints
            .all()
            .filter(|e| e.id > 0)
            .filter(|e| {
                before
                    .iter()
                    .find(|(id, _)| *id == e.id)
                    .is_none_or(|(_, shown)| *shown != e.shown())
            })
            .map(Entry::to_json)
            .collect();
        for breakpoint in changed {
            self.out.event(
                "breakpoint",
                json!({ "reason": "changed", "breakpoint": breakpoint }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_match_elsewhere_is_said() {
        assert_eq!(
            matched_elsewhere("/nonexistent/a.c", "/nonexistent/a.c"),
            None
        );
        let said = matched_elsewhere("/home/me/src/a.c", "/build/src/a.c").unwrap();
        assert!(said.contains("/build/src/a.c"), "{said}");
    }

    #[test]
    fn addresses_read_as_hex_or_decimal() {
        assert_eq!(parse_address("0x401136"), Some(0x401136));
        assert_eq!(parse_address(" 4198710 "), Some(4198710));
        assert_eq!(parse_address("main"), None);
    }

    #[test]
    fn ids_stay_for_the_same_line_and_count_up_for_new_ones() {
        let mut breakpoints = Breakpoints::default();
        let line = |n| Kind::Source {
            path: "/a.c".into(),
            line: n,
            column: None,
        };
        let first = breakpoints.id_for(&[], &line(3));
        let old = vec![Entry::new(first, line(3))];
        assert_eq!(breakpoints.id_for(&old, &line(3)), first);
        assert_eq!(breakpoints.id_for(&old, &line(4)), first + 1);
    }
}
