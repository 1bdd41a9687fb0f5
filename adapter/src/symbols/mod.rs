//! Addresses to functions, source lines and stacks: the modules a process maps
//! (`maps`), what each file's DWARF, symbol tables and CFI say (`module`; ELF symbol tables in `symtab`; addresses to
//! source lines unit by unit in `dwarf`; inflated sections kept on disk in `cache`),
//! the loaded image of a file in the target's memory (`image`: its build-id),
//! the unwinder (`unwind`, reading memory through `memory`), and whole stacks (`stack`);
//! for breakpoints and stepping, source lines (`lines`) and function names (`functions`)
//! to addresses and what stepping needs at an address, in a file's own numbering, and
//! the same in the process's (`locations`, with the dynamic loader's hook); a stopped Go
//! program's goroutines, read from its runtime's own data (`goroutines`); a stopped
//! frame's variables, through the `values` part, behind handles (`variables`).

pub mod cache;
pub mod calls;
pub mod conditions;
pub mod dwarf;
pub mod functions;
pub mod go_prologue;
pub mod gopclntab;
pub mod goroutines;
pub mod image;
pub mod lines;
pub mod locations;
pub mod maps;
pub mod memory;
pub mod module;
pub mod scratch;
pub mod stack;
pub mod symtab;
pub mod unwind;
pub mod variables;

pub use maps::Module;
pub use module::SymbolStatus;
pub use stack::{FileState, StackFrame, Stacker};
pub use unwind::Registers;
pub mod service;
pub use lines::{FunctionLocation, LineResolution, ResolvedLine, StepInfo};
pub use service::{ModuleSummary, SymbolService};
