//! The breakpoint table: which addresses hold an `int3`, what byte each replaced, and
//! whose breakpoint it is. It lives on the ptrace thread, the only one that writes the
//! target's code (DESIGN.md section 9), and decides a hit where it happens: hit counts
//! and log messages are settled here, without a trip through the session, so that a hit
//! that does not stop costs a trap and a resume.
//!
//! Every restore checks the byte first: code can be rewritten (a JIT) or unmapped and
//! replaced under us, and a stale restore would corrupt it.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::procfs::Pid;

/// The opcode of `int3`.
pub const INT3: u8 = 0xcc;

/// Where the table reads and writes the target's code.
pub trait Code {
    fn read_byte(&self, address: u64) -> io::Result<u8>;
    fn write_byte(&self, address: u64, byte: u8) -> io::Result<()>;
}

impl Code for super::memory::TargetMemory {
    fn read_byte(&self, address: u64) -> io::Result<u8> {
        super::memory::TargetMemory::read_byte(self, address)
    }
    fn write_byte(&self, address: u64, byte: u8) -> io::Result<()> {
        super::memory::TargetMemory::write_byte(self, address, byte)
    }
}

/// When a hit counts, from DAP's `hitCondition`: `5` (from the fifth hit on, as gdb's
/// `ignore` and lldb-dap read it), `== 5`, `> 5`, `>= 5`, `< 5`, `<= 5`, `% 5` (every
/// fifth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitCondition {
    AtLeast(u64),
    Exactly(u64),
    Greater(u64),
    Less(u64),
    AtMost(u64),
    EveryNth(u64),
}

impl HitCondition {
    pub fn parse(text: &str) -> Result<HitCondition, String> {
        let text = text.trim();
        let (operator, number) = match text.find(|c: char| c.is_ascii_digit()) {
            Some(at) => text.split_at(at),
            None => ("", text),
        };
        let number: u64 = number.trim().parse().map_err(|_| {
            format!(
                "hit condition `{text}` is not understood: write a count (`5`), a comparison \
                 (`>= 5`, `== 5`, `< 5`) or `% 5` for every fifth hit"
            )
        })?;
        let condition = match operator.trim() {
            "" | ">=" => HitCondition::AtLeast(number),
            "==" | "=" => HitCondition::Exactly(number),
            ">" => HitCondition::Greater(number),
            "<" => HitCondition::Less(number),
            "<=" => HitCondition::AtMost(number),
            "%" if number == 0 => {
                return Err("hit condition `% 0` divides by zero: write `% N` with N > 0".into())
            }
            "%" => HitCondition::EveryNth(number),
            other => {
                return Err(format!(
                    "hit condition `{text}`: unknown operator `{other}` (use ==, >, >=, <, <= or %)"
                ))
            }
        };
        Ok(condition)
    }

    /// Whether the `hits`-th hit (counting from 1) stops or logs.
    pub fn holds(self, hits: u64) -> bool {
        match self {
            HitCondition::AtLeast(n) => hits >= n,
            HitCondition::Exactly(n) => hits == n,
            HitCondition::Greater(n) => hits > n,
            HitCondition::Less(n) => hits < n,
            HitCondition::AtMost(n) => hits <= n,
            HitCondition::EveryNth(n) => hits.is_multiple_of(n),
        }
    }
}

/// What a compiled condition sees of the thread that hit: its registers, and its
/// process's memory through `process_vm_readv` (the expression evaluator brings it).
pub struct HitContext<'a> {
    pub tid: Pid,
    pub registers: &'a libc::user_regs_struct,
}

/// A breakpoint condition, compiled once on the symbols thread for the addresses the
/// breakpoint resolved to (`symbols::conditions`), and run here on every hit. `Err` is
/// why it could not be decided (the thread then stops, and the user is told).
pub type Condition = Arc<dyn Fn(&HitContext) -> Result<bool, String> + Send + Sync>;

/// A logpoint's message with its `{expressions}` evaluated for the thread that hit.
pub type LogRenderer = Arc<dyn Fn(&HitContext) -> String + Send + Sync>;

/// A user's breakpoint, as the session resolved it.
#[derive(Clone)]
pub struct UserBreakpoint {
    /// DAP's breakpoint id.
    pub id: i64,
    pub addresses: Vec<u64>,
    pub hit_condition: Option<HitCondition>,
    pub condition: Option<Condition>,
    /// A logpoint: this text is written and the thread goes on.
    pub log_message: Option<String>,
    /// The message with its expressions, when it has any: rendered at each hit.
    pub log: Option<LogRenderer>,
}

impl std::fmt::Debug for UserBreakpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserBreakpoint")
            .field("id", &self.id)
            .field("addresses", &self.addresses)
            .field("hit_condition", &self.hit_condition)
            .field("log_message", &self.log_message)
            .finish()
    }
}

/// A breakpoint of latch's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Internal {
    /// A step's target (the return address of a call stepped over, of a frame stepped
    /// out of): reached when thread `tid` gets there with its stack pointer at or above
    /// `min_sp`, so that a recursive call returning there first does not count.
    /// With `goroutine`, the Go goroutine whose `g` is at that address, on whichever
    /// thread runs it (r14 holds the current `g` in Go code on amd64, Go 1.17 and later).
    Step {
        tid: Pid,
        min_sp: u64,
        goroutine: Option<u64>,
    },
    /// Where thread `tid` comes back to from a signal handler it was let run (its
    /// stack pointer back at `min_sp` or above): the same execution going on, not a
    /// new hit of a user breakpoint at that address. With `reported`, the return ends
    /// a step of the user's (a `Step` stop); without, the thread was only being stepped
    /// over a breakpoint that does not stop it, and goes on past it unreported.
    Return {
        tid: Pid,
        min_sp: u64,
        reported: bool,
    },
    /// The dynamic loader's hook, called after each change to the list of libraries.
    Loader,
}

struct Site {
    original: u8,
    /// Taken out for a moment, to step a thread over it.
    lifted: bool,
    users: Vec<i64>,
    internal: Vec<Internal>,
}

/// What a hit at one address decided.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// User breakpoints that stop the thread.
    pub stop: Vec<i64>,
    /// Log messages to write (logpoints that hit).
    pub logs: Vec<String>,
    /// The thread reached its step target.
    pub step_done: bool,
    /// The dynamic loader changed the list of libraries.
    pub loader: bool,
    /// The thread came back from a signal handler to the breakpoint it was being
    /// stepped over (an unreported [`Internal::Return`]): it goes on past it.
    pub silent_return: bool,
}

impl Verdict {
    pub fn stops(&self) -> bool {
        !self.stop.is_empty() || self.step_done || self.loader
    }
}

#[derive(Default)]
pub struct Table {
    sites: BTreeMap<u64, Site>,
    users: FxHashMap<i64, (UserBreakpoint, u64)>,
    /// Addresses whose `int3` was taken out while threads ran: a thread may have hit it
    /// just before, and its trap is still to be reported. Forgotten at the next stop of
    /// every thread, when every such trap has been collected.
    removed_while_running: HashSet<u64>,
    /// vfork children running in the target's memory: while there are any, no `int3`
    /// is in memory (a child that ran one would die of SIGTRAP, and writing the child's
    /// memory writes the target's).
    suspended: usize,
}

impl Table {
    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }

    pub fn contains(&self, address: u64) -> bool {
        self.sites.contains_key(&address)
    }

    /// Whether a trap just after `address` may come from an `int3` latch took out.
    pub fn was_removed(&self, address: u64) -> bool {
        self.removed_while_running.contains(&address)
    }

    pub fn any_removed(&self) -> bool {
        !self.removed_while_running.is_empty()
    }

    pub fn forget_removed(&mut self) {
        self.removed_while_running.clear();
    }

    pub fn addresses(&self) -> Vec<u64> {
        self.sites.keys().copied().collect()
    }

    /// How many times breakpoint `id` was hit.
    pub fn hits(&self, id: i64) -> Option<u64> {
        self.users.get(&id).map(|(_, hits)| *hits)
    }

    /// Replaces the user's breakpoints with `wanted`. A breakpoint whose id stays keeps
    /// its hit count. Answers, per breakpoint, the addresses that could not be written
    /// (unmapped, say) and why.
    pub fn set_user(
        &mut self,
        wanted: Vec<UserBreakpoint>,
        code: &dyn Code,
        running: bool,
    ) -> Vec<(i64, Vec<(u64, String)>)> {
        let old: Vec<i64> = self.users.keys().copied().collect();
        for id in old {
            let keep = wanted.iter().any(|w| {
                w.id == id
                    && self.users.get(&id).is_some_and(|(u, _)| {
                        u.addresses == w.addresses && u.hit_condition == w.hit_condition
                    })
            });
            if !keep {
                self.remove_user(id, code, running);
            }
        }
        let mut failures = Vec::new();
        for breakpoint in wanted {
            let id = breakpoint.id;
            let hits = self.users.get(&id).map_or(0, |(_, hits)| *hits);
            let mut failed = Vec::new();
            if !self.users.contains_key(&id) {
                for &address in &breakpoint.addresses {
                    match self.add_owner(address, code, |site| site.users.push(id)) {
                        Ok(()) => {}
                        Err(err) => failed.push((address, err.to_string())),
                    }
                }
            }
            self.users.insert(id, (breakpoint, hits));
            failures.push((id, failed));
        }
        failures
    }

    fn remove_user(&mut self, id: i64, code: &dyn Code, running: bool) {
        let Some((breakpoint, _)) = self.users.remove(&id) else {
            return;
        };
        for address in breakpoint.addresses {
            if let Some(site) = self.sites.get_mut(&address) {
                site.users.retain(|&user| user != id);
            }
            self.remove_if_unowned(address, code, running);
        }
    }

    pub fn add_internal(
        &mut self,
        address: u64,
        internal: Internal,
        code: &dyn Code,
    ) -> io::Result<()> {
        self.add_owner(address, code, |site| site.internal.push(internal))
    }

    /// Takes out the internal breakpoints `which` selects.
    pub fn remove_internal(
        &mut self,
        which: impl Fn(&Internal) -> bool,
        code: &dyn Code,
        running: bool,
    ) {
        let addresses: Vec<u64> = self
            .sites
            .iter()
            .filter(|(_, site)| site.internal.iter().any(&which))
            .map(|(address, _)| *address)
            .collect();
        for address in addresses {
            if let Some(site) = self.sites.get_mut(&address) {
                site.internal.retain(|i| !which(i));
            }
            self.remove_if_unowned(address, code, running);
        }
    }

    fn add_owner(
        &mut self,
        address: u64,
        code: &dyn Code,
        own: impl FnOnce(&mut Site),
    ) -> io::Result<()> {
        if let Some(site) = self.sites.get_mut(&address) {
            own(site);
            return Ok(());
        }
        let original = code.read_byte(address)?;
        if self.suspended == 0 {
            code.write_byte(address, INT3)?;
        }
        let mut site = Site {
            original,
            lifted: self.suspended > 0,
            users: Vec::new(),
            internal: Vec::new(),
        };
        own(&mut site);
        self.sites.insert(address, site);
        self.removed_while_running.remove(&address);
        Ok(())
    }

    fn remove_if_unowned(&mut self, address: u64, code: &dyn Code, running: bool) {
        let unowned = self
            .sites
            .get(&address)
            .is_some_and(|site| site.users.is_empty() && site.internal.is_empty());
        if !unowned {
            return;
        }
        let site = self.sites.remove(&address).expect("checked above");
        if !site.lifted {
            restore(address, site.original, code);
        }
        if running {
            self.removed_while_running.insert(address);
        }
    }

    /// Counts a hit of every breakpoint at `address` by thread `tid` and decides what it
    /// does.
    pub fn on_hit(
        &mut self,
        address: u64,
        tid: Pid,
        registers: &libc::user_regs_struct,
    ) -> Verdict {
        let mut verdict = Verdict::default();
        let Some(site) = self.sites.get(&address) else {
            return verdict;
        };
        for internal in &site.internal {
            match *internal {
                Internal::Step {
                    tid: stepping,
                    min_sp,
                    goroutine,
                } => {
                    let same = match goroutine {
                        Some(g) => registers.r14 == g,
                        None => stepping == tid,
                    };
                    if same && registers.rsp >= min_sp {
                        verdict.step_done = true;
                    }
                }
                Internal::Return {
                    tid: returning,
                    min_sp,
                    reported,
                } => {
                    if returning == tid && registers.rsp >= min_sp {
                        if reported {
                            verdict.step_done = true;
                        } else {
                            verdict.silent_return = true;
                        }
                        return verdict;
                    }
                }
                Internal::Loader => verdict.loader = true,
            }
        }
        let context = HitContext { tid, registers };
        for id in site.users.clone() {
            let Some((breakpoint, hits)) = self.users.get_mut(&id) else {
                continue;
            };
            // The condition first: a hit whose condition is false does not count, as
            // in gdb and lldb.
            if let Some(condition) = &breakpoint.condition {
                match condition(&context) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(why) => {
                        verdict.logs.push(format!(
                            "latch: the condition of breakpoint {id} could not be evaluated \
                             ({why}); stopping"
                        ));
                        verdict.stop.push(id);
                        continue;
                    }
                }
            }
            *hits += 1;
            if !breakpoint.hit_condition.is_none_or(|c| c.holds(*hits)) {
                continue;
            }
            match (&breakpoint.log, &breakpoint.log_message) {
                (Some(render), _) => verdict.logs.push(render(&context)),
                (None, Some(message)) => verdict.logs.push(message.clone()),
                (None, None) => verdict.stop.push(id),
            }
        }
        verdict
    }

    /// Whether a step of thread `tid` (any thread with `None`) waits at a target.
    pub fn has_step_target(&self, tid: Option<Pid>) -> bool {
        self.sites
            .values()
            .flat_map(|site| &site.internal)
            .any(|i| {
                matches!(i, Internal::Step { tid: stepping, .. }
                | Internal::Return { tid: stepping, reported: true, .. }
                if tid.is_none_or(|t| t == *stepping))
            })
    }

    /// Puts the original byte back at `address` for a moment, to let threads run the
    /// instruction (see `lower`).
    pub fn lift(&mut self, address: u64, code: &dyn Code) {
        if let Some(site) = self.sites.get_mut(&address) {
            if !site.lifted {
                restore(address, site.original, code);
                site.lifted = true;
            }
        }
    }

    /// Writes the `int3` again after `lift`.
    pub fn lower(&mut self, address: u64, code: &dyn Code) {
        if self.suspended > 0 {
            return;
        }
        if let Some(site) = self.sites.get_mut(&address) {
            if site.lifted {
                site.lifted = false;
                if let Err(err) = code.write_byte(address, INT3) {
                    tracing::warn!("could not put the breakpoint at {address:#x} back: {err}");
                }
            }
        }
    }

    /// A vfork child starts running in the target's memory: every `int3` comes out
    /// until the last such child has exec'd or exited (`resume`). Threads of the target
    /// that run a breakpoint's code meanwhile do not stop there, as in gdb.
    pub fn suspend(&mut self, code: &dyn Code) {
        if self.suspended == 0 {
            for (&address, site) in &mut self.sites {
                if !site.lifted {
                    restore(address, site.original, code);
                    site.lifted = true;
                }
            }
        }
        self.suspended += 1;
    }

    /// A vfork child has let go of the target's memory.
    pub fn resume(&mut self, code: &dyn Code) {
        self.suspended = self.suspended.saturating_sub(1);
        if self.suspended > 0 {
            return;
        }
        for (&address, site) in &mut self.sites {
            if site.lifted {
                site.lifted = false;
                if let Err(err) = code.write_byte(address, INT3) {
                    tracing::warn!("could not put the breakpoint at {address:#x} back: {err}");
                }
            }
        }
    }

    /// Takes every `int3` out, for a detach: the target runs on as if latch was never
    /// there. The table stays, in case the detach fails and must be retried.
    pub fn restore_all(&mut self, code: &dyn Code) {
        for (&address, site) in &mut self.sites {
            if !site.lifted {
                restore(address, site.original, code);
                site.lifted = true;
            }
        }
    }

    /// The code the breakpoints replaced, as (address, original byte): for a forked
    /// child's copy of memory, and for reads of memory that must see the program's own
    /// bytes.
    pub fn originals(&self) -> Vec<(u64, u8)> {
        self.sites
            .iter()
            .filter(|(_, site)| !site.lifted)
            .map(|(&address, site)| (address, site.original))
            .collect()
    }

    /// An exec replaced the program: none of the bytes we wrote exist any more.
    pub fn forget_all_sites(&mut self) {
        self.suspended = 0;
        self.sites.clear();
        self.users.clear();
        self.removed_while_running.clear();
    }

    /// Patches `bytes`, read from the target at `address`, back to the program's own.
    /// Bytes about to be written at `address` over inserted breakpoints: what the
    /// program's code will be there becomes each site's original byte, and the `int3`
    /// stays in `bytes` where one is in memory (the breakpoint is kept, and a later
    /// removal puts back what was written, not what was there before).
    pub fn absorb_write(&mut self, address: u64, bytes: &mut [u8]) {
        let end = address.saturating_add(bytes.len() as u64);
        for (&at, site) in self.sites.range_mut(address..end) {
            let byte = &mut bytes[(at - address) as usize];
            site.original = *byte;
            if !site.lifted {
                *byte = INT3;
            }
        }
    }

    pub fn show_original(&self, address: u64, bytes: &mut [u8]) {
        let end = address + bytes.len() as u64;
        for (&at, site) in self.sites.range(address..end) {
            if !site.lifted {
                bytes[(at - address) as usize] = site.original;
            }
        }
    }
}

/// Writes `original` back at `address` only if our `int3` is still there.
fn restore(address: u64, original: u8, code: &dyn Code) {
    match code.read_byte(address) {
        Ok(INT3) => {
            if let Err(err) = code.write_byte(address, original) {
                tracing::warn!("could not restore the byte at {address:#x}: {err}");
            }
        }
        Ok(other) => tracing::warn!(
            "the breakpoint at {address:#x} was overwritten (now {other:#04x}); left as it is"
        ),
        Err(err) => tracing::debug!("breakpoint at {address:#x} no longer mapped: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Code as a byte array at address 0x1000, to test the table without a process.
    struct Bytes(RefCell<Vec<u8>>);

    impl Code for Bytes {
        fn read_byte(&self, address: u64) -> io::Result<u8> {
            let index = address.checked_sub(0x1000).ok_or(io::ErrorKind::NotFound)? as usize;
            self.0
                .borrow()
                .get(index)
                .copied()
                .ok_or_else(|| io::ErrorKind::NotFound.into())
        }
        fn write_byte(&self, address: u64, byte: u8) -> io::Result<()> {
            let index = address.checked_sub(0x1000).ok_or(io::ErrorKind::NotFound)? as usize;
            match self.0.borrow_mut().get_mut(index) {
                Some(at) => {
                    *at = byte;
                    Ok(())
                }
                None => Err(io::ErrorKind::NotFound.into()),
            }
        }
    }

    /// A table with one step target: thread 5's (or the goroutine's) at 0x1004, its
    /// frame at stack pointer 0x7000.
    fn step_target(goroutine: Option<u64>) -> (Bytes, Table) {
        let code = Bytes(RefCell::new(vec![0x90; 8]));
        let mut table = Table::default();
        let step = Internal::Step {
            tid: 5,
            min_sp: 0x7000,
            goroutine,
        };
        table.add_internal(0x1004, step, &code).unwrap();
        (code, table)
    }

    fn user(id: i64, addresses: &[u64]) -> UserBreakpoint {
        UserBreakpoint {
            id,
            addresses: addresses.to_vec(),
            hit_condition: None,
            condition: None,
            log_message: None,
            log: None,
        }
    }

    fn regs() -> libc::user_regs_struct {
        // SAFETY: plain old data.
        unsafe { std::mem::zeroed() }
    }

    #[test]
    fn hit_conditions_parse_and_count() {
        let cases = [
            ("5", [false, false, false, false, true, true]),
            (">= 5", [false, false, false, false, true, true]),
            ("== 5", [false, false, false, false, true, false]),
            ("> 5", [false, false, false, false, false, true]),
            ("<3", [true, true, false, false, false, false]),
            ("<= 2", [true, true, false, false, false, false]),
            ("% 2", [false, true, false, true, false, true]),
        ];
        for (text, expected) in cases {
            let condition = HitCondition::parse(text).unwrap();
            let got: Vec<bool> = (1..=6).map(|hit| condition.holds(hit)).collect();
            assert_eq!(got, expected, "{text}");
        }
        for bad in ["", "five", "% 0", "!= 3", ">= -1"] {
            let err = HitCondition::parse(bad).unwrap_err();
            assert!(err.contains("hit condition"), "{bad}: {err}");
        }
    }

    #[test]
    fn inserting_and_removing_restores_the_code() {
        let code = Bytes(RefCell::new(vec![0x55, 0x48, 0x89, 0xe5]));
        let mut table = Table::default();
        let failed = table.set_user(vec![user(1, &[0x1000, 0x1002])], &code, false);
        assert_eq!(failed, vec![(1, vec![])]);
        assert_eq!(*code.0.borrow(), vec![INT3, 0x48, INT3, 0xe5]);
        // A second breakpoint on the same address shares the int3.
        table.set_user(
            vec![user(1, &[0x1000, 0x1002]), user(2, &[0x1000])],
            &code,
            false,
        );
        table.set_user(vec![user(2, &[0x1000])], &code, true);
        assert_eq!(*code.0.borrow(), vec![INT3, 0x48, 0x89, 0xe5]);
        assert!(table.was_removed(0x1002), "removed while running");
        let mut shown = code.0.borrow().clone();
        table.show_original(0x1000, &mut shown);
        assert_eq!(shown, vec![0x55, 0x48, 0x89, 0xe5]);
        table.set_user(vec![], &code, false);
        assert_eq!(*code.0.borrow(), vec![0x55, 0x48, 0x89, 0xe5]);
        assert!(table.is_empty());
    }

    #[test]
    fn an_unmapped_address_fails_alone() {
        let code = Bytes(RefCell::new(vec![0x90; 4]));
        let mut table = Table::default();
        let failed = table.set_user(vec![user(1, &[0x1001, 0x9000])], &code, false);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].1.len(), 1);
        assert_eq!(failed[0].1[0].0, 0x9000);
        assert_eq!(code.0.borrow()[1], INT3);
    }

    #[test]
    fn a_vfork_takes_every_int3_out_until_it_is_done() {
        let code = Bytes(RefCell::new(vec![0x55, 0x90, 0x90]));
        let mut table = Table::default();
        table.set_user(vec![user(1, &[0x1000])], &code, false);
        table.suspend(&code);
        assert_eq!(code.0.borrow()[0], 0x55);
        // Set, stepped over and lowered meanwhile: still out.
        table.set_user(vec![user(1, &[0x1000]), user(2, &[0x1001])], &code, true);
        table.lift(0x1000, &code);
        table.lower(0x1000, &code);
        assert_eq!(*code.0.borrow(), vec![0x55, 0x90, 0x90]);
        table.resume(&code);
        assert_eq!(*code.0.borrow(), vec![INT3, INT3, 0x90]);
    }

    #[test]
    fn overwritten_code_is_never_restored_over() {
        let code = Bytes(RefCell::new(vec![0x55, 0x90]));
        let mut table = Table::default();
        table.set_user(vec![user(1, &[0x1000])], &code, false);
        // A JIT (or a new mapping) wrote its own code over ours.
        code.0.borrow_mut()[0] = 0x31;
        table.restore_all(&code);
        assert_eq!(code.0.borrow()[0], 0x31);
    }

    #[test]
    fn hits_count_and_logpoints_log() {
        let code = Bytes(RefCell::new(vec![0x90; 8]));
        let mut table = Table::default();
        let mut counted = user(1, &[0x1000]);
        counted.hit_condition = Some(HitCondition::Exactly(3));
        let mut logpoint = user(2, &[0x1000]);
        logpoint.log_message = Some("here".into());
        table.set_user(vec![counted.clone(), logpoint], &code, false);
        let verdicts: Vec<Verdict> = (0..3).map(|_| table.on_hit(0x1000, 7, &regs())).collect();
        assert_eq!(verdicts[0].logs, vec!["here".to_string()]);
        assert!(!verdicts[0].stops() && !verdicts[1].stops());
        assert_eq!(verdicts[2].stop, vec![1]);
        // Sent again unchanged (an editor re-sends a file's breakpoints), the count stays.
        table.set_user(vec![counted], &code, false);
        assert_eq!(table.hits(1), Some(3));
        assert_eq!(table.hits(2), None);
    }

    #[test]
    fn a_step_target_is_reached_only_by_its_thread_and_frame() {
        let (code, mut table) = step_target(None);
        let mut at = regs();
        at.rsp = 0x6ff0; // a deeper recursive call returning
        assert!(!table.on_hit(0x1004, 5, &at).step_done);
        at.rsp = 0x7008;
        assert!(!table.on_hit(0x1004, 6, &at).step_done, "another thread");
        assert!(table.on_hit(0x1004, 5, &at).step_done);
        table.remove_internal(|i| matches!(i, Internal::Step { .. }), &code, false);
        assert!(table.is_empty());
        assert_eq!(code.0.borrow()[4], 0x90);
    }

    #[test]
    fn a_return_from_a_handler_run_during_a_step_over_stops_nothing_and_counts_nothing() {
        let (code, mut table) = step_target(None);
        table.set_user(vec![user(1, &[0x1004])], &code, false);
        let back = Internal::Return {
            tid: 6,
            min_sp: 0x7000,
            reported: false,
        };
        table.add_internal(0x1004, back, &code).unwrap();
        assert!(!table.has_step_target(Some(6)), "no step of thread 6 waits");
        let mut at = regs();
        at.rsp = 0x7000;
        let verdict = table.on_hit(0x1004, 6, &at);
        assert!(verdict.silent_return && !verdict.stops(), "{verdict:?}");
        assert_eq!(table.hits(1), Some(0), "the same execution, not a new hit");
        // The same return for a step of the user's ends that step.
        table
            .add_internal(
                0x1004,
                Internal::Return {
                    tid: 7,
                    min_sp: 0x7000,
                    reported: true,
                },
                &code,
            )
            .unwrap();
        assert!(table.has_step_target(Some(7)));
        assert!(table.on_hit(0x1004, 7, &at).step_done);
    }

    #[test]
    fn a_goroutine_step_target_is_reached_by_its_goroutine_on_any_thread() {
        let (_code, mut table) = step_target(Some(0xc000_0001));
        let mut at = regs();
        at.rsp = 0x7008;
        at.r14 = 0xc000_0002;
        assert!(!table.on_hit(0x1004, 5, &at).step_done, "another goroutine");
        at.r14 = 0xc000_0001;
        assert!(
            table.on_hit(0x1004, 6, &at).step_done,
            "moved to another thread"
        );
        at.rsp = 0x6ff0;
        assert!(!table.on_hit(0x1004, 6, &at).step_done, "a deeper call");
    }
}
