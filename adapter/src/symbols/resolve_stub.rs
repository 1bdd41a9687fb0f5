//! TEMPORARY: the resolution API the `lines` branch implements; removed at its merge.
#![allow(dead_code, unused_variables)]
use super::dwarf::SourceFrame;
use super::SymbolService;

pub struct ResolvedLine {
    pub line: u32,
    pub column: Option<u32>,
    pub file: String,
    pub addresses: Vec<u64>,
}
pub struct LineResolution {
    pub requested: u32,
    pub found: Result<ResolvedLine, String>,
}
pub struct FunctionLocation {
    pub address: u64,
    pub name: String,
    pub file: Option<String>,
    pub line: u32,
}
pub struct StepInfo {
    pub frames: Vec<SourceFrame>,
    pub row: Option<(u64, u64)>,
    pub statement_start: bool,
    pub function: Option<(u64, u64)>,
    pub has_lines: bool,
    pub after_prologue: Option<u64>,
}
impl SymbolService {
    pub async fn resolve_lines(&self, path: String, lines: Vec<u32>) -> Vec<LineResolution> {
        Vec::new()
    }
    pub async fn resolve_function(&self, name: String) -> Result<Vec<FunctionLocation>, String> {
        Err("stub".into())
    }
    pub async fn breakpoint_locations(
        &self,
        path: String,
        line: u32,
        end_line: Option<u32>,
    ) -> Vec<(u32, Option<u32>)> {
        Vec::new()
    }
    pub async fn step_info(&self, pc: u64) -> Option<StepInfo> {
        None
    }
    pub async fn loader_breakpoint(&self) -> Option<u64> {
        None
    }
}
