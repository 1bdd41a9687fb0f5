//! The symbols thread: stacks and modules are computed off the session's thread, which
//! stays free to read requests, and module data read once stays in that thread's cache.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::conditions::Compiled;
use super::goroutines::{GoProgram, Goroutine};
use super::locations;
use super::variables::{FrameQuery, ScopeInfo, VariableRow, VariableStore};
use super::{
    FunctionLocation, LineResolution, Registers, StackFrame, Stacker, StepInfo, SymbolStatus,
};
use crate::procfs::Pid;

/// A module as the `modules` request and `module` events show it.
#[derive(Debug, Clone)]
pub struct ModuleSummary {
    pub path: String,
    pub name: String,
    pub start: u64,
    pub end: u64,
    pub status: SymbolStatus,
    /// Said when the file on disk is not the one loaded (replaced or deleted since).
    pub file_note: Option<&'static str>,
    pub build_id: Option<String>,
}

enum Job {
    Attach {
        pid: Pid,
        program: Option<PathBuf>,
    },
    /// Goroutines will be listed at the first stop: start reading what that needs.
    GoroutinesAhead,
    /// The process ran: re-read its maps, forget its memory.
    Refresh,
    /// Several threads' stacks, each sent as soon as it is ready, in the order given.
    Stacks {
        threads: Vec<(Pid, Registers)>,
        results: tokio::sync::mpsc::UnboundedSender<(Pid, Vec<StackFrame>)>,
    },
    Modules {
        reply: oneshot::Sender<Vec<ModuleSummary>>,
    },
    /// The rest answer over the current module list: the session refreshes it after
    /// stops.
    ResolveLines {
        path: String,
        lines: Vec<u32>,
        reply: oneshot::Sender<Vec<LineResolution>>,
    },
    ResolveFunction {
        name: String,
        reply: oneshot::Sender<Result<Vec<FunctionLocation>, String>>,
    },
    ResolveGoRuntimeFunction {
        name: String,
        reply: oneshot::Sender<Result<Vec<FunctionLocation>, String>>,
    },
    BreakpointLocations {
        path: String,
        line: u32,
        end_line: Option<u32>,
        reply: oneshot::Sender<Vec<(u32, Option<u32>)>>,
    },
    StepInfo {
        pc: u64,
        reply: oneshot::Sender<Option<StepInfo>>,
    },
    LoaderBreakpoint {
        reply: oneshot::Sender<Option<u64>>,
    },
    Goroutines {
        reply: oneshot::Sender<Result<Vec<Goroutine>, String>>,
    },
    InstructionPlaces {
        addresses: Vec<u64>,
        reply: oneshot::Sender<Vec<Option<locations::InstructionPlace>>>,
    },
    FrameScopes {
        query: FrameQuery,
        reply: oneshot::Sender<Result<Vec<ScopeInfo>, String>>,
    },
    Evaluate {
        query: FrameQuery,
        text: String,
        hex: bool,
        reply: oneshot::Sender<Result<VariableRow, String>>,
    },
    MaxString(usize),
    Completions {
        query: FrameQuery,
        before_cursor: String,
        reply: oneshot::Sender<Vec<(String, &'static str)>>,
    },
    Assignment {
        handle: u32,
        name: String,
        text: String,
        reply: oneshot::Sender<Result<(u64, Vec<u8>), String>>,
    },
    CompileBreakpoint {
        addresses: Vec<u64>,
        condition: Option<String>,
        log: Option<String>,
        reply: oneshot::Sender<Result<Compiled, String>>,
    },
    Variables {
        handle: u32,
        start: u64,
        count: Option<u64>,
        filter: crate::values::ChildFilter,
        hex: bool,
        reply: oneshot::Sender<Result<Vec<VariableRow>, String>>,
    },
    /// Goroutines' stacks, each with the frame of the `go` statement that created it
    /// last (`created by F`), all at once.
    GoroutineStacks {
        goroutines: Vec<GoroutineStackJob>,
        reply: oneshot::Sender<Vec<(Pid, Vec<StackFrame>)>>,
    },
}

#[derive(Clone)]
pub struct SymbolService {
    jobs: mpsc::Sender<Job>,
}

impl SymbolService {
    /// Starts the thread; it ends when the last handle is dropped.
    pub fn spawn() -> std::io::Result<SymbolService> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("latch-symbols".into())
            .spawn(move || serve(queue))?;
        Ok(SymbolService { jobs })
    }

    pub fn attach(&self, pid: Pid, program: Option<PathBuf>) {
        let _ = self.jobs.send(Job::Attach { pid, program });
    }

    /// A Go program's goroutines will be listed: starts reading its runtime's layout
    /// from its DWARF now, beside the attach's own work (nothing for other programs).
    pub fn goroutines_ahead(&self) {
        let _ = self.jobs.send(Job::GoroutinesAhead);
    }

    pub fn refresh(&self) {
        let _ = self.jobs.send(Job::Refresh);
    }

    /// Walks the threads' stacks in the order given and sends each as it is done; stops
    /// early once the receiver is dropped (the target ran again).
    pub fn stacks(
        &self,
        threads: Vec<(Pid, Registers)>,
    ) -> tokio::sync::mpsc::UnboundedReceiver<(Pid, Vec<StackFrame>)> {
        let (results, receiver) = tokio::sync::mpsc::unbounded_channel();
        let _ = self.jobs.send(Job::Stacks { threads, results });
        receiver
    }

    pub async fn modules(&self) -> Vec<ModuleSummary> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::Modules { reply });
        answer.await.unwrap_or_default()
    }

    /// Each of `lines` of the source file `path`: the line that has code (it or the next
    /// one) and every address that starts it; one entry per line, in order.
    pub async fn resolve_lines(&self, path: String, lines: Vec<u32>) -> Vec<LineResolution> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::ResolveLines {
            path,
            lines: lines.clone(),
            reply,
        });
        answer.await.unwrap_or_else(|_| {
            let why = "the symbols thread is gone".to_string();
            lines
                .into_iter()
                .map(|requested| LineResolution {
                    requested,
                    found: Err(why.clone()),
                })
                .collect()
        })
    }

    /// Every instance of the function `name` (`run`, `shapes::run`, `main.(*T).M`):
    /// where `break FUNC` would stop.
    pub async fn resolve_function(&self, name: String) -> Result<Vec<FunctionLocation>, String> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::ResolveFunction { name, reply });
        answer
            .await
            .unwrap_or_else(|_| Err("the symbols thread is gone".into()))
    }

    /// Where `break FUNC` would stop in the Go function `name`, named in full
    /// (`runtime.fatalpanic`): for a Go program's panic breakpoints, found from Go's
    /// table and one line program rather than the unit's DWARF entries; the same
    /// addresses as `resolve_function` (see `go_prologue`), without inlined copies.
    pub async fn resolve_go_runtime_function(
        &self,
        name: String,
    ) -> Result<Vec<FunctionLocation>, String> {
        let (reply, answer) = oneshot::channel();
        let _ = self
            .jobs
            .send(Job::ResolveGoRuntimeFunction { name, reply });
        answer
            .await
            .unwrap_or_else(|_| Err("the symbols thread is gone".into()))
    }

    /// The (line, column) pairs in [line, end_line] of `path` that start code.
    pub async fn breakpoint_locations(
        &self,
        path: String,
        line: u32,
        end_line: Option<u32>,
    ) -> Vec<(u32, Option<u32>)> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::BreakpointLocations {
            path,
            line,
            end_line,
            reply,
        });
        answer.await.unwrap_or_default()
    }

    /// What stepping needs to know about `pc`; `None` outside every module.
    pub async fn step_info(&self, pc: u64) -> Option<StepInfo> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::StepInfo { pc, reply });
        answer.await.ok().flatten()
    }

    /// The goroutines of the attached Go program, read from its stopped runtime; an
    /// error says why there are none (not Go, no DWARF: show threads instead).
    pub async fn goroutines(&self) -> Result<Vec<Goroutine>, String> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::Goroutines { reply });
        answer
            .await
            .unwrap_or_else(|_| Err("the symbols thread is gone".into()))
    }

    /// The stacks of goroutines, in the order given; each ends with a frame named
    /// `created by F` at the `go` statement when `gopc` is known.
    pub async fn goroutine_stacks(
        &self,
        goroutines: Vec<GoroutineStackJob>,
    ) -> Vec<(Pid, Vec<StackFrame>)> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::GoroutineStacks { goroutines, reply });
        answer.await.unwrap_or_default()
    }

    /// The address of the dynamic loader's hook; `None` for a static program.
    /// The function and source line of each instruction address, for a disassembly.
    pub async fn instruction_places(
        &self,
        addresses: Vec<u64>,
    ) -> Vec<Option<locations::InstructionPlace>> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::InstructionPlaces { addresses, reply });
        answer.await.unwrap_or_default()
    }

    /// The scopes of a stopped frame (arguments, locals, globals), each behind a handle
    /// valid until the process runs; empty when no DWARF describes the frame's code.
    pub async fn frame_scopes(&self, query: FrameQuery) -> Result<Vec<ScopeInfo>, String> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::FrameScopes { query, reply });
        answer.await.unwrap_or_else(|_| Err(GONE.into()))
    }

    /// An expression evaluated in a stopped frame, shown as a variable would be.
    pub async fn evaluate(
        &self,
        query: FrameQuery,
        text: String,
        hex: bool,
    ) -> Result<VariableRow, String> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::Evaluate {
            query,
            text,
            hex,
            reply,
        });
        answer.await.unwrap_or_else(|_| Err(GONE.into()))
    }

    /// A breakpoint's condition and log message compiled for its addresses, to run on
    /// the ptrace thread at each hit; refused with why when they cannot mean anything
    /// there.
    pub async fn compile_breakpoint(
        &self,
        addresses: Vec<u64>,
        condition: Option<String>,
        log: Option<String>,
    ) -> Result<Compiled, String> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::CompileBreakpoint {
            addresses,
            condition,
            log,
            reply,
        });
        answer.await.unwrap_or_else(|_| Err(GONE.into()))
    }

    /// The debug console's completions of `before_cursor` in a stopped frame.
    pub async fn completions(
        &self,
        query: FrameQuery,
        before_cursor: String,
    ) -> Vec<(String, &'static str)> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::Completions {
            query,
            before_cursor,
            reply,
        });
        answer.await.unwrap_or_default()
    }

    /// The longest string a value shows (`maxStringLength`), for this session.
    pub fn set_max_string(&self, bytes: usize) {
        let _ = self.jobs.send(Job::MaxString(bytes));
    }

    /// Where variable `name` under `handle` lives and the bytes `text` makes of it.
    pub async fn assignment(
        &self,
        handle: u32,
        name: String,
        text: String,
    ) -> Result<(u64, Vec<u8>), String> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::Assignment {
            handle,
            name,
            text,
            reply,
        });
        answer.await.unwrap_or_else(|_| Err(GONE.into()))
    }

    /// The variables under a handle that `frame_scopes` or an earlier answer gave.
    pub async fn variables(
        &self,
        handle: u32,
        start: u64,
        count: Option<u64>,
        filter: crate::values::ChildFilter,
        hex: bool,
    ) -> Result<Vec<VariableRow>, String> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::Variables {
            handle,
            start,
            count,
            filter,
            hex,
            reply,
        });
        answer.await.unwrap_or_else(|_| Err(GONE.into()))
    }

    pub async fn loader_breakpoint(&self) -> Option<u64> {
        let (reply, answer) = oneshot::channel();
        let _ = self.jobs.send(Job::LoaderBreakpoint { reply });
        answer.await.ok().flatten()
    }
}

/// Serves jobs. Once attached it starts reading every module's DWARF ahead, each on a
/// thread of its own, so the first stack trace finds them ready or nearly: a large
/// binary's or libc's debug information takes tens to hundreds of milliseconds to read.
/// Not before the attach is done: on two cores, reading during the attach made a
/// 1000-thread attach about 20 ms slower (47 -> 68 ms), even at SCHED_IDLE.
/// What the symbols thread answers when it is gone (a panic there).
const GONE: &str = "the symbols thread ended (see latch's log)";

fn serve(queue: mpsc::Receiver<Job>) {
    let mut stacker: Option<Stacker> = None;
    let mut variables = VariableStore::default();
    while let Ok(job) = queue.recv() {
        match job {
            Job::Attach { pid, program } => {
                // A new process: no unit or handle carries over, the user's limits do.
                let limits = variables.limits;
                variables = VariableStore::default();
                variables.limits = limits;
                let mut new = Stacker::new(pid);
                if let Some(program) = program {
                    new.set_program(program);
                }
                let current = stacker.insert(new);
                for index in current.preparation_order() {
                    current.module_info(index).prepare();
                }
            }
            Job::GoroutinesAhead => {
                if let Some(stacker) = stacker.as_mut() {
                    GoProgram::read_layout_ahead(stacker);
                }
            }
            Job::Refresh => {
                variables.clear();
                if let Some(stacker) = stacker.as_mut() {
                    stacker.refresh();
                }
            }
            Job::InstructionPlaces { addresses, reply } => {
                let places = match stacker.as_mut() {
                    Some(stacker) => locations::instruction_places(stacker, &addresses),
                    None => vec![None; addresses.len()],
                };
                let _ = reply.send(places);
            }
            Job::FrameScopes { query, reply } => {
                let scopes = match stacker.as_mut() {
                    Some(stacker) => variables.scopes(stacker, &query),
                    None => Ok(Vec::new()),
                };
                let _ = reply.send(scopes);
            }
            Job::MaxString(bytes) => variables.limits.max_string = bytes,
            Job::Completions {
                query,
                before_cursor,
                reply,
            } => {
                let found = match stacker.as_mut() {
                    Some(stacker) => variables.completions(stacker, &query, &before_cursor),
                    None => Vec::new(),
                };
                let _ = reply.send(found);
            }
            Job::Assignment {
                handle,
                name,
                text,
                reply,
            } => {
                let assignment = match stacker.as_mut() {
                    Some(stacker) => variables.assignment(stacker, handle, &name, &text),
                    None => Err(super::variables::stale_reference(handle)),
                };
                let _ = reply.send(assignment);
            }
            Job::CompileBreakpoint {
                addresses,
                condition,
                log,
                reply,
            } => {
                let compiled = match stacker.as_mut() {
                    Some(stacker) => variables.compile_breakpoint(
                        stacker,
                        &addresses,
                        condition.as_deref(),
                        log.as_deref(),
                    ),
                    None => Err("not attached to a process".into()),
                };
                let _ = reply.send(compiled);
            }
            Job::Evaluate {
                query,
                text,
                hex,
                reply,
            } => {
                let row = match stacker.as_mut() {
                    Some(stacker) => variables.evaluate(stacker, &query, &text, hex),
                    None => Err("not attached to a process".into()),
                };
                let _ = reply.send(row);
            }
            Job::Variables {
                handle,
                start,
                count,
                filter,
                hex,
                reply,
            } => {
                let rows = match stacker.as_mut() {
                    Some(stacker) => {
                        variables.variables(stacker, handle, start, count, filter, hex)
                    }
                    None => Err(super::variables::stale_reference(handle)),
                };
                let _ = reply.send(rows);
            }
            Job::Stacks { threads, results } => {
                let Some(stacker) = stacker.as_mut() else {
                    continue;
                };
                // Unwinding needs only CFI; naming needs DWARF, which may still be being
                // read. A stack whose modules are read goes out at once, so that the
                // session answers it while the next is walked. Once one must wait, the
                // rest are walked now, overlapping that reading, and named at the end in
                // the same order (the first is the one the editor asked for).
                let mut later = Vec::new();
                for (tid, registers) in threads {
                    let frames = stacker.unwind(registers);
                    if !later.is_empty() || !stacker.can_name_now(&frames) {
                        later.push((tid, frames));
                    } else if results.send((tid, stacker.symbolize_all(&frames))).is_err() {
                        break;
                    }
                }
                for (tid, frames) in later {
                    if results.send((tid, stacker.symbolize_all(&frames))).is_err() {
                        break;
                    }
                }
            }
            Job::Modules { reply } => {
                let modules = stacker.as_mut().map(summaries).unwrap_or_default();
                let _ = reply.send(modules);
            }
            Job::ResolveLines { path, lines, reply } => {
                let found = match stacker.as_mut() {
                    Some(stacker) => locations::resolve_lines(stacker, &path, &lines),
                    None => not_attached(&lines),
                };
                let _ = reply.send(found);
            }
            Job::ResolveFunction { name, reply } => {
                let found = match stacker.as_mut() {
                    Some(stacker) => locations::resolve_function(stacker, &name),
                    None => Err(NOT_ATTACHED.into()),
                };
                let _ = reply.send(found);
            }
            Job::ResolveGoRuntimeFunction { name, reply } => {
                let found = match stacker.as_mut() {
                    Some(stacker) => locations::resolve_go_runtime_function(stacker, &name),
                    None => Err(NOT_ATTACHED.into()),
                };
                let _ = reply.send(found);
            }
            Job::BreakpointLocations {
                path,
                line,
                end_line,
                reply,
            } => {
                let found = stacker.as_mut().map_or_else(Vec::new, |stacker| {
                    locations::breakpoint_locations(stacker, &path, line, end_line)
                });
                let _ = reply.send(found);
            }
            Job::StepInfo { pc, reply } => {
                let _ = reply.send(stacker.as_mut().and_then(|s| locations::step_info(s, pc)));
            }
            Job::LoaderBreakpoint { reply } => {
                let _ = reply.send(stacker.as_mut().and_then(locations::loader_breakpoint));
            }
            Job::Goroutines { reply } => {
                let found = match stacker.as_mut() {
                    Some(stacker) => GoProgram::find(stacker)
                        .and_then(|program| program.goroutines(stacker.view()))
                        .map_err(|error| error.to_string()),
                    None => Err(NOT_ATTACHED.into()),
                };
                let _ = reply.send(found);
            }
            Job::GoroutineStacks { goroutines, reply } => {
                let Some(stacker) = stacker.as_mut() else {
                    let _ = reply.send(Vec::new());
                    continue;
                };
                let stacks = goroutines
                    .into_iter()
                    .map(|job| {
                        let frames = stacker.stack(job.registers);
                        let mut frames = match job.go_stack_in_c {
                            Some(go) => after_cgo_call(frames, || stacker.stack(go)),
                            None => frames,
                        };
                        frames.extend(creator_frame(stacker, job.go_pc));
                        (job.key, frames)
                    })
                    .collect();
                let _ = reply.send(stacks);
            }
        }
    }
}

/// The prefix of the frame that says where a goroutine was created.
pub const CREATED_BY: &str = "created by ";

/// One goroutine's stack to unwind.
pub struct GoroutineStackJob {
    /// What the stack is filed under.
    pub key: Pid,
    /// Where to unwind from: its thread's registers, or its saved context.
    pub registers: Registers,
    /// `g.gopc`: the `go` statement that created it.
    pub go_pc: u64,
    /// For a goroutine in C code (cgo): where its Go stack goes on below the C frames.
    pub go_stack_in_c: Option<Registers>,
}

/// A goroutine in C code (cgo) unwinds on its thread through the C frames to
/// `runtime.asmcgocall`, on the thread's system stack, and no further; Go's own
/// traceback goes on from where the goroutine left its Go stack (`g.syscallpc`,
/// `g.syscallsp`). The frames up to `asmcgocall`, then the Go ones; unchanged when the
/// thread's stack does not pass through `asmcgocall` (a plain system call runs on the
/// goroutine's stack, whose frames the thread's unwind already has).
pub fn after_cgo_call(
    mut frames: Vec<StackFrame>,
    go_frames: impl FnOnce() -> Vec<StackFrame>,
) -> Vec<StackFrame> {
    let switch = frames.iter().position(|frame| {
        frame
            .function
            .as_deref()
            .is_some_and(|f| f == "runtime.asmcgocall" || f.starts_with("runtime.asmcgocall."))
    });
    if let Some(at) = switch {
        frames.truncate(at + 1);
        frames.extend(go_frames());
    }
    frames
}

/// `created by F` at the `go` statement whose return address is `go_pc`, as Go's
/// tracebacks end a goroutine's stack: F the function (outermost of inlined calls), the
/// line the statement's call (`go_pc - 1`) is on.
fn creator_frame(stacker: &mut Stacker, go_pc: u64) -> Option<StackFrame> {
    if go_pc == 0 {
        return None;
    }
    let named = stacker.stack(Registers::from_pc(go_pc - 1));
    let innermost = named.first()?;
    let outer = named
        .iter()
        .find(|frame| !frame.inlined)
        .unwrap_or(innermost);
    let function = outer.function.as_deref()?;
    Some(StackFrame {
        pc: go_pc,
        function: Some(format!("{CREATED_BY}{function}").into()),
        file: innermost.file.clone(),
        line: innermost.line,
        column: 0,
        module: innermost.module.clone(),
        inlined: false,
        registers: Registers::from_pc(go_pc),
    })
}

const NOT_ATTACHED: &str = "not attached to a process";

fn not_attached(lines: &[u32]) -> Vec<LineResolution> {
    lines
        .iter()
        .map(|&requested| LineResolution {
            requested,
            found: Err(NOT_ATTACHED.into()),
        })
        .collect()
}

fn summaries(stacker: &mut Stacker) -> Vec<ModuleSummary> {
    let root = PathBuf::from(format!("/proc/{}/root", stacker.view()));
    (0..stacker.modules().len())
        .map(|index| {
            let info = stacker.module_info(index);
            let file_note = stacker.file_state(index).note();
            let module = &stacker.modules()[index];
            // Debug files are found through the target's root; show the path it sees.
            let status = match &info.status {
                SymbolStatus::SeparateDwarf(file) => match file.strip_prefix(&root) {
                    Ok(inside) => SymbolStatus::SeparateDwarf(Path::new("/").join(inside)),
                    Err(_) => info.status.clone(),
                },
                other => other.clone(),
            };
            ModuleSummary {
                path: module.path.clone(),
                name: module.name().to_string(),
                start: module.start,
                end: module.end,
                status,
                file_note,
                build_id: info
                    .build_id
                    .as_ref()
                    .map(|id| id.iter().map(|b| format!("{b:02x}")).collect()),
            }
        })
        .collect()
}
