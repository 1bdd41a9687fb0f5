//! Values (issue 15's speed rows), driven as an editor drives them.
//!
//! - `values-big` ([`run_dap_big`], [`run_gdb_big`]): the large binary (latch's own debug
//!   build idling in `latch dap`) is attached without stopping, with a source breakpoint
//!   on a line of `FrameDecoder::next_frame` (`adapter/src/dap/codec.rs`) where its locals
//!   are live. The benchmark writes a DAP frame to the target's stdin, the target's reader
//!   thread decodes it and stops; then, one request after the other, `threads`,
//!   `stackTrace`, `scopes` of frame 0 and `variables` of its arguments and locals. A
//!   fresh debugger per run: the first `scopes` + `variables` reads that frame's DWARF
//!   cold (gdb: `-stack-list-variables --simple-values`, after an attach that read every
//!   symbol).
//! - `values` ([`run_dap_cpp`], [`run_gdb_cpp`]): `targets/values.cpp`, attached with
//!   `stopOnEntry`, main's frame: its locals, then the vector `v` (1,000,000 ints, element
//!   i is i) expanded page by page as VS Code does, `variables {filter: indexed, start,
//!   count: 100}` for [`PAGES`] pages spread from the first to the last (gdb:
//!   `-var-create` and `-var-list-children FROM TO` with pretty printing, as IDEs drive
//!   it), the debugger's resident memory after the first and the last page, then
//!   `evaluate {expression: "head.next->value", context: "hover"}` [`HOVERS`] times one at
//!   a time and [`HOVERS`] times pipelined (gdb: `-data-evaluate-expression`).

use super::bp::{
    attach_with_breakpoint, end_gdb, gdb_failed, gdb_ok, request, start_gdb, stop_after,
    wait_running,
};
use super::{
    attach_and_configure, end_session, initialize, measure_and_detach, ms, start_adapter,
    timed_run, Peer, RunOpts,
};
use crate::dap::Dap;
use crate::procfs;
use crate::report::{Measure, Row, RunResult};
use crate::target::{Target, VALUES_ELEMENTS};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Pages of the vector read per run, spread evenly from the first to the last.
pub const PAGES: usize = 1000;

/// Elements per page, as VS Code asks for them.
pub const PAGE: usize = 100;

/// Hover evaluations per style (one at a time, pipelined).
pub const HOVERS: usize = 100;

/// The hover expression: a field path through a pointer.
pub const HOVER: &str = "head.next->value";

/// What [`HOVER`] must evaluate to (`targets/values.cpp`).
const HOVER_VALUE: &str = "42";

/// The line of the `values-big` breakpoint: in `FrameDecoder::next_frame`, once the
/// frame's header is parsed (its locals `pending`, `header`, `length` ... are live).
const BIG_LINE_TEXT: &str = "let body = pending[body_start..body_start + length].to_vec();";

/// The frame written to the large binary's stdin: framed, so `next_frame` reaches the
/// breakpoint's line, and an empty object, which `latch dap` answers as a bad request
/// without starting anything.
const BIG_TRIGGER: &[u8] = b"Content-Length: 2\r\n\r\n{}";

/// The source file and line of the `values-big` breakpoint, in the workspace this
/// benchmark was built from (the large binary's DWARF names the same files).
pub fn big_breakpoint_line() -> Result<(PathBuf, u32)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root
        .canonicalize()
        .context("the workspace root")?
        .join("adapter/src/dap/codec.rs");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} for the breakpoint line", path.display()))?;
    let line = text
        .lines()
        .position(|l| l.trim() == BIG_LINE_TEXT)
        .ok_or_else(|| anyhow!("`{BIG_LINE_TEXT}` is no longer in {}", path.display()))?;
    Ok((path, line as u32 + 1))
}

/// The first elements of the [`PAGES`] pages read: evenly spread, multiples of
/// [`PAGE`], the first page and the last among them.
pub fn page_starts() -> Vec<usize> {
    let last = VALUES_ELEMENTS - PAGE;
    (0..PAGES)
        .map(|k| k * last / (PAGES - 1) / PAGE * PAGE)
        .collect()
}

/// Resident memory of the debugger and everything it started, in MiB.
fn tree_rss_mib(pid: i32) -> f64 {
    let kb: u64 = std::iter::once(pid)
        .chain(procfs::descendants(pid))
        .filter_map(procfs::vm_rss_kb)
        .sum();
    super::mib(kb)
}

/// Whether a page's values are what the program wrote (element i is i); the first
/// difference otherwise.
fn check_page(start: usize, values: &[String]) -> Result<(), String> {
    if values.len() != PAGE {
        return Err(format!(
            "page at {start}: {} elements, expected {PAGE}",
            values.len()
        ));
    }
    for (i, v) in values.iter().enumerate() {
        if v.trim() != (start + i).to_string() {
            return Err(format!(
                "element {}: `{v}`, expected {}",
                start + i,
                start + i
            ));
        }
    }
    Ok(())
}

/// `values-big` over DAP: the breakpoint stop, then frame 0's scopes and variables.
pub fn run_dap_big(
    peer: Peer,
    program: &Path,
    args: &[&str],
    target: &mut Target,
    opts: &RunOpts,
) -> RunResult {
    let mut notes = Vec::new();
    let (path, line) = match big_breakpoint_line() {
        Ok(found) => found,
        Err(e) => return RunResult::harness_failed(&e, notes),
    };
    let mut version = None;
    let t0 = Instant::now();
    let deadline = t0 + opts.timeout;
    let (pid, mut dap) = match start_adapter(peer, program, args, &target.pid().to_string(), opts) {
        Ok(started) => started,
        Err(outcome) => return RunResult::ended(outcome, notes, version),
    };
    let mut tree = Vec::new();
    let tpid = target.pid();
    let result = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let (t_init, v) = initialize(&mut dap, peer, deadline)?;
        version = v;
        m.0.insert(Row::Initialize, ms(t_init - t0));
        attach_with_breakpoint(
            &mut dap,
            tpid,
            |dap| {
                let seq = dap.send(
                    "setBreakpoints",
                    json!({
                        "source": { "path": path, "name": "codec.rs" },
                        "breakpoints": [{ "line": line }],
                    }),
                )?;
                let (_, resp) = dap.response(seq, deadline, "the `setBreakpoints` response")?;
                let b = &resp["body"]["breakpoints"][0];
                if b["verified"].as_bool() != Some(true) {
                    bail!(
                        "the breakpoint at codec.rs:{line} is not verified ({})",
                        b["message"].as_str().unwrap_or("no message")
                    );
                }
                Ok(())
            },
            deadline,
        )?;
        m.0.insert(Row::UntilBreakpointArmed, ms(Instant::now() - t0));
        wait_running(tpid, deadline)?;
        let k = dap.seen.stops.len();
        let t_trigger = Instant::now();
        target.write_stdin(BIG_TRIGGER)?;
        let (_, body) = stop_after(&mut dap, k, deadline, "the breakpoint's `stopped` event")?;
        let thread = body["threadId"]
            .as_i64()
            .ok_or_else(|| anyhow!("`stopped` event without threadId: {body}"))?;
        request(&mut dap, "threads", json!({}), deadline)?;
        let (_, st) = request(
            &mut dap,
            "stackTrace",
            json!({ "threadId": thread, "startFrame": 0, "levels": 20 }),
            deadline,
        )?;
        let top = &st["body"]["stackFrames"][0];
        let frame = top["id"]
            .as_i64()
            .ok_or_else(|| anyhow!("`stackTrace` answered no frame"))?;
        let name = top["name"].as_str().unwrap_or("");
        if !name.contains("next_frame") {
            notes.push(format!("**stopped elsewhere**: frame 0 is `{name}`"));
        }
        let t = Instant::now();
        let (shown, at, scopes) = frame_variables(&mut dap, frame, deadline)?;
        m.0.insert(Row::FrameScopesVariables, ms(at - t));
        m.0.insert(Row::StopToFrameVariables, ms(at - t_trigger));
        let armed = m.0[&Row::UntilBreakpointArmed];
        m.0.insert(Row::StartToFrameVariables, armed + ms(at - t_trigger));
        m.0.insert(Row::FrameVariables, shown as f64);
        if shown == 0 {
            notes.push(format!(
                "**no variables** in frame 0's scopes ({})",
                scopes.join(", ")
            ));
        }
        tree = measure_and_detach(&mut dap, pid, deadline, &mut m)?;
        Ok(m)
    })();
    let ended = end_session(result, dap, pid, &tree, deadline, peer, &mut notes);
    timed_run(ended, t0, target, 0, notes, version)
}

/// The scopes of a frame that hold its arguments and locals: latch's `Arguments` and
/// `Locals`, lldb-dap's `Locals` (arguments included); not globals or registers.
fn is_frame_scope(scope: &Value) -> bool {
    matches!(
        scope["presentationHint"].as_str(),
        Some("arguments" | "locals")
    ) || matches!(scope["name"].as_str(), Some("Arguments" | "Locals"))
}

/// `scopes` of `frame`, then `variables` of each of its argument and local scopes, one
/// after the other: the variables listed, when the last answer came, the scopes' names.
fn frame_variables(
    dap: &mut Dap,
    frame: i64,
    deadline: Instant,
) -> Result<(usize, Instant, Vec<String>)> {
    let (mut at, sc) = request(dap, "scopes", json!({ "frameId": frame }), deadline)?;
    let scopes = sc["body"]["scopes"].as_array().cloned().unwrap_or_default();
    let names = scopes
        .iter()
        .map(|s| s["name"].as_str().unwrap_or("?").to_string())
        .collect();
    let mut shown = 0;
    for s in scopes.iter().filter(|s| is_frame_scope(s)) {
        let reference = s["variablesReference"]
            .as_i64()
            .ok_or_else(|| anyhow!("scope without variablesReference: {s}"))?;
        let (answered, vars) = request(
            dap,
            "variables",
            json!({ "variablesReference": reference }),
            deadline,
        )?;
        at = answered;
        shown += vars["body"]["variables"].as_array().map_or(0, Vec::len);
    }
    Ok((shown, at, names))
}

/// `values` over DAP: main's locals, the vector paged, hover evaluation.
pub fn run_dap_cpp(
    peer: Peer,
    program: &Path,
    args: &[&str],
    target: &mut Target,
    opts: &RunOpts,
) -> RunResult {
    let mut notes = Vec::new();
    let mut version = None;
    let t0 = Instant::now();
    let deadline = t0 + opts.timeout;
    let (pid, mut dap) = match start_adapter(peer, program, args, &target.pid().to_string(), opts) {
        Ok(started) => started,
        Err(outcome) => return RunResult::ended(outcome, notes, version),
    };
    let mut tree = Vec::new();
    let tpid = target.pid();
    let result = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let (t_init, v) = initialize(&mut dap, peer, deadline)?;
        version = v;
        m.0.insert(Row::Initialize, ms(t_init - t0));
        attach_and_configure(&mut dap, tpid, true, false, deadline)?;
        request(&mut dap, "threads", json!({}), deadline)?;
        let (_, st) = request(
            &mut dap,
            "stackTrace",
            json!({ "threadId": tpid, "startFrame": 0, "levels": 20 }),
            deadline,
        )?;
        // The target sleeps in pause(): main is a few frames down.
        let frame = st["body"]["stackFrames"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| {
                let name = f["name"].as_str().unwrap_or("");
                name == "main" || name.starts_with("main(") || name.ends_with("`main")
            })
            .and_then(|f| f["id"].as_i64())
            .ok_or_else(|| anyhow!("no frame `main` in the main thread's stack: {st}"))?;
        let (_, sc) = request(&mut dap, "scopes", json!({ "frameId": frame }), deadline)?;
        let locals = sc["body"]["scopes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == "Locals" || s["presentationHint"] == "locals")
            .and_then(|s| s["variablesReference"].as_i64())
            .ok_or_else(|| anyhow!("main's frame has no Locals scope: {sc}"))?;
        let (_, vars) = request(
            &mut dap,
            "variables",
            json!({ "variablesReference": locals }),
            deadline,
        )?;
        let v = vars["body"]["variables"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == "v")
            .ok_or_else(|| anyhow!("main's locals have no `v`: {vars}"))?
            .clone();
        let reference = v["variablesReference"]
            .as_i64()
            .filter(|&r| r > 0)
            .ok_or_else(|| anyhow!("`v` does not expand: {v}"))?;
        match v["indexedVariables"].as_u64() {
            Some(n) if n == VALUES_ELEMENTS as u64 => {}
            other => notes.push(format!(
                "`v` announces indexedVariables {other:?}, not {VALUES_ELEMENTS}; paged anyway"
            )),
        }

        let mut times = Vec::new();
        let mut bad = 0;
        for (i, start) in page_starts().into_iter().enumerate() {
            let t = Instant::now();
            let (at, page) = request(
                &mut dap,
                "variables",
                json!({ "variablesReference": reference, "filter": "indexed",
                        "start": start, "count": PAGE }),
                deadline,
            )?;
            let took = ms(at - t);
            let values: Vec<String> = page["body"]["variables"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v["value"].as_str().unwrap_or("").to_string())
                .collect();
            if let Err(why) = check_page(start, &values) {
                if bad == 0 {
                    notes.push(format!("**a page is wrong**: {why}"));
                }
                bad += 1;
            }
            if i == 0 {
                m.0.insert(Row::FirstPage, took);
                m.0.insert(Row::RssFirstPage, tree_rss_mib(pid));
            }
            times.push(took);
        }
        m.0.insert(Row::RssLastPage, tree_rss_mib(pid));
        m.0.insert(Row::PageTime, super::bp::median(times));
        m.0.insert(Row::BadPages, f64::from(bad));

        let hover = json!({ "expression": HOVER, "frameId": frame, "context": "hover" });
        // Warm: the first evaluation (parsing, the types it names) is not what is timed.
        let (_, first) = request(&mut dap, "evaluate", hover.clone(), deadline)?;
        let result = first["body"]["result"].as_str().unwrap_or("");
        if result.trim() != HOVER_VALUE {
            notes.push(format!(
                "**hover `{HOVER}` answered `{result}`**, the program holds {HOVER_VALUE}"
            ));
        }
        let t = Instant::now();
        let mut last = t;
        for _ in 0..HOVERS {
            last = request(&mut dap, "evaluate", hover.clone(), deadline)?.0;
        }
        m.0.insert(Row::HoverSerial, ms(last - t) / HOVERS as f64);
        let t = Instant::now();
        let seqs = (0..HOVERS)
            .map(|_| dap.send("evaluate", hover.clone()))
            .collect::<Result<Vec<_>>>()?;
        let mut answered = 0;
        dap.wait_until(deadline, "every pipelined `evaluate` response", |s| {
            while answered < seqs.len() && s.responses.contains_key(&seqs[answered]) {
                answered += 1;
            }
            answered == seqs.len()
        })?;
        let mut last = t;
        for q in &seqs {
            last = last.max(dap.answered_at(*q)?);
        }
        m.0.insert(Row::HoverPipelined, ms(last - t) / HOVERS as f64);

        tree = measure_and_detach(&mut dap, pid, deadline, &mut m)?;
        Ok(m)
    })();
    let ended = end_session(result, dap, pid, &tree, deadline, peer, &mut notes);
    timed_run(ended, t0, target, 0, notes, version)
}

/// The value of MI field `name` in `line` (`name="..."`), unescaped enough for numbers
/// and identifiers.
fn mi_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let at = line.find(&key)? + key.len();
    let end = line[at..].find('"')?;
    Some(&line[at..at + end])
}

/// Every `value="..."` of an MI `-var-list-children` answer, in order.
fn mi_child_values(line: &str) -> Vec<String> {
    line.split("child={")
        .skip(1)
        .map(|c| mi_field(c, "value").unwrap_or("").to_string())
        .collect()
}

/// `values-big` over gdb's MI: the breakpoint by `FILE:LINE`, the stop, then
/// `-stack-list-variables --simple-values` of frame 0 (arguments and locals).
pub fn run_gdb_big(gdb: &Path, target: &mut Target, opts: &RunOpts) -> RunResult {
    let mut notes = Vec::new();
    let (path, line) = match big_breakpoint_line() {
        Ok(found) => found,
        Err(e) => return RunResult::harness_failed(&e, notes),
    };
    let t0 = Instant::now();
    let deadline = t0 + opts.timeout;
    let mut gpid = None;
    let r = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let (p, mut mi) = start_gdb(gdb, target.pid(), opts, deadline)?;
        gpid = Some(p);
        mi.command(
            &format!("-break-insert {}:{line}", path.display()),
            deadline,
        )?;
        mi.command("-exec-continue", deadline)?;
        wait_running(target.pid(), deadline)?;
        m.0.insert(Row::UntilBreakpointArmed, ms(Instant::now() - t0));
        let from = mi.lines.len();
        let t_trigger = Instant::now();
        target.write_stdin(BIG_TRIGGER)?;
        let (_, stop) = mi.stopped_after(from, deadline)?;
        let thread = mi_field(&stop, "thread-id").unwrap_or("1").to_string();
        if !stop.contains("next_frame") {
            notes.push(format!("**gdb stopped elsewhere**: {stop}"));
        }
        let t = Instant::now();
        let (at, vars) = mi.command(
            &format!("-stack-list-variables --thread {thread} --frame 0 --simple-values"),
            deadline,
        )?;
        m.0.insert(Row::FrameScopesVariables, ms(at - t));
        m.0.insert(Row::StopToFrameVariables, ms(at - t_trigger));
        let armed = m.0[&Row::UntilBreakpointArmed];
        m.0.insert(Row::StartToFrameVariables, armed + ms(at - t_trigger));
        m.0.insert(Row::FrameVariables, vars.matches("{name=\"").count() as f64);
        end_gdb(mi, p, t0, deadline, &mut m, &mut notes)?;
        Ok(m)
    })();
    match r {
        Ok(m) => gdb_ok(m, target, notes),
        Err(e) => gdb_failed(gpid, e, notes),
    }
}

/// `values` over gdb's MI, as IDEs drive it: pretty printing on, a varobj for `v` in
/// main's frame, its children page by page, then `-data-evaluate-expression`.
pub fn run_gdb_cpp(gdb: &Path, target: &mut Target, opts: &RunOpts) -> RunResult {
    let mut notes = Vec::new();
    let t0 = Instant::now();
    let deadline = t0 + opts.timeout;
    let mut gpid = None;
    let r = (|| -> Result<Measure> {
        let mut m = Measure::default();
        let (p, mut mi) = start_gdb(gdb, target.pid(), opts, deadline)?;
        gpid = Some(p);
        mi.command("-enable-pretty-printing", deadline)?;
        let (_, frames) = mi.command("-stack-list-frames --thread 1", deadline)?;
        let level = frames
            .split("frame={")
            .skip(1)
            .find(|f| mi_field(f, "func") == Some("main"))
            .and_then(|f| mi_field(f, "level"))
            .ok_or_else(|| anyhow!("no frame `main` in gdb's stack: {frames}"))?
            .to_string();
        let at_main = format!("--thread 1 --frame {level}");
        mi.command(
            &format!("-stack-list-variables {at_main} --simple-values"),
            deadline,
        )?;
        let mut times = Vec::new();
        let mut bad = 0;
        for (i, start) in page_starts().into_iter().enumerate() {
            let t = Instant::now();
            if i == 0 {
                mi.command(&format!("-var-create {at_main} vv * v"), deadline)?;
            }
            let (at, page) = mi.command(
                &format!(
                    "-var-list-children --simple-values vv {start} {}",
                    start + PAGE
                ),
                deadline,
            )?;
            let took = ms(at - t);
            if let Err(why) = check_page(start, &mi_child_values(&page)) {
                if bad == 0 {
                    notes.push(format!("**a page is wrong**: {why}"));
                }
                bad += 1;
            }
            if i == 0 {
                m.0.insert(Row::FirstPage, took);
                m.0.insert(Row::RssFirstPage, tree_rss_mib(p));
            }
            times.push(took);
        }
        m.0.insert(Row::RssLastPage, tree_rss_mib(p));
        m.0.insert(Row::PageTime, super::bp::median(times));
        m.0.insert(Row::BadPages, f64::from(bad));

        let eval = format!("-data-evaluate-expression {at_main} \"{HOVER}\"");
        let (_, first) = mi.command(&eval, deadline)?;
        if mi_field(&first, "value") != Some(HOVER_VALUE) {
            notes.push(format!("**gdb evaluated `{HOVER}` as** {first}"));
        }
        let t = Instant::now();
        let mut last = t;
        for _ in 0..HOVERS {
            last = mi.command(&eval, deadline)?.0;
        }
        m.0.insert(Row::HoverSerial, ms(last - t) / HOVERS as f64);
        let t = Instant::now();
        let tokens = (0..HOVERS)
            .map(|_| mi.send(&eval))
            .collect::<Result<Vec<_>>>()?;
        let mut last = t;
        for token in tokens {
            let prefix = format!("{token}^");
            let i = mi.wait_line(0, deadline, "gdb's pipelined answers", |l| {
                l.starts_with(&prefix)
            })?;
            last = last.max(mi.lines[i].0);
        }
        m.0.insert(Row::HoverPipelined, ms(last - t) / HOVERS as f64);
        end_gdb(mi, p, t0, deadline, &mut m, &mut notes)?;
        Ok(m)
    })();
    match r {
        Ok(m) => gdb_ok(m, target, notes),
        Err(e) => gdb_failed(gpid, e, notes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_run_from_the_first_to_the_last() {
        let starts = page_starts();
        assert_eq!(starts.len(), PAGES);
        assert_eq!(starts[0], 0);
        assert_eq!(*starts.last().unwrap(), VALUES_ELEMENTS - PAGE);
        assert!(starts.windows(2).all(|w| w[0] < w[1]));
        assert!(starts.iter().all(|s| s % PAGE == 0));
    }

    #[test]
    fn a_page_is_checked_element_by_element() {
        let good: Vec<String> = (200..300).map(|i| i.to_string()).collect();
        assert!(check_page(200, &good).is_ok());
        let mut bad = good.clone();
        bad[5] = "0".into();
        assert!(check_page(200, &bad).unwrap_err().contains("element 205"));
        assert!(check_page(200, &good[..99]).is_err());
    }

    #[test]
    fn mi_children_and_fields() {
        let line = r#"5^done,numchild="2",children=[child={name="vv.[0]",exp="[0]",numchild="0",value="0",type="int"},child={name="vv.[1]",exp="[1]",numchild="0",value="1",type="int"}],has_more="1""#;
        assert_eq!(mi_child_values(line), ["0", "1"]);
        assert_eq!(mi_field(line, "numchild"), Some("2"));
    }

    #[test]
    fn the_big_breakpoint_line_is_in_next_frame() {
        let (path, line) = big_breakpoint_line().unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let before: Vec<&str> = text.lines().take(line as usize).collect();
        assert_eq!(before.last().unwrap().trim(), BIG_LINE_TEXT);
        let def = before
            .iter()
            .rev()
            .find(|l| l.trim_start().starts_with("pub fn ") || l.trim_start().starts_with("fn "))
            .unwrap();
        assert!(def.contains("fn next_frame"), "{def}");
    }
}
