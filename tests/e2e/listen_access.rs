//! Whom `latch dap --listen` serves: clients of latch's own user or root, checked per
//! connection before anything they send is read; `--allow-other-users` and
//! `--allow-remote-clients` open exactly what they say; a unix socket is private and is
//! only created where no other user could swap it.
//!
//! latch runs as root here, as in the attack; the other users are `nobody` and a
//! uid with no name, through setpriv.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::listen::attach_stopped;
use crate::require_harness;
use crate::support::checks::*;
use crate::support::dap::latch_bin;
use crate::support::fixtures::tmp_dir;
use crate::support::procfs;
use crate::support::server::{other_users_available, Relay, Server, User, NOBODY, STRANGER};
use crate::support::target::run_with_deadline;
use crate::support::{secs, Fixture, Target};

/// The client tries what the attacker did (initialize, then attach to a root
/// process) and must get nothing: its connection is closed unanswered, latch says on
/// stderr and in its log whom it refused, and the target is left as it was.
fn assert_refused(server: &mut Server, mut client: Relay, user: User, target: &Target) {
    client.dap.send(
        "initialize",
        json!({"adapterID": "latch", "clientID": "attacker"}),
    );
    client.dap.send("attach", json!({"pid": target.pid}));
    client.dap.wait_closed(secs(10));
    assert!(
        client.dap.log.is_empty(),
        "a refused client was answered: {:?}",
        client.dap.log
    );
    let (code, said) = client.outcome();
    assert!(
        said.contains("relay: connected") && matches!(code, Some(0) | Some(4)),
        "the client did not reach latch and get closed (exit {code:?}): {said}"
    );
    let uid = format!("uid {}", user.uid);
    let line = server.wait_stderr(&["refused a client", &uid], secs(10));
    assert!(line.contains("may connect"), "{line}");
    assert!(
        server.log_text().contains(&line["latch: ".len()..]),
        "the refusal is not in latch's log: {line}"
    );
}

/// Not traced by anyone: the refused client changed nothing.
fn assert_untraced(target: &Target) {
    for task in procfs::live_tasks(target.pid) {
        assert_eq!(task.tracer_pid, 0, "{task:?} is traced");
    }
    assert_eq!(procfs::tracer_pid(target.pid), Some(0));
}

#[test]
fn tcp_refuses_another_user_and_serves_the_rightful_one() {
    require_harness!();
    if !other_users_available() {
        return;
    }
    let target = Target::start(Fixture::Sleeping, &["2"]);
    // One client: a refused client must not use up the server either.
    let mut server = Server::start("127.0.0.1:0", &[]);
    let nobody = server.connect_as(NOBODY);
    assert_refused(&mut server, nobody, NOBODY, &target);
    let line = server.wait_stderr(&["refused"], secs(1));
    assert!(
        line.contains("from 127.0.0.1:") && line.contains("(nobody)"),
        "who and from where: {line}"
    );
    assert_untraced(&target);

    let mut dap = server.connect();
    attach_stopped(&mut dap, &target, &server);
    dap.ok("disconnect", json!({}));
    dap.wait_closed(secs(10));
    assert!(server.wait_exit(secs(10)).success());
    target.assert_runs_on(false);
}

/// A fresh directory for sockets that every user may traverse (so that a refusal is
/// latch's doing, not the directory's) but only root may write.
fn socket_dir(name: &str) -> PathBuf {
    let dir = tmp_dir().join(format!("sockets-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn unix_socket_is_private_and_checks_every_client_of_a_multiclient_server() {
    require_harness!();
    if !other_users_available() {
        return;
    }
    let target = Target::start(Fixture::Sleeping, &["2"]);
    let path = socket_dir("private").join("latch.sock");
    let listen = format!("unix:{}", path.display());
    let mut server = Server::start(&listen, &["--accept-multiclient"]);
    assert_eq!(mode_of(&path), 0o600, "{} is not private", path.display());

    // The socket's mode alone keeps nobody out...
    let mut nobody = server.connect_as(NOBODY);
    let (code, said) = nobody.outcome();
    assert!(
        code == Some(3) && said.contains("Permission denied"),
        "nobody could connect to a 0600 socket (exit {code:?}): {said}"
    );
    // ...and were it looser (a chmod, a careless umask), the peer's credentials still
    // are checked.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let nobody = server.connect_as(NOBODY);
    assert_refused(&mut server, nobody, NOBODY, &target);
    let line = server.wait_stderr(&["refused"], secs(1));
    assert!(
        line.contains(&listen) && line.contains("pid ") && line.contains("(nobody)"),
        "who and from where: {line}"
    );
    assert_untraced(&target);

    let mut first = server.connect();
    attach_stopped(&mut first, &target, &server);
    first.ok("disconnect", json!({}));
    first.wait_closed(secs(10));
    assert_traced_and_running(&target, server.pid());

    // Between clients, with the target held: each connection is checked, and a refused
    // one takes nothing over.
    let stranger = server.connect_as(STRANGER);
    assert_refused(&mut server, stranger, STRANGER, &target);
    assert_traced_and_running(&target, server.pid());
    let mut second = server.connect();
    attach_stopped(&mut second, &target, &server);
    second.ok("disconnect", json!({}));
    second.wait_closed(secs(10));

    server.stop();
    assert!(!path.exists(), "{} left behind", path.display());
    target.assert_runs_on(false);
}

#[test]
fn allow_other_users_lets_another_user_attach() {
    require_harness!();
    if !other_users_available() {
        return;
    }
    let dir = socket_dir("shared");
    let unix = format!("unix:{}", dir.join("latch.sock").display());
    for listen in ["127.0.0.1:0", unix.as_str()] {
        let target = Target::start(Fixture::Sleeping, &["1"]);
        let mut server = Server::start(listen, &["--allow-other-users"]);
        let warning = server.wait_stderr(&["warning", "--allow-other-users"], secs(10));
        assert!(
            warning.contains("any user") && warning.contains("stop, read and kill"),
            "the warning does not say what the option means: {warning}"
        );
        if let Some(path) = listen.strip_prefix("unix:") {
            assert_eq!(mode_of(Path::new(path)), 0o666, "{listen}");
        }
        let mut nobody = server.connect_as(NOBODY);
        nobody.dap.initialize();
        nobody.dap.attach_pid(target.pid, true);
        assert_entry_stop(&mut nobody.dap, target.pid as i64);
        assert_all_traced_and_stopped(target.pid, server.pid());
        nobody.dap.ok("disconnect", json!({}));
        nobody.dap.wait_closed(secs(10));
        assert!(server.wait_exit(secs(10)).success(), "{listen}");
        target.assert_runs_on(false);
    }
}

#[test]
fn a_latch_run_by_another_user_serves_that_user_and_root_only() {
    require_harness!();
    if !other_users_available() {
        return;
    }
    let mut server = Server::start_as(Some(NOBODY), "127.0.0.1:0", &["--accept-multiclient"]);
    // Another unprivileged user is refused...
    let mut stranger = server.connect_as(STRANGER);
    stranger
        .dap
        .send("initialize", json!({"adapterID": "latch"}));
    stranger.dap.wait_closed(secs(10));
    assert!(stranger.dap.log.is_empty(), "{:?}", stranger.dap.log);
    let line = server.wait_stderr(&["refused a client", "uid 54321"], secs(10));
    assert!(
        line.contains("only uid 65534 (nobody), the user latch runs as, and root"),
        "{line}"
    );
    // ...latch's own user is served, and so is root, who could trace latch anyway.
    let mut own = server.connect_as(NOBODY);
    own.dap.initialize();
    own.dap.ok("disconnect", json!({}));
    own.dap.wait_closed(secs(10));
    let mut root = server.connect();
    root.initialize();
    root.ok("disconnect", json!({}));
    root.wait_closed(secs(10));
    server.stop();
}

#[test]
fn listening_beyond_loopback_needs_allow_remote_clients() {
    require_harness!();
    let out = run_with_deadline(
        Command::new(latch_bin()).args(["dap", "--listen", "0.0.0.0:0"]),
        secs(10),
    );
    assert!(!out.status.success(), "latch listened on 0.0.0.0");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("not a loopback address")
            && text.contains("SSH tunnel")
            && text.contains("--allow-remote-clients"),
        "the refusal does not name the cause and the fix: {text}"
    );
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let mut server = Server::start("0.0.0.0:0", &["--allow-remote-clients"]);
    assert!(server.address.starts_with("0.0.0.0:"), "{}", server.address);
    let warning = server.wait_stderr(&["warning", "--allow-remote-clients"], secs(10));
    assert!(warning.contains("other machines"), "{warning}");
    // Clients on this machine are still checked.
    if other_users_available() {
        let target = Target::start(Fixture::Sleeping, &["1"]);
        let port = server.address.rsplit(':').next().unwrap().to_string();
        let nobody = server.connect_as_at(NOBODY, &format!("127.0.0.1:{port}"));
        assert_refused(&mut server, nobody, NOBODY, &target);
        assert_untraced(&target);
        target.assert_runs_on(false);
    }
    server.stop();
}

/// `latch dap --listen unix:PATH` must fail at start, saying every one of `words`,
/// and leave whatever is at PATH as it was.
fn assert_cannot_listen_at(path: &Path, words: &[&str]) {
    let before = std::fs::symlink_metadata(path).ok().map(|m| m.ino());
    let out = run_with_deadline(
        Command::new(latch_bin()).args(["dap", "--listen", &format!("unix:{}", path.display())]),
        secs(10),
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && words.iter().all(|w| text.contains(w)),
        "latch --listen unix:{} (exit {}) should fail saying {words:?}: {text}",
        path.display(),
        out.status
    );
    let after = std::fs::symlink_metadata(path).ok().map(|m| m.ino());
    assert_eq!(before, after, "{} was changed", path.display());
}

#[test]
fn a_unix_socket_is_only_created_where_no_other_user_can_swap_it() {
    require_harness!();
    let base = socket_dir("rules");
    let mkdir = |name: &str, mode: u32| {
        let dir = base.join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    };
    let fix = ["XDG_RUNTIME_DIR"];

    // Anyone may write there, and rename our socket away.
    let open = mkdir("open", 0o777);
    let words = [&fix[..], &["writable by other users", "0777"]].concat();
    assert_cannot_listen_at(&open.join("latch.sock"), &words);
    // Nor through a symbolic link from a safe place.
    std::os::unix::fs::symlink(&open, base.join("link")).unwrap();
    assert_cannot_listen_at(&base.join("link/latch.sock"), &words);
    // Nor below it: the directory in between could be swapped.
    let below = open.join("below");
    std::fs::create_dir(&below).unwrap();
    std::fs::set_permissions(&below, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_cannot_listen_at(&below.join("latch.sock"), &words);

    // Sticky, as /tmp is: others may write, but not rename or remove what is ours.
    let sticky = mkdir("sticky", 0o1777);
    let mut server = Server::start(&format!("unix:{}/latch.sock", sticky.display()), &[]);
    server.stop();

    // Another user's directory: its owner could swap the socket.
    if unsafe { libc::geteuid() } == 0 {
        let theirs = mkdir("theirs", 0o755);
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let words = [&fix[..], &["belongs to uid 65534"]].concat();
        assert_cannot_listen_at(&theirs.join("latch.sock"), &words);
    } else {
        crate::support::skip_or_fail("making another user's directory needs root");
    }

    // What is there and is no socket is neither replaced nor removed.
    let file = base.join("not-a-socket");
    std::fs::write(&file, "keep").unwrap();
    assert_cannot_listen_at(&file, &["not a socket"]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
}
