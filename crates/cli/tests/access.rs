//! `smartticket access` as a user runs it from the shell, offline: put an identifier,
//! present it and an unknown one, list, remove; and `serve` creating its token without
//! printing it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn smartticket() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smartticket"));
    // Tests must not pick up the developer's or CI's environment.
    for (key, _) in std::env::vars() {
        if key.starts_with("SMARTTICKET_") || key == "DATABASE_URL" || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
}

fn access(directory: &Path, arguments: &[&str]) -> Output {
    let (subcommand, rest) = arguments.split_first().unwrap();
    let output = smartticket()
        .current_dir(directory)
        .args(["access", subcommand, "--dir", "device"])
        .args(rest)
        .output()
        .unwrap();
    println!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn put_present_list_and_remove_from_the_shell() {
    let scratch = tempfile::tempdir().unwrap();
    let directory = scratch.path();

    let put = access(directory, &["put", "26:1A2B3C", "--label", "Petra", "--doors", "1,2", "--device", "4"]);
    assert!(put.status.success());
    assert!(stdout(&put).contains("added 26:1A2B3C"), "{}", stdout(&put));

    let granted = access(directory, &["present", "26:1a2b3c", "--door", "2"]);
    assert!(granted.status.success());
    assert!(stdout(&granted).starts_with("GRANTED 26:1A2B3C"), "{}", stdout(&granted));

    let unknown = access(directory, &["present", "1715004", "--bits", "34"]);
    assert!(unknown.status.success());
    assert!(stdout(&unknown).starts_with("DENIED unknown 34:1A2B3C"), "{}", stdout(&unknown));

    let wrong_door = access(directory, &["present", "1715004", "--bits", "26", "--door", "3", "--json"]);
    let decision: serde_json::Value = serde_json::from_str(stdout(&wrong_door).trim()).unwrap();
    assert_eq!(
        (&decision["decision"], &decision["reason"]),
        (&serde_json::json!("denied"), &serde_json::json!("wrong_door"))
    );

    let list = access(directory, &["list"]);
    assert!(stdout(&list).starts_with("26:1A2B3C\tPetra\tdoors 1,2"), "{}", stdout(&list));

    let bad = access(directory, &["put", "65:1", "--label", "x"]);
    assert_eq!(bad.status.code(), Some(2), "bad input is a usage error");
    let other_device = access(directory, &["list", "--device", "5"]);
    assert_eq!(other_device.status.code(), Some(2));

    assert!(access(directory, &["remove", "26:1A2B3C", "--actor", "alice"]).status.success());
    let gone = access(directory, &["present", "26:1A2B3C"]);
    assert!(stdout(&gone).starts_with("DENIED unknown"), "{}", stdout(&gone));
}

#[test]
fn serve_creates_a_token_and_never_prints_it() {
    let scratch = tempfile::tempdir().unwrap();
    let mut child = smartticket()
        .current_dir(scratch.path())
        .args(["access", "serve", "--dir", "device", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let created = lines.next().unwrap().unwrap();
    assert!(created.starts_with("created a new API token in device/api-token"), "{created}");
    let serving = lines.next().unwrap().unwrap();
    let address = serving.split("http://").nth(1).unwrap().split('/').next().unwrap().to_owned();

    let token = std::fs::read_to_string(scratch.path().join("device/api-token")).unwrap();
    let token = token.trim();
    assert_eq!(token.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(scratch.path().join("device/api-token")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let call = |authorization: &str| {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        let request = format!(
            "GET /api/v1/identifiers HTTP/1.1\r\nhost: x\r\nauthorization: {authorization}\r\nconnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(call(&format!("Bearer {token}")).starts_with("HTTP/1.1 200"));
    assert!(call("Bearer nope-nope-nope-nope").starts_with("HTTP/1.1 401"));

    child.kill().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(!stderr.contains(token) && !created.contains(token) && !serving.contains(token));
    assert!(rest.iter().all(|line| !line.contains(token)));
    child.wait().unwrap();
}
