//! The SMTP transport against a minimal SMTP server on the loopback interface: a mail is
//! delivered whole, a 4xx reply is transient and a 5xx reply permanent, and a server that
//! is not there is a transient failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smartticket_core::paging::PageSpec;
use smartticket_core::{ManualClock, Timestamp};
use smartticket_mail::{
    DeliveryReport, MailFilter, MailStatus, Mailer, OutgoingMail, SmtpSettings, SmtpTransport, TlsMode, enqueue, list,
};
use smartticket_store::testing::TestDb;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the fake server answers to `RCPT TO`.
#[derive(Clone, Copy)]
enum Recipient {
    Accept,
    Later,
    Never,
}

/// Serves SMTP sessions on a loopback port, one at a time, keeping each DATA it receives.
async fn fake_smtp(recipient: Recipient) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        // Bounded: a test never needs more than a few sessions.
        for _ in 0..16 {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 fake.test ESMTP\r\n").await.unwrap();
            let mut data: Option<String> = None;
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(body) = data.as_mut() {
                    if line == "." {
                        store.lock().unwrap().push(data.take().unwrap());
                        write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                    } else {
                        body.push_str(&line);
                        body.push('\n');
                    }
                    continue;
                }
                let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" | "HELO" => b"250-fake.test\r\n250 8BITMIME\r\n",
                    "MAIL" => b"250 2.1.0 ok\r\n",
                    "RCPT" => match recipient {
                        Recipient::Accept => b"250 2.1.5 ok\r\n",
                        Recipient::Later => b"451 4.3.0 try again later\r\n",
                        Recipient::Never => b"550 5.1.1 no such user\r\n",
                    },
                    "DATA" => {
                        data = Some(String::new());
                        b"354 go ahead\r\n"
                    }
                    "RSET" | "NOOP" => b"250 ok\r\n",
                    "QUIT" => {
                        write.write_all(b"221 bye\r\n").await.unwrap();
                        break;
                    }
                    _ => b"502 5.5.2 unknown\r\n",
                };
                write.write_all(reply).await.unwrap();
            }
        }
    });
    (port, received)
}

fn settings(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port: Some(port),
        tls: TlsMode::Plain,
        username: None,
        password: None,
        from: "SmartTicket <noreply@smartticket.example>".into(),
        timeout: Duration::from_secs(5),
    }
}

async fn one_attempt(port: u16) -> (DeliveryReport, TestDb) {
    let test_db = TestDb::sqlite().await.unwrap();
    let now = Timestamp::parse_rfc3339("2026-11-21T08:00:00Z").unwrap();
    let mut tx = test_db.db.begin().await.unwrap();
    let mail = OutgoingMail::new("jana@example.cz", "Heslo", "Dobrý den,\nodkaz: https://example.cz/x\n").unwrap();
    enqueue(&mut tx, now, &mail).await.unwrap();
    tx.commit().await.unwrap();
    let transport = SmtpTransport::new(&settings(port)).unwrap();
    let mailer = Mailer::new(test_db.db.clone(), Arc::new(ManualClock::new(now)), transport);
    (mailer.deliver_due(now).await.unwrap(), test_db)
}

#[tokio::test]
async fn a_mail_reaches_the_smtp_server_whole() {
    let (port, received) = fake_smtp(Recipient::Accept).await;
    let (report, test_db) = one_attempt(port).await;
    assert_eq!(report.sent, 1, "{report:?}");
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let parsed = mailparse::parse_mail(received[0].as_bytes()).unwrap();
    // SMTP's end-of-data CRLF can leave one more line ending; the text is what counts.
    assert_eq!(parsed.get_body().unwrap().replace("\r\n", "\n").trim_end(), "Dobrý den,\nodkaz: https://example.cz/x");
    let subject = parsed.headers.iter().find(|h| h.get_key() == "Subject").unwrap().get_value();
    assert_eq!(subject, "Heslo");
    test_db.finish().await.unwrap();
}

#[tokio::test]
async fn smtp_replies_decide_between_retrying_and_giving_up() {
    let (later, _) = fake_smtp(Recipient::Later).await;
    let (report, test_db) = one_attempt(later).await;
    assert_eq!((report.retrying, report.failed), (1, 0), "4xx is worth another try");
    let pending = list(&test_db.db, &MailFilter::default(), &PageSpec { limit: 50, after: None }).await.unwrap().items;
    assert!(pending[0].last_error.as_deref().unwrap().contains("try again later"), "{pending:?}");
    test_db.finish().await.unwrap();

    let (never, _) = fake_smtp(Recipient::Never).await;
    let (report, test_db) = one_attempt(never).await;
    assert_eq!((report.retrying, report.failed), (0, 1), "5xx is final");
    let failed = list(&test_db.db, &MailFilter::default(), &PageSpec { limit: 50, after: None }).await.unwrap().items;
    assert_eq!(failed[0].status, MailStatus::Failed);
    test_db.finish().await.unwrap();
}

#[tokio::test]
async fn a_server_that_is_not_there_is_retried() {
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = unused.local_addr().unwrap().port();
    drop(unused);
    let (report, test_db) = one_attempt(port).await;
    assert_eq!(report.retrying, 1, "{report:?}");
    test_db.finish().await.unwrap();
}
