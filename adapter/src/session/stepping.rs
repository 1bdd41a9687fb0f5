//! `next`, `stepIn` and `stepOut`, by line or by instruction, as plans (DESIGN.md
//! section 9): the session decides, instruction by instruction, whether a step is done,
//! from the line tables; the ptrace thread only single-steps one thread and runs to an
//! address.
//!
//! While a thread steps through its line, the other threads stay stopped. A call in the
//! line is run to its return with a breakpoint on the return address (checked against
//! the stack pointer, so recursion returns to the right frame); during that run the
//! other threads run too, unless the request says `singleThread`, as lldb does: a
//! function called by the line may wait for another thread, and holding every other
//! thread then would hang the step.

use iced_x86::{Decoder, DecoderOptions, FlowControl};
use serde::Deserialize;

use super::Session;
use crate::dap::{Request, Response};
use crate::procfs::Pid;
use crate::ptrace::StepResult;
use crate::symbols::dwarf::SourceFrame;
use crate::symbols::StepInfo;

/// A step that has not left its line after this many instructions ends anyway, and
/// says so: a line that loops a billion times would otherwise step for hours.
const MAX_INSTRUCTIONS: u32 = 200_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StepKind {
    Over,
    Into,
    Out,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StepArguments {
    thread_id: i64,
    #[serde(default)]
    single_thread: Option<bool>,
    #[serde(default)]
    granularity: Option<String>,
}

/// What a plan waits for from the ptrace thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// A call of the line run to its return: then the line goes on.
    CallReturn,
    /// A single step that blocked in the kernel: then the line goes on.
    SlowStep,
    /// The end of the step (out of a frame, to a function's first line).
    Done,
}

/// A step in progress.
pub(super) struct StepPlan {
    tid: Pid,
    /// The Go goroutine (its `g`'s address) the step follows, in the goroutine view:
    /// a call stepped over may end on another thread, and the same code run by another
    /// goroutine on this thread does not end it.
    goroutine: Option<u64>,
    kind: StepKind,
    instruction: bool,
    single_thread: bool,
    /// The line being stepped: its inline chain, innermost first.
    line: Vec<SourceFrame>,
    instructions: u32,
    waiting: Option<Waiting>,
    /// `stepIn` entered a call and looks for the first code with lines: the stack
    /// pointer at the call's entry. A PLT stub (and the dynamic loader's lazy binding
    /// behind it) jumps on to its function without leaving a frame of its own, so that
    /// function starts with the same stack pointer.
    entering: Option<u64>,
    /// `stepOut` of an inlined call: done as soon as the pc is back on the caller's
    /// line, outside the call.
    leaving_inline: bool,
}

/// Where an instruction left the thread, as seen from the line being stepped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Still on the line.
    Same,
    /// In a function inlined into the line.
    Inlined,
    /// Somewhere else.
    Elsewhere,
}

fn same_place(a: &SourceFrame, b: &SourceFrame) -> bool {
    a.function == b.function && a.file == b.file && a.line == b.line
}

fn same_function(a: Option<&SourceFrame>, b: Option<&SourceFrame>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a.function == b.function)
}

/// Compares the inline chains from the outermost frame in: deeper frames at the same
/// place are calls inlined into the line.
fn position(line: &[SourceFrame], now: &[SourceFrame]) -> Position {
    if line.is_empty() || now.len() < line.len() {
        return Position::Elsewhere;
    }
    let tail = &now[now.len() - line.len()..];
    if !tail.iter().zip(line).all(|(a, b)| same_place(a, b)) {
        return Position::Elsewhere;
    }
    if now.len() == line.len() {
        Position::Same
    } else {
        Position::Inlined
    }
}

/// What kind of instruction is at the pc, from the program's own bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// A call; the address after it.
    Call(u64),
    Return,
    Other,
}

fn flow_of(bytes: &[u8], pc: u64) -> Flow {
    let mut decoder = Decoder::with_ip(64, bytes, pc, DecoderOptions::NONE);
    let instruction = decoder.decode();
    if instruction.is_invalid() {
        return Flow::Other;
    }
    match instruction.flow_control() {
        FlowControl::Call | FlowControl::IndirectCall => Flow::Call(instruction.next_ip()),
        FlowControl::Return => Flow::Return,
        _ => Flow::Other,
    }
}

/// What to do after an instruction.
enum Next {
    Continue,
    Finish,
    /// Run to `address` (in a frame at or above `min_sp`), then `then`.
    RunTo {
        address: u64,
        min_sp: u64,
        then: Waiting,
    },
}

impl Session {
    pub(super) async fn step(&mut self, request: &Request, kind: StepKind) {
        let Some(args) = self.arguments::<StepArguments>(request) else {
            return;
        };
        if !self.require_stopped_target(request) {
            return;
        }
        let tid = match self.thread_for(args.thread_id) {
            Ok(tid) => tid,
            Err(text) => return self.fail(request, "no such thread", &text),
        };
        let Some(regs) = self.backend.thread_registers(tid).await else {
            let text = format!("thread {tid} is not a stopped thread of the target");
            return self.fail(request, "no such thread", &text);
        };
        // Followed when the thread is in its Go code (r14 holds the goroutine's `g`;
        // not in C code called through cgo, where r14 is C's).
        let goroutine = self
            .goroutine_on(tid)
            .filter(|g| *g == regs.r14 && self.go.is_active());
        let instruction = args.granularity.as_deref() == Some("instruction");
        let single_thread = args.single_thread.unwrap_or(false);
        let line = if instruction {
            Vec::new()
        } else {
            self.symbols
                .step_info(regs.rip)
                .await
                .map(|info| info.frames)
                .unwrap_or_default()
        };
        self.out.respond(Response::ok(request, None));
        self.running();
        let plan = StepPlan {
            tid,
            goroutine,
            kind,
            instruction,
            single_thread,
            line,
            instructions: 0,
            waiting: None,
            entering: None,
            leaving_inline: false,
        };
        self.start_step(plan, regs).await;
    }

    /// The first move of a step.
    async fn start_step(&mut self, plan: StepPlan, regs: libc::user_regs_struct) {
        if plan.kind == StepKind::Out {
            return self.step_out(plan, regs).await;
        }
        self.step_on(plan, regs).await;
    }

    /// Out of the current function: out of an inlined call by stepping until it is
    /// left, out of a real frame by running to its return address.
    async fn step_out(&mut self, mut plan: StepPlan, regs: libc::user_regs_struct) {
        if plan.line.len() > 1 && !plan.instruction {
            // Inlined: the caller's line is the reference; the step ends when the pc is
            // on it and no longer in the inlined call.
            plan.line.remove(0);
            plan.kind = StepKind::Over;
            plan.leaving_inline = true;
            return self.step_on(plan, regs).await;
        }
        let registers = crate::symbols::Registers::from_user_regs(&regs);
        let mut stacks = self.symbols.stacks(vec![(plan.tid, registers)]);
        let frames = stacks
            .recv()
            .await
            .map(|(_, frames)| frames)
            .unwrap_or_default();
        // The physical frame ends at its first frame that is not inlined into the next.
        let caller = frames
            .iter()
            .position(|f| !f.inlined)
            .and_then(|own| frames.get(own + 1));
        let Some((address, sp)) = caller.and_then(|f| Some((f.pc, f.registers.sp()?))) else {
            self.out.output(
                "console",
                "latch: the caller of this frame is unknown (the stack ends here): stepping out \
                 runs the program on",
            );
            return self.finish_step(&plan, "Step out: no caller").await;
        };
        self.run_step_to(plan, address, sp, Waiting::Done).await;
    }

    /// Steps instructions until the line is left; the heart of `next` and `stepIn`.
    async fn step_on(&mut self, mut plan: StepPlan, mut regs: libc::user_regs_struct) {
        loop {
            if plan.instructions >= MAX_INSTRUCTIONS {
                let text = format!(
                    "Step ended after {MAX_INSTRUCTIONS} instructions without leaving the line"
                );
                return self.finish_step(&plan, &text).await;
            }
            let pc = regs.rip;
            let flow = match self.backend.read_code(pc, 16).await {
                Some(bytes) => flow_of(&bytes, pc),
                None => Flow::Other,
            };
            let stepping_over = plan.kind == StepKind::Over || plan.entering.is_some();
            if let (Flow::Call(after), true) = (flow, stepping_over) {
                // Over the call: run to its return, in this frame.
                return self
                    .run_step_to(plan, after, regs.rsp, Waiting::CallReturn)
                    .await;
            }
            let result = self.backend.step_instruction(plan.tid).await;
            plan.instructions += 1;
            regs = match result {
                Ok(StepResult::Stepped(regs)) => *regs,
                Ok(StepResult::Running) => {
                    plan.waiting = Some(Waiting::SlowStep);
                    self.step_plan = Some(plan);
                    return;
                }
                // The stop that came first is reported by its own event.
                Ok(StepResult::Interrupted) => return,
                Ok(StepResult::Exited) => {
                    // Every other thread is stopped: show the process stopped, on a
                    // thread that is still there.
                    let text = format!("Thread {} exited during the step", plan.tid);
                    self.out.output("console", &format!("latch: {text}"));
                    self.step_plan = None;
                    let live = self.backend.threads().await.unwrap_or_default();
                    let Some(first) = live.iter().find(|t| t.is_main).or(live.first()) else {
                        return;
                    };
                    let tid = first.tid;
                    return self.report_step_stop(tid, &text).await;
                }
                Err(err) => {
                    self.out
                        .output("console", &format!("latch: the step failed: {err}"));
                    return self.finish_step(&plan, "Step failed").await;
                }
            };
            if plan.instruction {
                return self.finish_step(&plan, "Paused after a step").await;
            }
            let info = self.symbols.step_info(regs.rip).await;
            match self.after_instruction(&mut plan, flow, &regs, info.as_ref()) {
                Next::Continue => continue,
                Next::Finish => return self.finish_step(&plan, "Paused after a step").await,
                Next::RunTo {
                    address,
                    min_sp,
                    then,
                } => return self.run_step_to(plan, address, min_sp, then).await,
            }
        }
    }

    /// Decides, after one instruction of a line step, whether the step is done.
    fn after_instruction(
        &self,
        plan: &mut StepPlan,
        flow: Flow,
        regs: &libc::user_regs_struct,
        info: Option<&StepInfo>,
    ) -> Next {
        let has_lines = info.is_some_and(|i| i.has_lines);
        if let (Flow::Call(_), StepKind::Into, None) = (flow, plan.kind, plan.entering) {
            plan.entering = Some(regs.rsp);
        }
        if let Some(entry_sp) = plan.entering {
            match self.entering(entry_sp, regs, info) {
                Some(next) => return next,
                // Returned without finding code with lines: the line goes on.
                None => plan.entering = None,
            }
        }
        let Some(info) = info.filter(|_| has_lines) else {
            // No line here (returned into code without debug info): nothing to step by.
            return Next::Finish;
        };
        match position(&plan.line, &info.frames) {
            Position::Same if plan.leaving_inline => Next::Finish,
            Position::Same => Next::Continue,
            Position::Inlined if plan.kind == StepKind::Over => Next::Continue,
            // Into an inlined call on another line of the same function: `next` runs
            // through it to the call's line, as a real call is run over.
            Position::Elsewhere
                if plan.kind == StepKind::Over
                    && info.frames.len() > plan.line.len()
                    && same_function(plan.line.last(), info.frames.last()) =>
            {
                Next::Continue
            }
            Position::Inlined | Position::Elsewhere => {
                if info.statement_start {
                    Next::Finish
                } else {
                    // The middle of a line (back in a caller after a return, say): step
                    // on to the start of the next one, as gdb does.
                    plan.line = info.frames.clone();
                    Next::Continue
                }
            }
        }
    }

    /// `stepIn`, after an instruction of the call being entered: lands in the first
    /// code with lines that starts with the call's stack pointer (the function, past a
    /// PLT stub and the loader's lazy binding); runs over a function without lines to
    /// its return. `None` once the call has returned.
    fn entering(
        &self,
        entry_sp: u64,
        regs: &libc::user_regs_struct,
        info: Option<&StepInfo>,
    ) -> Option<Next> {
        if regs.rsp > entry_sp {
            return None;
        }
        if regs.rsp < entry_sp {
            // Inside a stub or the lazy binder, which push before they jump on.
            return Some(Next::Continue);
        }
        let over = |this: &Session| match this.return_address(regs) {
            Some(address) => Next::RunTo {
                address,
                min_sp: entry_sp + 8,
                then: Waiting::CallReturn,
            },
            None => Next::Finish,
        };
        // A function is entered at its first instruction; code with lines met at the
        // call's stack pointer anywhere else is the lazy binder on its way out.
        let at_start = info.is_some_and(|i| i.function.is_some_and(|(low, _)| low == regs.rip));
        Some(match info {
            Some(info) if info.has_lines && !at_start => Next::Continue,
            Some(info) if info.has_lines => match info.after_prologue {
                Some(start) if start > regs.rip => Next::RunTo {
                    address: start,
                    min_sp: 0,
                    then: Waiting::Done,
                },
                _ => Next::Finish,
            },
            // No function: a PLT stub, on its way to one.
            Some(info) if info.function.is_none() => Next::Continue,
            None => Next::Continue,
            // A function without lines (libc without its debug file): over it.
            Some(_) => over(self),
        })
    }

    /// The return address a call just pushed, at the stack pointer; read through the
    /// symbols thread's memory reader would cost a visit: the code reader reads any
    /// memory.
    fn return_address(&self, regs: &libc::user_regs_struct) -> Option<u64> {
        let pid = self.target.as_ref()?.pid;
        let bytes = crate::symbols::memory::read(pid, regs.rsp, 8)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }

    async fn run_step_to(&mut self, mut plan: StepPlan, address: u64, min_sp: u64, then: Waiting) {
        match self
            .backend
            .run_to(
                plan.tid,
                address,
                min_sp,
                plan.single_thread,
                plan.goroutine,
            )
            .await
        {
            Ok(()) => {
                plan.waiting = Some(then);
                self.step_plan = Some(plan);
            }
            Err(err) => {
                self.out
                    .output("console", &format!("latch: the step failed: {err}"));
                self.finish_step(&plan, "Step failed").await;
            }
        }
    }

    /// The ptrace thread reached what a plan waited for (reason `Step`).
    pub(super) async fn on_step_stop(&mut self, tid: Pid) {
        let Some(regs) = self.backend.thread_registers(tid).await else {
            self.step_plan = None;
            return self.report_step_stop(tid, "Paused after a step").await;
        };
        // A goroutine's step may end on another thread: the one that runs it now
        // (r14 holds the goroutine's `g` there, as the ptrace thread checked).
        let followed = |p: &StepPlan| p.goroutine == Some(regs.r14) && p.waiting.is_some();
        let Some(mut plan) = self
            .step_plan
            .take()
            .filter(|p| p.tid == tid || followed(p))
            .map(|mut p| {
                p.tid = tid;
                p
            })
        else {
            return self.report_step_stop(tid, "Paused after a step").await;
        };
        match plan.waiting.take() {
            Some(Waiting::Done) | None => self.finish_step(&plan, "Paused after a step").await,
            Some(Waiting::CallReturn) if plan.instruction => {
                self.finish_step(&plan, "Paused after a step").await
            }
            Some(Waiting::CallReturn) | Some(Waiting::SlowStep) => {
                // Back in the line's frame, or the slow instruction ran: the line goes
                // on from here, or is left here.
                let info = self.symbols.step_info(regs.rip).await;
                let next = if plan.instruction {
                    Next::Finish
                } else {
                    self.after_instruction(&mut plan, Flow::Other, &regs, info.as_ref())
                };
                match next {
                    Next::Continue => self.step_on(plan, regs).await,
                    Next::Finish => self.finish_step(&plan, "Paused after a step").await,
                    Next::RunTo {
                        address,
                        min_sp,
                        then,
                    } => self.run_step_to(plan, address, min_sp, then).await,
                }
            }
        }
    }

    async fn finish_step(&mut self, plan: &StepPlan, description: &str) {
        self.step_plan = None;
        self.report_step_stop(plan.tid, description).await;
    }

    async fn report_step_stop(&mut self, tid: Pid, description: &str) {
        if let Some(target) = self.target.as_mut() {
            target.stopped = true;
        }
        self.symbols.refresh();
        self.report_stop(tid, "step", description).await;
    }

    /// The target must be attached and stopped for a step; answers the request if not.
    fn require_stopped_target(&self, request: &Request) -> bool {
        let Some(target) = self.require_target(request) else {
            return false;
        };
        if self.pending_attach.is_some() {
            self.fail(
                request,
                "not ready",
                "the attach is not finished: send `configurationDone` first",
            );
            return false;
        }
        if !target.stopped {
            self.fail(
                request,
                "not stopped",
                "the target is running: pause it (or wait for a breakpoint) before stepping",
            );
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn frame(function: &str, line: u32) -> SourceFrame {
        SourceFrame {
            function: Some(Arc::from(function)),
            file: Some(Arc::from("/src/a.c")),
            line,
            column: 0,
        }
    }

    #[test]
    fn inline_chains_are_compared_from_the_outermost_frame() {
        let line = vec![frame("main", 10)];
        assert_eq!(position(&line, &[frame("main", 10)]), Position::Same);
        assert_eq!(
            position(&line, &[frame("square", 3), frame("main", 10)]),
            Position::Inlined
        );
        assert_eq!(position(&line, &[frame("main", 11)]), Position::Elsewhere);
        let inlined = vec![frame("square", 3), frame("main", 10)];
        assert_eq!(
            position(&inlined, &[frame("main", 10)]),
            Position::Elsewhere
        );
    }

    #[test]
    fn calls_and_returns_are_told_from_their_bytes() {
        // call rel32; ret; mov eax, 1
        assert_eq!(flow_of(&[0xe8, 0, 0, 0, 0], 0x1000), Flow::Call(0x1005));
        assert_eq!(flow_of(&[0xff, 0xd0], 0x1000), Flow::Call(0x1002));
        assert_eq!(flow_of(&[0xc3], 0x1000), Flow::Return);
        assert_eq!(flow_of(&[0xb8, 1, 0, 0, 0], 0x1000), Flow::Other);
    }
}
