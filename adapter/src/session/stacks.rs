//! What a stopped target looks like: `stackTrace`, `scopes` and `variables` (registers),
//! `source` for files that are not on this machine, and `modules`. Frame and variable
//! ids live until the target runs again (`Session::running`).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde_json::{json, Value};

use super::Session;
use crate::dap::{Request, Response};
use crate::procfs::Pid;
use crate::ptrace::ThreadInfo;
use crate::symbols::variables::{CallerQuery, FrameQuery};
use crate::symbols::{ModuleSummary, Registers, StackFrame, SymbolStatus};

/// What one stop has computed, dropped when the target resumes.
#[derive(Default)]
pub(super) struct StopState {
    /// The thread the `stopped` event named: editors ask for its stack first.
    pub(super) reported: Option<Pid>,
    /// The thread list the ptrace thread sends once it has read every name ahead.
    thread_list: ThreadList,
    pub(super) registers: Option<FxHashMap<Pid, libc::user_regs_struct>>,
    /// Stacks the symbols thread is still walking for this stop: every thread's, the
    /// first one asked for first, so that an editor asking thread by thread (or a
    /// thousand requests at once) waits for one walk, not one round trip each.
    walking: Option<tokio::sync::mpsc::UnboundedReceiver<(Pid, Vec<StackFrame>)>>,
    /// Each thread's stack and the id of its frame 0; ids of a stack are consecutive.
    pub(super) stacks: FxHashMap<Pid, (i64, Vec<StackFrame>)>,
    /// frame id - `first_frame_id` -> (thread, index in its stack).
    pub(super) frames: Vec<(Pid, usize)>,
    /// The id of `frames[0]` (0 stands for 1, the first stop's). Ids go on from one stop to the next, never starting over,
    /// so that a frame id of a stop that is over is refused instead of naming a frame of
    /// this one.
    pub(super) first_frame_id: i64,
    /// Each distinct frame's JSON but its id. The threads of a process share most of
    /// their frames, and writing one (escaping its names and paths) was most of what a
    /// `stackTrace` answer cost: 18 of 21 M instructions for a thousand threads.
    written_frames: FxHashMap<FrameKey, String>,
    /// A Go program's goroutines in this stop: `None` until read, `Some(None)` when the
    /// threads are shown instead.
    pub(super) goroutines: Option<Option<super::goroutines::StopGoroutines>>,
}

/// A stop's threads, as the ptrace thread lists them after reading ahead. A stopped
/// target keeps its threads, so `threads` can be answered here, without the two thread
/// hops of asking the ptrace thread, each of which waits for a core when DWARF is being
/// read on all of them. Thread events the session handles after the list came were sent
/// before it (from the ptrace thread, in order), so they are in it already: no thread
/// starts or ends while all are stopped, short of the whole process being killed.
#[derive(Default)]
enum ThreadList {
    #[default]
    Unknown,
    Reading(tokio::sync::oneshot::Receiver<Vec<ThreadInfo>>),
    Read(Vec<ThreadInfo>),
}

/// What a frame's JSON depends on, besides its id.
#[derive(PartialEq, Eq, Hash)]
struct FrameKey {
    pc: u64,
    line: u32,
    column: u32,
    function: Option<Arc<str>>,
    file: Option<Arc<str>>,
    module: Option<Arc<str>>,
}

impl FrameKey {
    fn of(frame: &StackFrame) -> FrameKey {
        FrameKey {
            pc: frame.pc,
            line: frame.line,
            column: frame.column,
            function: frame.function.clone(),
            file: frame.file.clone(),
            module: frame.module.clone(),
        }
    }
}

/// A `StackFrame` of the protocol, all but its `id`, written straight from these types.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DapFrame<'a> {
    name: Cow<'a, str>,
    line: u32,
    column: u32,
    instruction_pointer_reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    module_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<DapSource<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presentation_hint: Option<&'static str>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DapSource<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_reference: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presentation_hint: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<&'static str>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StackTraceArguments {
    thread_id: i64,
    #[serde(default)]
    start_frame: Option<u64>,
    #[serde(default)]
    levels: Option<u64>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScopesArguments {
    frame_id: i64,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct VariablesArguments {
    variables_reference: i64,
    #[serde(default)]
    start: Option<u64>,
    #[serde(default)]
    count: Option<u64>,
    /// `named` or `indexed`: only those children (editors page the indexed ones).
    #[serde(default)]
    filter: Option<String>,
    #[serde(default)]
    format: Option<ValueFormat>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetVariableArguments {
    variables_reference: i64,
    name: String,
    value: String,
    #[serde(default)]
    format: Option<ValueFormat>,
}

/// DAP's `ValueFormat`: how an editor asks for values ("View as hex").
#[derive(Debug, Default, Clone, Copy, serde::Deserialize)]
pub(super) struct ValueFormat {
    #[serde(default)]
    pub(super) hex: Option<bool>,
}

impl ValueFormat {
    pub(super) fn hex(format: Option<ValueFormat>) -> bool {
        format.and_then(|f| f.hex).unwrap_or(false)
    }
}

/// What a variable and an `evaluate` answer share beside the value's text: its type, how
/// to expand it, how many elements to page through, where its memory view opens.
pub(super) fn add_value_details(body: &mut Value, row: &crate::symbols::variables::VariableRow) {
    body["type"] = json!(row.type_name);
    body["variablesReference"] = json!(value_reference(row.handle));
    if let Some(indexed) = row.indexed {
        body["indexedVariables"] = json!(indexed);
    }
    if let Some(named) = row.named {
        body["namedVariables"] = json!(named);
    }
    if let Some(address) = row.memory_reference {
        body["memoryReference"] = json!(format!("{address:#x}"));
    }
}

/// The DAP reference of a values handle (0: nothing to expand).
pub(super) fn value_reference(handle: u32) -> i64 {
    match handle {
        0 => 0,
        handle => VALUE_REFERENCES + i64::from(handle),
    }
}

/// Where the references of values (scopes and what expands) begin; below it, a
/// reference is a frame id and names that frame's registers. Frame ids start over from 1
/// when they reach [`MAX_FRAME_ID`], far below it.
const VALUE_REFERENCES: i64 = 1 << 28;

/// Frame ids go up to this, then start over (a hundred million frames shown later).
const MAX_FRAME_ID: i64 = 1 << 27;

impl StopState {
    /// A new stop's state, its frame ids following on from `previous`'s.
    pub(super) fn after(previous: &StopState) -> StopState {
        let next = previous.next_frame_id();
        StopState {
            first_frame_id: if next >= MAX_FRAME_ID { 1 } else { next },
            ..StopState::default()
        }
    }

    /// The id the next frame given out gets.
    pub(super) fn next_frame_id(&self) -> i64 {
        self.first_frame_id.max(1) + self.frames.len() as i64
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceArguments {
    #[serde(default)]
    source_reference: Option<i64>,
    #[serde(default)]
    source: Option<SourceReference>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceReference {
    #[serde(default)]
    source_reference: Option<i64>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModulesArguments {
    #[serde(default)]
    start_module: Option<u64>,
    #[serde(default)]
    module_count: Option<u64>,
}

impl Session {
    pub(super) async fn stack_trace(&mut self, request: &Request) {
        let Some(args) = self.arguments::<StackTraceArguments>(request) else {
            return;
        };
        if !self.require_stopped(request) {
            return;
        }
        let Ok(tid) = Pid::try_from(args.thread_id) else {
            return self.fail(request, "no such thread", "threadId is not a thread id");
        };
        if args.thread_id >= super::goroutines::GOROUTINE_ID_BASE {
            let listed = self.stop_goroutines().await.is_some();
            if !listed || !self.stop.stacks.contains_key(&tid) {
                let text = match self.thread_for(args.thread_id) {
                    Err(text) if listed => text,
                    _ => format!(
                        "{} is not a goroutine of this stop: the goroutine list is not shown \
                         (see the `goroutines` argument)",
                        args.thread_id
                    ),
                };
                return self.fail(request, "no such thread", &text);
            }
        }
        let Some((first_id, total)) = self.stack_of(tid).await else {
            return self.fail(
                request,
                "no such thread",
                &format!(
                    "thread {tid} is not a stopped thread of the target (it may have exited, or \
                     be one that could not be stopped)"
                ),
            );
        };
        let start = (args.start_frame.unwrap_or(0) as usize).min(total);
        let end = match args.levels {
            Some(levels) if levels > 0 => start.saturating_add(levels as usize).min(total),
            _ => total,
        };
        // The stack is lent out of the stop while its frames are written (`dap_source`
        // needs `self`), rather than copied: a thousand threads' stacks are all asked for
        // at once.
        let Some((first, frames)) = self.stop.stacks.remove(&tid) else {
            return;
        };
        let mut body = String::with_capacity(64 + 320 * (end - start));
        body.push_str("{\"stackFrames\":[");
        for (i, frame) in frames[start..end].iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            let id = first_id + (start + i) as i64;
            let _ = write!(body, "{{\"id\":{id},");
            let key = FrameKey::of(frame);
            match self.stop.written_frames.get(&key) {
                // Both start with the object's `{`, which the id's field replaced.
                Some(fields) => body.push_str(&fields[1..]),
                None => {
                    let fields =
                        serde_json::to_string(&self.dap_frame(frame)).expect("frames serialize");
                    body.push_str(&fields[1..]);
                    self.stop.written_frames.insert(key, fields);
                }
            }
        }
        let _ = write!(body, "],\"totalFrames\":{total}}}");
        self.stop.stacks.insert(tid, (first, frames));
        self.out.respond(Response::ok_written(request, body));
    }

    /// The thread's stack in this stop, computed on first use: the id of its frame 0
    /// and its frame count (the frames stay in `self.stop.stacks`).
    async fn stack_of(&mut self, tid: Pid) -> Option<(i64, usize)> {
        // The editor waits now: DWARF still being read in the background gets latch's
        // priority back until this stack is named.
        let _hurry = crate::priority::wait_for_background();
        loop {
            if let Some((first, frames)) = self.stop.stacks.get(&tid) {
                return Some((*first, frames.len()));
            }
            if self.stop.walking.is_none() {
                self.start_walking(tid).await;
            }
            let walking = self.stop.walking.as_mut()?;
            // A thread with no registers (not stopped, or gone) is never sent: the
            // channel closes when the walk is done.
            let (walked, frames) = walking.recv().await?;
            let first = self.stop.next_frame_id();
            self.stop
                .frames
                .extend((0..frames.len()).map(|index| (walked, index)));
            self.stop.stacks.insert(walked, (first, frames));
        }
    }

    /// Sends the `stopped` event of a stop of every thread, naming `thread`. The names
    /// and registers every editor asks for next are read ahead, starting before the
    /// event goes out: an editor's `threads` request can follow it within 0.1 ms.
    pub(super) async fn report_stop(&mut self, thread: Pid, reason: &str, description: &str) {
        self.report_stop_with(
            thread,
            json!({ "reason": reason, "description": description }),
        )
        .await;
    }

    /// `report_stop` with more of the event's fields (`hitBreakpointIds`, `text`).
    /// In a Go program's goroutine view, the goroutine the thread runs is named (its
    /// goroutines are read before the event goes out).
    pub(super) async fn report_stop_with(&mut self, thread: Pid, mut body: Value) {
        self.stop.thread_list = ThreadList::Reading(self.backend.read_ahead());
        self.stop.reported = Some(thread);
        let pause = body["reason"] == "pause";
        let shown = self.shown_id(thread, pause).await;
        body["threadId"] = json!(shown);
        body["allThreadsStopped"] = json!(true);
        self.out.event("stopped", body);
    }

    /// This stop's threads, if the ptrace thread has listed them already.
    pub(super) fn listed_threads(&mut self) -> Option<&[ThreadInfo]> {
        let list = &mut self.stop.thread_list;
        if let ThreadList::Reading(listing) = list {
            *list = match listing.try_recv() {
                Ok(threads) => ThreadList::Read(threads),
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => return None,
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => ThreadList::Unknown,
            };
        }
        match list {
            ThreadList::Read(threads) => Some(threads),
            _ => None,
        }
    }

    /// After the `threads` answer of a stop, editors ask for stacks (VS Code: the
    /// reported thread's, at once): start walking them all, that one first, instead of
    /// waiting for the request. Their registers have mostly been read ahead by then.
    pub(super) async fn walk_ahead(&mut self) {
        let stopped = self.target.as_ref().is_some_and(|t| t.stopped && !t.exited);
        if let (true, None, Some(first)) = (stopped, &self.stop.walking, self.stop.reported) {
            self.start_walking(first).await;
        }
    }

    async fn start_walking(&mut self, first: Pid) {
        let all = self.backend.registers().await.unwrap_or_default();
        let mut threads: Vec<(Pid, Registers)> = all
            .iter()
            .map(|(tid, regs)| (*tid, Registers::from_user_regs(regs)))
            .collect();
        // The one asked for first; the rest in tid order, as editors list them.
        threads.sort_by_key(|(tid, _)| (*tid != first, *tid));
        self.stop.registers = Some(all.into_iter().collect());
        self.stop.walking = Some(self.symbols.stacks(threads));
    }

    fn dap_frame<'a>(&mut self, frame: &'a StackFrame) -> DapFrame<'a> {
        let source = frame.file.as_deref().map(|file| self.dap_source(file));
        DapFrame {
            name: match &frame.function {
                Some(name) => Cow::Borrowed(name),
                None => Cow::Owned(frame.display_name()),
            },
            line: frame.line,
            column: frame.column,
            instruction_pointer_reference: format!("{:#018x}", frame.pc),
            module_id: frame.module.as_deref(),
            presentation_hint: if frame
                .function
                .as_deref()
                .is_some_and(|f| f.starts_with(crate::symbols::service::CREATED_BY))
            {
                Some("label")
            } else {
                source.is_none().then_some("subtle")
            },
            source,
        }
    }

    /// A file on disk is shown by path; one that is not (built elsewhere, moved) gets a
    /// reference whose `source` request explains, instead of an editor error.
    fn dap_source<'a>(&mut self, file: &'a str) -> DapSource<'a> {
        let name = file.rsplit('/').next().unwrap_or(file);
        let missing = match self.source_refs.get(file) {
            Some(known) => *known,
            None => {
                let reference = if Path::new(file).is_file() {
                    None
                } else {
                    self.missing_sources.push(file.to_string());
                    Some(self.missing_sources.len() as i64)
                };
                self.source_refs.insert(file.to_string(), reference);
                reference
            }
        };
        DapSource {
            name,
            // DWARF may name files relative to a build folder that is gone; a relative
            // `path` would only confuse the editor.
            path: file.starts_with('/').then_some(file),
            source_reference: missing,
            presentation_hint: missing.map(|_| "deemphasize"),
            origin: missing.map(|_| "not on this machine"),
        }
    }

    pub(super) async fn scopes(&mut self, request: &Request) {
        let Some(args) = self.arguments::<ScopesArguments>(request) else {
            return;
        };
        let Some(query) = self.frame_query(args.frame_id) else {
            return self.fail(request, "no such frame", &stale_frame(args.frame_id));
        };
        // The frame's arguments, locals and its unit's globals (from DWARF, when the
        // frame's code has it), then its registers under the frame's own id.
        let mut scopes: Vec<Value> = match self.symbols.frame_scopes(query).await {
            Ok(found) => found
                .into_iter()
                .map(|scope| {
                    let mut body = json!({
                        "name": scope.name,
                        "variablesReference": VALUE_REFERENCES + i64::from(scope.handle),
                        "expensive": scope.expensive,
                    });
                    let hint = match scope.name {
                        "Arguments" => Some("arguments"),
                        "Locals" => Some("locals"),
                        _ => None,
                    };
                    if let Some(hint) = hint {
                        body["presentationHint"] = json!(hint);
                    }
                    if let Some(count) = scope.count {
                        body["namedVariables"] = json!(count);
                    }
                    body
                })
                .collect(),
            Err(err) => {
                self.out.output(
                    "console",
                    &format!("latch: cannot read this frame's variables: {err}"),
                );
                Vec::new()
            }
        };
        scopes.push(json!({
            "name": "Registers",
            "presentationHint": "registers",
            "variablesReference": args.frame_id,
            "expensive": false,
        }));
        self.out
            .respond(Response::ok(request, Some(json!({ "scopes": scopes }))));
    }

    /// What the symbols side needs to read frame `frame_id`'s variables.
    pub(super) fn frame_query(&self, frame_id: i64) -> Option<FrameQuery> {
        let (tid, (frame, index)) = self.frame(frame_id)?;
        let frames = &self.stop.stacks.get(&tid)?.1;
        // Inlined calls share their physical frame's pc and registers: the first of the
        // chain is the innermost (depth 0), the last the physical frame.
        let same_place = |f: &StackFrame| f.pc == frame.pc && f.registers == frame.registers;
        let chain_start = (0..index)
            .rev()
            .take_while(|&j| frames[j].inlined && same_place(&frames[j]))
            .last()
            .unwrap_or(index);
        let physical = (index..frames.len())
            .find(|&j| !frames[j].inlined)
            .unwrap_or(frames.len() - 1);
        let thread = self.registers_key(tid);
        // The caller of the physical frame's function (its innermost inlined call shares
        // its pc and registers): where parameters' values on entry come from.
        let caller = frames.get(physical + 1).map(|caller| {
            let caller_physical = (physical + 1..frames.len())
                .find(|&j| !frames[j].inlined)
                .unwrap_or(frames.len() - 1);
            CallerQuery {
                pc: caller.pc,
                registers: caller.registers,
                cfa: frames
                    .get(caller_physical + 1)
                    .and_then(|outer| outer.registers.sp()),
            }
        });
        Some(FrameQuery {
            pc: frame.pc,
            is_caller: chain_start > 0,
            inline_depth: index - chain_start,
            registers: frame.registers,
            // The caller's stack pointer is this frame's CFA (x86-64's CFI defines it so).
            cfa: frames
                .get(physical + 1)
                .and_then(|caller| caller.registers.sp()),
            thread_pointer: self
                .stop
                .registers
                .as_ref()
                .and_then(|all| all.get(&thread))
                .map(|regs| regs.fs_base),
            caller,
        })
    }

    pub(super) async fn variables(&mut self, request: &Request) {
        let Some(args) = self.arguments::<VariablesArguments>(request) else {
            return;
        };
        if args.variables_reference >= VALUE_REFERENCES {
            return self.value_variables(request, &args).await;
        }
        let Some((tid, frame)) = self.frame(args.variables_reference) else {
            return self.fail(
                request,
                "no such variables",
                &stale_frame(args.variables_reference),
            );
        };
        let top = self.stop.stacks.get(&tid).is_some_and(|(_, frames)| {
            frames[..=frame.1]
                .iter()
                .all(|f| f.pc == frames[0].pc && f.registers == frames[0].registers)
        });
        // A goroutine's stack: a running one's innermost frame has its thread's registers;
        // a parked one's, the pc, sp and bp the scheduler saved, all there is.
        let thread = self.registers_key(tid);
        let full = self
            .stop
            .registers
            .as_ref()
            .and_then(|all| all.get(&thread));
        let registers: Vec<(&str, u64)> = match (top, full) {
            // The innermost physical frame has every register, flags and segments too.
            (true, Some(regs)) => crate::symbols::unwind::named_registers(regs),
            _ => frame.0.registers.known().collect(),
        };
        let variables: Vec<Value> = registers
            .into_iter()
            .map(|(name, value)| {
                json!({ "name": name, "value": format!("{value:#018x}"), "variablesReference": 0 })
            })
            .collect();
        self.out.respond(Response::ok(
            request,
            Some(json!({ "variables": variables })),
        ));
    }

    /// `setVariable`: the value the user typed, converted to the variable's type on the
    /// symbols thread, written by the ptrace thread, and read back as the answer.
    pub(super) async fn set_variable(&mut self, request: &Request) {
        let Some(args) = self.arguments::<SetVariableArguments>(request) else {
            return;
        };
        if args.variables_reference < VALUE_REFERENCES {
            let text = "registers cannot be set yet: latch sets variables in memory";
            return self.fail(request, "cannot set", text);
        }
        let handle = u32::try_from(args.variables_reference - VALUE_REFERENCES).unwrap_or(0);
        let assignment = self
            .symbols
            .assignment(handle, args.name.clone(), args.value.clone())
            .await;
        let (address, bytes) = match assignment {
            Ok(found) => found,
            Err(why) => return self.fail(request, "cannot set", &why),
        };
        let wanted = bytes.len();
        match self.backend.write_memory(address, bytes).await {
            Ok(written) if written == wanted => {}
            Ok(_) | Err(_) => {
                let text = format!(
                    "cannot write '{}' at {address:#x}: the memory is not writable",
                    args.name
                );
                return self.fail(request, "cannot set", &text);
            }
        }
        let hex = ValueFormat::hex(args.format);
        let rows = self
            .symbols
            .variables(handle, 0, None, crate::values::ChildFilter::All, hex)
            .await;
        let row = rows
            .ok()
            .and_then(|rows| rows.into_iter().find(|row| row.name == args.name));
        let mut body = match &row {
            Some(row) => json!({ "value": row.value }),
            None => json!({ "value": args.value }),
        };
        if let Some(row) = &row {
            add_value_details(&mut body, row);
        }
        self.out.respond(Response::ok(request, Some(body)));
    }

    /// The children of a scope or of a value that expands.
    async fn value_variables(&mut self, request: &Request, args: &VariablesArguments) {
        let handle = u32::try_from(args.variables_reference - VALUE_REFERENCES).unwrap_or(0);
        let rows = self
            .symbols
            .variables(
                handle,
                args.start.unwrap_or(0),
                args.count,
                match args.filter.as_deref() {
                    Some("named") => crate::values::ChildFilter::Named,
                    Some("indexed") => crate::values::ChildFilter::Indexed,
                    _ => crate::values::ChildFilter::All,
                },
                ValueFormat::hex(args.format),
            )
            .await;
        match rows {
            Ok(rows) => {
                let variables: Vec<Value> = rows
                    .into_iter()
                    .map(|row| {
                        let mut body = json!({ "name": row.name, "value": row.value });
                        add_value_details(&mut body, &row);
                        body
                    })
                    .collect();
                self.out.respond(Response::ok(
                    request,
                    Some(json!({ "variables": variables })),
                ));
            }
            Err(err) => self.fail(request, "no such variables", &err),
        }
    }

    /// The frame with this id in the current stop: (thread, (frame, index)).
    fn frame(&self, id: i64) -> Option<(Pid, (StackFrame, usize))> {
        let index = usize::try_from(id.checked_sub(self.stop.first_frame_id.max(1))?).ok()?;
        let (tid, at) = *self.stop.frames.get(index)?;
        let frame = self.stop.stacks.get(&tid)?.1.get(at)?.clone();
        Some((tid, (frame, at)))
    }

    pub(super) fn source(&mut self, request: &Request) {
        let Some(args) = self.arguments::<SourceArguments>(request) else {
            return;
        };
        let reference = args
            .source
            .and_then(|s| s.source_reference)
            .or(args.source_reference)
            .unwrap_or(0);
        let Some(path) = usize::try_from(reference - 1)
            .ok()
            .and_then(|i| self.missing_sources.get(i))
        else {
            return self.fail(
                request,
                "no such source",
                &format!("latch gave out no source reference {reference}"),
            );
        };
        let content = format!(
            "The source file {path}\nis not on this machine: the program was built elsewhere, or \
             the file was moved or deleted.\nLine numbers in the call stack still refer to it; \
             put the source at that path to see it here.\n"
        );
        self.out.respond(Response::ok(
            request,
            Some(json!({ "content": content, "mimeType": "text/plain" })),
        ));
    }

    pub(super) async fn modules(&mut self, request: &Request) {
        let Some(args) = self.arguments::<ModulesArguments>(request) else {
            return;
        };
        if self.require_target(request).is_none() {
            return;
        }
        let modules = self.symbols.modules().await;
        let total = modules.len();
        let start = (args.start_module.unwrap_or(0) as usize).min(total);
        let end = match args.module_count {
            Some(count) if count > 0 => start.saturating_add(count as usize).min(total),
            _ => total,
        };
        let list: Vec<Value> = modules[start..end].iter().map(module_json).collect();
        self.out.respond(Response::ok(
            request,
            Some(json!({ "modules": list, "totalModules": total })),
        ));
    }

    /// `module` events for what changed since the last announcement (everything, after
    /// the attach; libraries loaded or unloaded since, at a later stop), sent when the
    /// symbols thread has read them, without holding up the session.
    pub(super) fn announce_modules(&self) {
        let symbols = self.symbols.clone();
        let out = self.out.clone();
        let announced = self.announced_modules.clone();
        tokio::spawn(async move {
            let modules = symbols.modules().await;
            let mut announced = announced.lock().unwrap_or_else(|e| e.into_inner());
            for module in &modules {
                if announced.insert(module.path.clone()) {
                    out.event(
                        "module",
                        json!({ "reason": "new", "module": module_json(module) }),
                    );
                }
            }
            announced.retain(|path| {
                let still_mapped = modules.iter().any(|m| &m.path == path);
                if !still_mapped {
                    out.event(
                        "module",
                        json!({ "reason": "removed", "module": {
                            "id": path,
                            "name": path.rsplit('/').next().unwrap_or(path),
                        } }),
                    );
                }
                still_mapped
            });
        });
    }

    fn require_stopped(&self, request: &Request) -> bool {
        match self.require_target(request) {
            Some(target) if target.stopped => true,
            Some(_) => {
                self.fail(
                    request,
                    "not stopped",
                    "the target is running: pause it to see its threads' stacks",
                );
                false
            }
            None => false,
        }
    }
}

pub(super) fn stale_frame(id: i64) -> String {
    format!(
        "no frame {id} in this stop: frame ids last until the target runs again; ask for a new \
         stackTrace"
    )
}

fn module_json(module: &ModuleSummary) -> Value {
    let mut value = json!({
        "id": module.path,
        "name": module.name,
        "path": module.path,
        "symbolStatus": match module.file_note {
            Some(note) => format!("{note} {}", module.status),
            None => module.status.to_string(),
        },
        "addressRange": format!("{:#x}-{:#x}", module.start, module.end),
    });
    if let SymbolStatus::SeparateDwarf(file) = &module.status {
        value["symbolFilePath"] = json!(file.display().to_string());
    }
    if let Some(id) = &module.build_id {
        value["version"] = json!(format!("build-id {id}"));
    }
    value
}
