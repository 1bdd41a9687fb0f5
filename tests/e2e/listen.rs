//! `latch dap --listen`: DAP over TCP and unix sockets, one client or one after another
//! (`--accept-multiclient`), and what the target goes through in between.

use std::net::TcpStream;
use std::process::Command;

use serde_json::json;

use crate::require_harness;
use crate::support::checks::*;
use crate::support::dap::latch_bin;
use crate::support::fixtures::tmp_dir;
use crate::support::server::Server;
use crate::support::{secs, Dap, Fixture, Target};

/// A client that attaches (or takes over) stopped, and checks what it sees.
pub fn attach_stopped(dap: &mut Dap, target: &Target, server: &Server) {
    dap.initialize();
    dap.attach_pid(target.pid, true);
    assert_entry_stop(dap, target.pid as i64);
    assert_threads_match(dap, target.pid);
    assert_all_traced_and_stopped(target.pid, server.pid());
}

#[test]
fn tcp_one_client_then_latch_ends_and_the_target_runs_on() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["4"]);
    let mut server = Server::start("127.0.0.1:0", &[]);
    let mut dap = server.connect();
    attach_stopped(&mut dap, &target, &server);
    // The listener closed when the first client came in: a second one is refused.
    assert!(
        TcpStream::connect(&server.address).is_err(),
        "a second client could connect to a one-client server"
    );
    dap.ok("disconnect", json!({}));
    dap.wait_closed(secs(10));
    let status = server.wait_exit(secs(10));
    assert!(status.success(), "latch exited with {status}");
    target.assert_runs_on(false);
}

#[test]
fn multiclient_keeps_the_target_attached_between_clients() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["4"]);
    let mut server = Server::start("0", &["--accept-multiclient"]);
    assert!(
        server.address.starts_with("127.0.0.1:"),
        "a bare port must bind loopback: {}",
        server.address
    );

    let mut first = server.connect();
    attach_stopped(&mut first, &target, &server);
    first.ok("disconnect", json!({}));
    first.wait_closed(secs(10));
    drop(first);
    // Between clients: still traced by latch, and running.
    assert_traced_and_running(&target, server.pid());

    // The next client takes over the same process, stopped on entry as if it had just
    // attached, with every thread, and a stack to show.
    let mut second = server.connect();
    attach_stopped(&mut second, &target, &server);
    let frames = second.ok(
        "stackTrace",
        json!({"threadId": target.pid, "startFrame": 0, "levels": 20}),
    );
    assert!(
        frames["body"]["stackFrames"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "no stack after the takeover: {frames}"
    );
    second.ok("continue", json!({"threadId": target.pid}));
    assert_traced_and_running(&target, server.pid());
    second.ok("pause", json!({"threadId": target.pid}));
    second.next_event("stopped", secs(10));
    second.ok("disconnect", json!({}));
    second.wait_closed(secs(10));

    // latch detaches when it is stopped, and the target runs on as before.
    server.stop();
    target.assert_runs_on(false);
}

#[test]
fn a_client_that_vanishes_leaves_the_target_running() {
    require_harness!();
    let target = Target::start(Fixture::Spinning, &["2"]);
    let mut server = Server::start("127.0.0.1:0", &["--accept-multiclient"]);
    let mut first = server.connect();
    attach_stopped(&mut first, &target, &server);
    // No disconnect: the editor crashed.
    drop(first);
    assert_traced_and_running(&target, server.pid());
    let mut second = server.connect();
    attach_stopped(&mut second, &target, &server);
    drop(second);
    assert_traced_and_running(&target, server.pid());
    server.stop();
    target.assert_runs_on(false);

    // Without --accept-multiclient, the vanished client ends latch, which detaches.
    let target = Target::start(Fixture::Spinning, &["2"]);
    let mut server = Server::start("127.0.0.1:0", &[]);
    let mut dap = server.connect();
    attach_stopped(&mut dap, &target, &server);
    drop(dap);
    let status = server.wait_exit(secs(10));
    assert!(status.success(), "latch exited with {status}");
    target.assert_runs_on(false);
}

#[test]
fn multiclient_refuses_a_second_process_and_suspend_keeps_it_stopped() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["2"]);
    let other = Target::start(Fixture::Sleeping, &["2"]);
    let mut server = Server::start("127.0.0.1:0", &["--accept-multiclient"]);
    let mut first = server.connect();
    attach_stopped(&mut first, &target, &server);
    first.ok("disconnect", json!({"suspendDebuggee": true}));
    first.wait_closed(secs(10));
    // suspendDebuggee: left stopped for the next client.
    assert_all_traced_and_stopped(target.pid, server.pid());

    let mut second = server.connect();
    second.initialize();
    let refused = second.attach(json!({"pid": other.pid}));
    let text = assert_error(&refused, &["holds pid", &target.pid.to_string()]);
    assert!(text.contains("stop latch"), "{text}");
    // An attach without a pid takes the held process.
    let taken = second.attach(json!({}));
    assert_eq!(taken["success"], true, "{taken}");
    assert_threads_match(&mut second, target.pid);
    second.ok("disconnect", json!({}));
    second.wait_closed(secs(10));
    assert_traced_and_running(&target, server.pid());

    // terminateDebuggee ends the hold with the process; the next client may attach to
    // any other.
    let mut third = server.connect();
    third.initialize();
    assert_eq!(third.attach(json!({"pid": target.pid}))["success"], true);
    third.ok("disconnect", json!({"terminateDebuggee": true}));
    third.wait_closed(secs(10));
    let mut target = target;
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(target.wait_exit(secs(10)).signal(), Some(libc::SIGKILL));
    let mut fourth = server.connect();
    attach_stopped(&mut fourth, &other, &server);
    drop(fourth);
    server.stop();
    other.assert_runs_on(false);
}

#[test]
fn unix_socket_serves_and_is_removed_afterwards() {
    require_harness!();
    let target = Target::start(Fixture::Sleeping, &["2"]);
    let path = tmp_dir().join(format!("latch-{}.sock", std::process::id()));
    // A stale socket file from a latch that died is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let listen = format!("unix:{}", path.display());
    let mut server = Server::start(&listen, &[]);
    let mut dap = server.connect();
    attach_stopped(&mut dap, &target, &server);
    dap.ok("disconnect", json!({}));
    dap.wait_closed(secs(10));
    assert!(server.wait_exit(secs(10)).success());
    assert!(!path.exists(), "{} left behind", path.display());
    target.assert_runs_on(false);
}

/// Listening beyond loopback: listen_access.rs.
#[test]
fn bad_listen_addresses_are_explained() {
    require_harness!();
    let out = Command::new(latch_bin())
        .args(["dap", "--listen", "nowhere"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("HOST:PORT") && text.contains("unix:PATH"),
        "{text}"
    );

    let out = Command::new(latch_bin())
        .args(["dap", "--accept-multiclient"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("--listen"), "{text}");
}

/// The held process exits while the next client is connected but has not attached
/// yet: the server lets go of it, so that client (and every later one) can attach to
/// another process.
#[test]
fn multiclient_forgets_a_held_process_that_exits_during_the_next_session() {
    require_harness!();
    let mut target = Target::start(Fixture::Sleeping, &["2"]);
    let other = Target::start(Fixture::Sleeping, &["2"]);
    let mut server = Server::start("127.0.0.1:0", &["--accept-multiclient"]);
    let mut first = server.connect();
    attach_stopped(&mut first, &target, &server);
    first.ok("disconnect", json!({}));
    first.wait_closed(secs(10));

    let mut second = server.connect();
    second.initialize();
    target.send_line("exit 7");
    // Reaped by its parent only after latch's ptrace thread has seen the exit.
    assert_eq!(target.wait_exit(secs(10)).code(), Some(7));
    let said = second.wait_until(secs(10), |dap| {
        dap.events("output").iter().any(|e| {
            let text = e["body"]["output"].as_str().unwrap_or_default();
            text.contains(&target.pid.to_string()) && text.contains("exited")
        })
    });
    assert!(
        said,
        "the client was not told: {:?}",
        second.events("output")
    );
    second.attach_pid(other.pid, true);
    assert_entry_stop(&mut second, other.pid as i64);
    assert_threads_match(&mut second, other.pid);
    assert_all_traced_and_stopped(other.pid, server.pid());
    second.ok("disconnect", json!({}));
    second.wait_closed(secs(10));
    server.stop();
    other.assert_runs_on(false);
}

/// A waitFor whose attach outlives its session (the session waits for it only so long
/// at its end; a busy process can take longer to stop): with --accept-multiclient the
/// process it catches must not stay traced and stopped with nobody to resume it. The
/// test hook LATCH_TEST_DELAY_ATTACH_MS holds the attach back past the session's end.
#[test]
fn multiclient_a_waitfor_attach_after_its_session_ended_lets_the_process_go() {
    require_harness!();
    let name = "wf_outlived";
    let exe = crate::support::fixtures::renamed_fixture(Fixture::Sleeping, name);
    let mut server = Server::start_with_env(
        "127.0.0.1:0",
        &["--accept-multiclient"],
        &[("LATCH_TEST_DELAY_ATTACH_MS", "12000")],
    );
    let mut first = server.connect();
    first.initialize();
    let attach = first.send("attach", json!({"waitFor": name}));
    first.next_event("initialized", secs(10));
    let mut target = Target::spawn(Command::new(exe));
    let log_has = |server: &Server, words: &str, within| {
        crate::support::procfs::wait_for(within, || server.log_text().contains(words))
    };
    assert!(
        log_has(&server, "waitFor matched", secs(10)),
        "the waitFor did not find {name}"
    );
    // The attach is held back: the process runs, untraced, meanwhile.
    target.wait_ready(secs(10));
    let disconnect = first.send("disconnect", json!({}));
    let answer = first.response(attach, secs(30));
    assert_eq!(answer["success"], false, "{answer}");
    let answer = first.response(disconnect, secs(30));
    assert_eq!(answer["success"], true, "{answer}");
    first.wait_closed(secs(10));
    drop(first);

    // Then the attach happens, for a session that is gone: it must let go.
    assert!(
        log_has(&server, "seized every thread", secs(30)),
        "the held-back attach did not happen: {}",
        server.log_text()
    );
    target.assert_runs_on(false);
    assert!(
        server.log_text().contains("after its session had ended"),
        "the log does not say why the process was let go"
    );

    // The next client can attach to it.
    let mut second = server.connect();
    attach_stopped(&mut second, &target, &server);
    second.ok("disconnect", json!({}));
    second.wait_closed(secs(10));
    server.stop();
    target.assert_runs_on(false);
}
