//! The `smartticket` binary as a user runs it: arguments, configuration, exit codes,
//! migrations, the demo, serving, and a clean shutdown under load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PASSWORD: &str = "Tramvaj jede na Hlavní nádraží";

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

fn run(command: &mut Command) -> Output {
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_the_commands_and_exit_codes() {
    let out = run(smartticket().arg("--help"));
    assert!(out.status.success());
    let help = text(&out.stdout);
    for word in ["serve", "migrate", "config", "admin", "demo", "Exit codes"] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    let out = run(smartticket().arg("no-such-command"));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn config_show_applies_file_then_environment_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("smartticket.toml");
    std::fs::write(&file, "[server]\nlisten = \"0.0.0.0:9000\"\nrequest_timeout_ms = 5000\n").unwrap();
    let out = run(smartticket()
        .args(["--config", file.to_str().unwrap(), "config", "show", "--json"])
        .env("SMARTTICKET_SERVER__REQUEST_TIMEOUT_MS", "7000")
        .env("DATABASE_URL", "postgres://app:s3cret@db.internal:5432/smartticket"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["server"]["listen"], "0.0.0.0:9000", "from the file");
    assert_eq!(shown["server"]["request_timeout_ms"], 7000, "the environment overrides the file");
    assert_eq!(shown["database"]["url"], "postgres://app:********@db.internal:5432/smartticket");
    assert!(!text(&out.stdout).contains("s3cret"));

    let out = run(smartticket().args(["config", "show"]).env("SMARTTICKET_SERVER__LISTEN", "127.0.0.1:9999"));
    assert!(text(&out.stdout).contains("listen = \"127.0.0.1:9999\""), "{}", text(&out.stdout));
}

#[test]
fn bad_configuration_is_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nlisen = \"0.0.0.0:9000\"\n").unwrap();
    let out = run(smartticket().args(["--config", file.to_str().unwrap(), "config", "show"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("lisen"), "the unknown key is named: {}", text(&out.stderr));
    let out = run(smartticket().args(["config", "show"]).env("SMARTTICKET_SERVER__LISTEN", "not an address"));
    assert_eq!(out.status.code(), Some(2));
    let out = run(smartticket().args(["--config", "/nonexistent.toml", "config", "show"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("does not exist"));
}

#[test]
fn migrate_creates_a_current_schema_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let status = run(smartticket().args(["--data-dir", data.to_str().unwrap(), "migrate", "--status"]));
    assert_eq!(status.status.code(), Some(1), "a fresh database is not current");
    let out = run(smartticket().args(["--data-dir", data.to_str().unwrap(), "migrate"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(smartticket().args(["--data-dir", data.to_str().unwrap(), "migrate", "--status", "--json"]));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["current"], true);
    assert_eq!(status["backend"], "sqlite");
}

#[test]
fn an_unreachable_database_exits_with_code_3() {
    let out = run(smartticket()
        .args(["--database-url", "postgres://nobody@127.0.0.1:1/none", "migrate"])
        .env("SMARTTICKET_DATABASE__ACQUIRE_TIMEOUT_MS", "500"));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("unavailable"), "{}", text(&out.stderr));
}

#[test]
fn admin_create_checks_the_password_and_refuses_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let create = |password: &str| {
        let mut child = smartticket()
            .args(["--data-dir", &data, "admin", "create", "--email", "root@example.cz", "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let weak = create("password");
    assert_eq!(weak.status.code(), Some(1));
    assert!(text(&weak.stderr).contains("password"), "{}", text(&weak.stderr));
    let good = create(PASSWORD);
    assert!(good.status.success(), "{}", text(&good.stderr));
    assert!(text(&good.stdout).contains("created administrator root@example.cz"));
    let again = create(PASSWORD);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already exists"));
    let generated = run(smartticket().args([
        "--data-dir",
        &data,
        "admin",
        "create",
        "--email",
        "second@example.cz",
        "--generate-password",
    ]));
    assert!(text(&generated.stdout).contains("password: "), "{}", text(&generated.stdout));
}

#[test]
fn demo_replaces_only_its_own_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    for _ in 0..2 {
        let out = run(smartticket().args(["--data-dir", data.to_str().unwrap(), "demo"]));
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("admin@demo.smartticket.test"));
    }
    let credentials: Value =
        serde_json::from_slice(&std::fs::read(data.join("demo-credentials.json")).unwrap()).unwrap();
    assert_eq!(credentials["staff"].as_array().unwrap().len(), 5);
    for card in ["petra-card", "ivan-card", "anonymous-purse"] {
        assert!(data.join("cards").join(format!("{card}.json")).is_file(), "the demo issues {card}");
    }
    let stdout = text(&run(smartticket().args(["--data-dir", data.to_str().unwrap(), "mail", "list"])).stdout);
    assert!(stdout.contains("Receipt for order"), "the demo's receipts are in the outbox: {stdout}");
    let shown = run(smartticket()
        .args(["--data-dir", data.to_str().unwrap(), "card", "show", "--json"])
        .arg(data.join("cards/anonymous-purse.json")));
    assert!(shown.status.success(), "the demo's own settings open its keystore: {}", text(&shown.stderr));
    let state: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(state["purse"], 30_000 - 2_400 - 2_600, "300.00 from the kiosk, 24.00 and 26.00 for two rides");
    // The validators' part: every decision the demo promises, in its output.
    let out = text(&run(smartticket().args(["--data-dir", data.to_str().unwrap(), "demo"])).stdout);
    for line in [
        "101  Petra's card (month coupon)    ACCEPTED {\"by\":\"card_contract\"",
        "101  anonymous card (purse)         ACCEPTED {\"balance_minor\":25000,\"by\":\"card_purse\"",
        "101  Petra's Visa (day ticket)      ACCEPTED {\"by\":\"coupon\"",
        "101  a stranger's Visa              DECLINED no_valid_contract",
        "102  a stranger's Visa              ACCEPTED {\"by\":\"emv_purchase\"",
        "101  Petra's card, again            DECLINED passback",
        "103  Ivan's card (zones 1-2 only)   DECLINED wrong_zone",
        "101  Ivan's card                    DECLINED denylisted",
        "validator 101: 8 journal records, the back office holds through 8",
    ] {
        assert!(out.contains(line), "the demo shows `{line}`:\n{out}");
    }
    let petra = run(smartticket()
        .args(["--data-dir", data.to_str().unwrap(), "card", "show", "--json"])
        .arg(data.join("cards/petra-card.json")));
    let state: Value = serde_json::from_slice(&petra.stdout).unwrap();
    assert_eq!(state["purse"], 20_000, "Petra's top-up was delivered at the tap");
    assert_eq!(state["contracts"][0]["product"], 24, "and her month coupon (the monthly product's card code)");
    assert!(credentials["partner"]["api_key"].as_str().unwrap().starts_with("stk_"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.join("demo-credentials.json")).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the credentials are private");

    let precious = dir.path().join("precious");
    std::fs::create_dir_all(&precious).unwrap();
    std::fs::write(precious.join("ledger.db"), "keep me").unwrap();
    let out = run(smartticket().args(["--data-dir", precious.to_str().unwrap(), "demo"]));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(precious.join("ledger.db")).unwrap(), "keep me");
}

/// A validator provisioned from the demo's catalogue and keys decides on the demo's cards:
/// passes ride, the purse pays the route's fare, a second tap is passback, and a token
/// without lists is refused for list age; every decision is in the journal.
#[test]
fn a_validator_decides_on_the_demos_cards() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let data_arg = data.to_str().unwrap();
    assert!(run(smartticket().args(["--data-dir", data_arg, "demo"])).status.success());
    let passphrase = data.join("keys/passphrase");
    let sam = dir.path().join("sam.json");
    let exported = run(smartticket()
        .args(["--data-dir", data_arg, "keys", "export-sam", "--out"])
        .arg(&sam)
        .arg("--passphrase-file")
        .arg(&passphrase));
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let setup = dir.path().join("v501.toml");
    let init = run(smartticket()
        .args(["--data-dir", data_arg, "validator", "init", "--device", "501", "--zone", "1", "--route", "R1", "--out"])
        .arg(&setup));
    assert!(init.status.success(), "{}", text(&init.stderr));
    let unknown_route = run(smartticket()
        .args(["--data-dir", data_arg, "validator", "init", "--device", "502", "--zone", "1", "--route", "X9", "--out"])
        .arg(dir.path().join("v502.toml")));
    assert_eq!(unknown_route.status.code(), Some(2), "{}", text(&unknown_route.stderr));

    let tap = |media: &[&str]| {
        let mut command = smartticket();
        command
            .args(["--data-dir", data_arg, "validator", "tap", "--json", "--at", "2026-11-21T12:00:00Z", "--validator"])
            .arg(&setup)
            .arg("--sam")
            .arg(&sam)
            .arg("--sam-passphrase-file")
            .arg(&passphrase);
        for medium in media {
            command.arg(medium);
        }
        let out = run(&mut command);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).lines().map(|line| serde_json::from_str::<Value>(line).unwrap()).collect::<Vec<_>>()
    };
    let card = |name: &str| data.join(format!("cards/{name}.json")).to_str().unwrap().to_owned();
    let decisions = tap(&[&card("petra-card"), &card("anonymous-purse"), "phone:00112233445566778899aabbccddeeff"]);
    assert_eq!(decisions[0]["outcome"], "accepted");
    assert_eq!(decisions[0]["by"], "card_contract", "Petra's month coupon covers zone 1");
    assert_eq!(decisions[1]["by"], "card_purse");
    assert_eq!(decisions[1]["fare_minor"], 3_800, "four zones of route R1 at the full single fare");
    // The demo's own validator took a two-zone fare (26.00) after the kiosk's first ride.
    assert_eq!(decisions[1]["balance_minor"], 30_000 - 2_400 - 2_600 - 3_800);
    assert_eq!(decisions[2]["reason"], "list_too_old", "no lists were installed");
    let again = tap(&[&card("anonymous-purse")]);
    assert_eq!(again[0]["reason"], "passback", "the card's own log shows this device a moment ago");
    assert!(again[0]["tap"].as_u64().unwrap() > decisions[2]["tap"].as_u64().unwrap(), "tap numbers go on");
    let journal = std::fs::read_dir(data.join("validators/501")).unwrap().count();
    assert!(journal >= 2, "the journal directory holds its lock and segments");
}

/// A `smartticket serve` child process, listening on a port the OS chose.
struct Server {
    child: Child,
    base: String,
    log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    fn start(data_dir: &Path, database_url: Option<&str>) -> Server {
        let mut command = smartticket();
        command.args([
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
        ]);
        if let Some(url) = database_url {
            command.args(["--database-url", url]);
        }
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let log_writer = log.clone();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && event["message"] == "listening"
                {
                    let _ = addr_tx.send(event["addr"].as_str().unwrap_or_default().to_owned());
                }
                log_writer.lock().unwrap().push(line);
            }
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("server did not start: {:?}", log.lock().unwrap()));
        Server { child, base: format!("http://{addr}"), log }
    }

    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    fn wait(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return (status, self.log.lock().unwrap().clone());
            }
            assert!(Instant::now() < deadline, "server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn serves_an_empty_data_directory(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("fresh"), database_url);
    let client = reqwest::Client::new();
    let ready = client.get(format!("{}/readyz", server.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["database"], if database_url.is_some() { "postgres" } else { "sqlite" });
    let doc: Value =
        client.get(format!("{}/api/openapi.json", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/staff"].is_object());
    server.terminate();
    let (status, _) = server.wait();
    assert!(status.success());
}

#[tokio::test]
async fn serve_on_an_empty_sqlite_directory_is_ready() {
    serves_an_empty_data_directory(None).await;
}

/// Drops the test's schema when the test ends, however it ends.
struct SchemaGuard {
    base: String,
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([&self.base, "-qc", &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema)])
            .status();
    }
}

fn postgres_url_with_fresh_schema() -> (String, SchemaGuard) {
    let base = std::env::var("SMARTTICKET_TEST_DATABASE_URL")
        .expect("SMARTTICKET_TEST_DATABASE_URL is not set: this test needs PostgreSQL (see .ci/run)");
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let schema = format!("st_cli_{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let status = Command::new("psql")
        .args([&base, "-qc", &format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")])
        .status()
        .expect("psql is needed to prepare the schema");
    assert!(status.success());
    let separator = if base.contains('?') { '&' } else { '?' };
    (format!("{base}{separator}options=-csearch_path%3D{schema}"), SchemaGuard { base: base.clone(), schema })
}

#[tokio::test]
#[ignore = "needs PostgreSQL (SMARTTICKET_TEST_DATABASE_URL)"]
async fn serve_on_an_empty_postgres_database_is_ready() {
    let (url, _schema) = postgres_url_with_fresh_schema();
    serves_an_empty_data_directory(Some(&url)).await;
}

/// Writes as fast as it can from several clients, SIGTERMs the server mid-stream, and
/// checks that every write the server acknowledged is in the database afterwards.
async fn sigterm_loses_no_acknowledged_write(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut admin = smartticket()
        .args(["--data-dir", data.to_str().unwrap()])
        .args(database_url.map(|u| vec!["--database-url", u]).unwrap_or_default())
        .args(["admin", "create", "--email", "root@example.cz", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(admin.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let created = admin.wait_with_output().unwrap();
    assert!(created.status.success(), "admin create failed: {}", text(&created.stderr));
    let server = Server::start(&data, database_url);
    let client = reqwest::Client::new();
    let granted: Value = client
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"realm": "staff", "email": "root@example.cz", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = granted["token"].as_str().unwrap().to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (client, base, token, stop) = (client.clone(), server.base.clone(), token.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = json!({"name": format!("Partner {writer}-{n}"), "contact_email": "x@example.cz"});
                match client.post(format!("{base}/api/v1/partners")).bearer_auth(&token).json(&body).send().await {
                    Ok(response) if response.status() == 201 => {
                        let created: Value = response.json().await.unwrap();
                        acknowledged.push(created["id"].as_str().unwrap().to_owned());
                    }
                    Ok(response) => panic!("unexpected answer {}", response.status()),
                    Err(_) => break, // the server is gone: stop writing
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    let (status, log) = server.wait();
    assert!(status.success(), "the server must exit cleanly on SIGTERM: {log:?}");
    assert!(log.iter().any(|l| l.contains("SIGTERM received")));
    assert!(log.iter().any(|l| l.contains("database closed")));
    assert!(acknowledged.len() >= 10, "too few writes to prove anything: {}", acknowledged.len());

    let options = smartticket_store::StoreOptions::from_url_or_data_dir(database_url, &data).unwrap();
    let db = smartticket_store::Db::open(&options).await.unwrap();
    let stored: Vec<String> =
        smartticket_store::sql!(db.reader(), |c| sqlx::query_scalar("SELECT id FROM partners").fetch_all(c).await)
            .unwrap();
    let stored: std::collections::HashSet<String> = stored.into_iter().collect();
    for id in &acknowledged {
        let bare = id.parse::<smartticket_core::id::PartnerId>().unwrap().to_db();
        assert!(stored.contains(&bare), "acknowledged partner {id} was lost");
    }
    println!("{} acknowledged writes, {} stored", acknowledged.len(), stored.len());
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_writes_loses_nothing_on_sqlite() {
    sigterm_loses_no_acknowledged_write(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL (SMARTTICKET_TEST_DATABASE_URL)"]
async fn sigterm_during_writes_loses_nothing_on_postgres() {
    let (url, _schema) = postgres_url_with_fresh_schema();
    sigterm_loses_no_acknowledged_write(Some(&url)).await;
}

/// The demo served, a partner's sale over HTTP, and `card tap` relaying the card's
/// delivery session from the command line: the card holds the value afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_tapped_from_the_command_line_receives_what_was_sold() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let made = run(smartticket().args(["--data-dir", data.to_str().unwrap(), "demo"]));
    assert!(made.status.success(), "{}", text(&made.stderr));
    let credentials: Value =
        serde_json::from_slice(&std::fs::read(data.join("demo-credentials.json")).unwrap()).unwrap();
    let key = credentials["partner"]["api_key"].as_str().unwrap().to_owned();
    let server = Server::start(&data, None);
    let client = reqwest::Client::new();
    let card: Value = client
        .get(format!("{}/api/v1/media/find?printed_number=9643000000003", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sale = serde_json::json!({
        "items": [{ "medium_id": card["id"], "product": "purse", "discount": "adult", "amount_minor": 5000 }],
        "payment": { "method": "partner" },
    });
    let sold = client
        .post(format!("{}/api/v1/sales", server.base))
        .bearer_auth(&key)
        .header("idempotency-key", "cli-tap-1")
        .json(&sale)
        .send()
        .await
        .unwrap();
    assert_eq!(sold.status(), 201);
    let image = data.join("cards/anonymous-purse.json");
    let tapped = run(smartticket().args(["card", "tap", "--server", &server.base, "--token", &key]).arg(&image));
    assert!(tapped.status.success(), "{}", text(&tapped.stderr));
    assert!(text(&tapped.stdout).contains("1 product(s) written"), "{}", text(&tapped.stdout));
    // 300.00 from the kiosk, less the demo's two rides (24.00, 26.00), plus 50.00 now.
    assert!(text(&tapped.stdout).contains("purse: 300.00 CZK"), "{}", text(&tapped.stdout));
    let again = run(smartticket().args(["card", "tap", "--server", &server.base, "--token", &key]).arg(&image));
    assert!(text(&again.stdout).contains("up to date"), "the second tap writes nothing: {}", text(&again.stdout));
    let refused =
        run(smartticket().args(["card", "tap", "--server", &server.base, "--token", "stk_wrong"]).arg(&image));
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("401"), "{}", text(&refused.stderr));
    server.terminate();
    assert!(server.wait().0.success());
}

/// Logs in as the demo's carrier and answers the session token.
async fn carrier_token(base: &str, data: &Path) -> String {
    let credentials: Value =
        serde_json::from_slice(&std::fs::read(data.join("demo-credentials.json")).unwrap()).unwrap();
    let carrier = credentials["staff"].as_array().unwrap().iter().find(|s| s["role"] == "carrier").unwrap().clone();
    let login: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({ "realm": "staff", "email": carrier["email"], "password": carrier["password"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["token"].as_str().unwrap().to_owned()
}

/// The demo with a validator configuration and a secure-module profile beside it.
fn demo_with_a_validator(dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let data = dir.join("demo");
    let data_arg = data.to_str().unwrap();
    assert!(run(smartticket().args(["--data-dir", data_arg, "demo"])).status.success());
    let passphrase = data.join("keys/passphrase");
    let sam = dir.join("sam.json");
    let exported = run(smartticket()
        .args(["--data-dir", data_arg, "keys", "export-sam", "--out"])
        .arg(&sam)
        .arg("--passphrase-file")
        .arg(&passphrase));
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let setup = dir.join("validator.toml");
    let init = run(smartticket()
        .args(["--data-dir", data_arg, "validator", "init", "--device", "700", "--zone", "1", "--out"])
        .arg(&setup));
    assert!(init.status.success(), "{}", text(&init.stderr));
    (data, sam, passphrase, setup)
}

/// The fleet simulator against a running server: passengers, tears, offline devices and lost
/// answers, and in the end the back office holds each device's records exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_fleet_uploads_every_record_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (data, sam, passphrase, setup) = demo_with_a_validator(dir.path());
    let server = Server::start(&data, None);
    let token = carrier_token(&server.base, &data).await;
    let fleet = run(smartticket()
        .args(["--data-dir", data.to_str().unwrap(), "validator", "fleet", "--json", "--seed", "7"])
        .args(["--devices", "3", "--taps", "400", "--lost-answer-percent", "50", "--tear-percent", "20"])
        .args(["--server", &server.base, "--token", &token, "--validator"])
        .arg(&setup)
        .arg("--sam")
        .arg(&sam)
        .arg("--sam-passphrase-file")
        .arg(&passphrase)
        .arg("--cards")
        .arg(data.join("cards")));
    assert!(fleet.status.success(), "{}", text(&fleet.stderr));
    let report: Value = serde_json::from_slice(&fleet.stdout).unwrap();
    assert_eq!(report["taps"], 400);
    assert_eq!(report["devices_verified"], 3, "{report}");
    assert_eq!(report["records_stored"], report["records_written"]);
    assert!(report["records_written"].as_u64().unwrap() >= 400, "a decision per tap, intents besides");
    assert!(report["lost_answers"].as_u64().unwrap() > 0, "{report}");
    assert!(report["tears"].as_u64().unwrap() > 0, "{report}");
    let outcomes = &report["outcomes"];
    assert!(outcomes["accepted: coupon"].as_u64().unwrap() > 0, "Petra's Visa holds a day ticket: {outcomes}");
    assert!(outcomes["accepted: card_contract"].as_u64().unwrap() > 0, "{outcomes}");
    assert!(outcomes["declined: no_valid_contract"].as_u64().unwrap() > 0, "{outcomes}");
    // The same device numbers again would reuse journal ids: refused before anything is sent.
    let again = run(smartticket()
        .args(["--data-dir", data.to_str().unwrap(), "validator", "fleet", "--taps", "1"])
        .args(["--first-device", report["first_device"].to_string().as_str()])
        .args(["--server", &server.base, "--token", &token, "--validator"])
        .arg(&setup)
        .arg("--sam")
        .arg(&sam)
        .arg("--sam-passphrase-file")
        .arg(&passphrase));
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stderr));
    server.terminate();
    assert!(server.wait().0.success());
}

/// `validator run` fetches the lists at start, decides, uploads its journal when it stops,
/// and decides from the lists it stored when it starts again without the network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_validator_syncs_and_keeps_its_lists() {
    let dir = tempfile::tempdir().unwrap();
    let (data, sam, passphrase, setup) = demo_with_a_validator(dir.path());
    let server = Server::start(&data, None);
    let token = carrier_token(&server.base, &data).await;
    let journal = dir.path().join("v700");
    let validator_run = |server: Option<&str>, media: &str| {
        let mut command = smartticket();
        command
            .args(["--data-dir", data.to_str().unwrap(), "validator", "run", "--stdin", "--json", "--validator"])
            .arg(&setup)
            .arg("--sam")
            .arg(&sam)
            .arg("--sam-passphrase-file")
            .arg(&passphrase)
            .arg("--journal")
            .arg(&journal);
        if let Some(base) = server {
            command.args(["--server", base, "--token", &token]);
        }
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(media.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let decisions: Vec<Value> =
            text(&out.stdout).lines().map(|line| serde_json::from_str::<Value>(line).unwrap()).collect();
        (decisions, text(&out.stderr))
    };
    let media = "bank:4111111111111111:12/29\nbank:4000000000000002:12/29\nnot-a-medium\n";
    let (decisions, log) = validator_run(Some(&server.base), media);
    assert_eq!(decisions.len(), 2, "the bad line is reported and skipped: {log}");
    assert_eq!(decisions[0]["by"], "coupon", "Petra's day ticket, from the downloaded greenlist");
    assert_eq!(decisions[1]["reason"], "no_valid_contract");
    assert!(log.contains("not-a-medium"), "{log}");
    assert!(log.contains("journal uploaded through sequence 2"), "{log}");
    server.terminate();
    assert!(server.wait().0.success());
    // Offline now: the stored lists still know Petra's Visa (passback has passed: a new run
    // starts with an empty memory, and the card is a token).
    let (decisions, _) = validator_run(None, "bank:4111111111111111:12/29\n");
    assert_eq!(decisions[0]["by"], "coupon", "{decisions:?}");
}
