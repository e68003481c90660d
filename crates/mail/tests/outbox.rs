//! The outbox on SQLite and PostgreSQL: mail exists only with its transaction, the spool
//! writes real RFC 5322 files, failures back off and end, and nothing is sent twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use smartticket_core::id::MailId;
use smartticket_core::paging::{PageRequest, PageSpec};
use smartticket_core::{ManualClock, Timestamp};
use smartticket_mail::{
    ATTEMPTS_MAX, DELIVERY_BATCH_MAILS_MAX, DeliveryReport, MailEntry, MailFilter, MailStatus, MailTransport, Mailer,
    OutgoingMail, QueuedMail, SpoolTransport, TransportError, enqueue, list, retry_delay_secs,
};
use smartticket_store::{Db, sql};

fn start() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-21T08:00:00Z").unwrap()
}

fn plus_secs(at: Timestamp, secs: i64) -> Timestamp {
    at.checked_add(chrono::Duration::seconds(secs)).unwrap()
}

fn mailer<T: MailTransport>(db: &Db, transport: T) -> Mailer<T> {
    Mailer::new(db.clone(), Arc::new(ManualClock::new(start())), transport)
}

fn letter(to: &str, subject: &str) -> OutgoingMail {
    OutgoingMail::new(to, subject, "Dobrý den,\n\nodkaz: https://example.cz/x?token=abc\n").unwrap()
}

async fn queue(db: &Db, at: Timestamp, mail: &OutgoingMail) -> MailId {
    let mut tx = db.begin().await.unwrap();
    let id = enqueue(&mut tx, at, mail).await.unwrap();
    tx.commit().await.unwrap();
    id
}

async fn all(db: &Db, filter: &MailFilter) -> Vec<MailEntry> {
    list(db, filter, &PageSpec { limit: 500, after: None }).await.unwrap().items
}

async fn entry(db: &Db, id: MailId) -> MailEntry {
    all(db, &MailFilter::default()).await.into_iter().find(|e| e.id == id).unwrap()
}

async fn stored_body(db: &Db, id: MailId) -> String {
    sql!(db.reader(), |c| {
        sqlx::query_scalar("SELECT body_text FROM outbox_mail WHERE id = $1").bind(id.to_db()).fetch_one(c).await
    })
    .unwrap()
}

/// Remembers what it was asked to send, fails with `error` when one is set, and fires
/// `stop` (a shutdown signal) when it gets its first mail.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<MailId>>,
    error: Option<TransportError>,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl MailTransport for Recorder {
    async fn send(&self, mail: &QueuedMail) -> Result<(), TransportError> {
        self.sent.lock().unwrap().push(mail.id());
        let stop = self.stop.lock().unwrap().take();
        if let Some(stop) = stop {
            stop.send(()).unwrap();
            // The stop must not cut this delivery short.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        match &self.error {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }
}

smartticket_store::backend_tests! {
    async fn mail_exists_only_if_its_transaction_commits(db) {
        let mut tx = db.begin().await.unwrap();
        enqueue(&mut tx, start(), &letter("jana@example.cz", "Rolled back")).await.unwrap();
        tx.rollback().await.unwrap();
        {
            let mut tx = db.begin().await.unwrap();
            enqueue(&mut tx, start(), &letter("jana@example.cz", "Dropped")).await.unwrap();
            // Dropped without commit, as an early `?` return would.
        }
        assert!(all(&db, &MailFilter::default()).await.is_empty(), "no mail without its change");
        let id = queue(&db, start(), &letter("jana@example.cz", "Committed")).await;
        let entries = all(&db, &MailFilter::default()).await;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].id, id);
        assert_eq!(entries[0].status, MailStatus::Pending);
        assert_eq!(entries[0].attempts, 0);
        assert_eq!(entries[0].not_before, Some(start()));
        let recorder = mailer(&db, Recorder::default());
        assert_eq!(recorder.deliver_due(start()).await.unwrap().sent, 1);
    }

    async fn the_spool_writes_parseable_private_eml_files(db) {
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join("mail");
        let spool = SpoolTransport::new(&spool_dir, "SmartTicket <noreply@smartticket.example>").unwrap();
        let body = "Dobrý den, Jano,\n\nnastavte si heslo: https://example.cz/set-password?token=sta_x\n\nPlatí 7 dní.\n";
        let subject = "Váš účet SmartTicket – nastavte si heslo";
        let mail = OutgoingMail::new("Jana.Novakova@example.cz", subject, body).unwrap();
        let first = queue(&db, start(), &mail).await;
        let second = queue(&db, start(), &letter("petr@example.cz", "Second")).await;
        let mailer = mailer(&db, spool);
        let report = mailer.deliver_due(start()).await.unwrap();
        assert_eq!(report, DeliveryReport { claimed: 2, sent: 2, ..Default::default() });

        let path = mailer.transport().path_of(first);
        assert_eq!(path.file_name().unwrap().to_str().unwrap(), format!("{first}.eml"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&spool_dir).unwrap().permissions().mode() & 0o777, 0o700);
        let raw = std::fs::read(&path).unwrap();
        assert!(raw.is_ascii(), "headers and body are encoded for 7-bit transport");
        let parsed = mailparse::parse_mail(&raw).unwrap();
        let header = |name: &str| parsed.headers.iter().find(|h| h.get_key().eq_ignore_ascii_case(name)).map(|h| h.get_value());
        assert_eq!(header("Subject").unwrap(), subject);
        assert_eq!(header("To").unwrap(), "Jana.Novakova@example.cz");
        assert_eq!(header("From").unwrap(), "SmartTicket <noreply@smartticket.example>");
        assert_eq!(header("Message-ID").unwrap(), format!("<{first}@smartticket.example>"));
        let date = mailparse::dateparse(&header("Date").unwrap()).unwrap();
        assert_eq!(date, start().unix_micros() / 1_000_000);
        assert_eq!(parsed.ctype.mimetype, "text/plain");
        assert_eq!(parsed.get_body().unwrap().replace("\r\n", "\n"), body);
        assert!(mailer.transport().path_of(second).is_file());
        let names: Vec<String> = std::fs::read_dir(&spool_dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names.len(), 2, "no temporary files are left: {names:?}");

        let sent = entry(&db, first).await;
        assert_eq!(sent.status, MailStatus::Sent);
        assert_eq!(sent.attempts, 1);
        assert_eq!(sent.sent_at, Some(start()));
        assert_eq!(sent.not_before, None, "only pending mail waits");
        assert_eq!(stored_body(&db, first).await, "", "the body (and its link) is dropped once sent");
    }

    async fn a_failing_transport_backs_off_and_finally_gives_up(db) {
        let id = queue(&db, start(), &letter("jana@example.cz", "Never arrives")).await;
        let failing = Recorder { error: Some(TransportError::Transient("421 try later".into())), ..Default::default() };
        let mailer = mailer(&db, failing);
        let mut now = start();
        for attempt in 1..=ATTEMPTS_MAX {
            let report = mailer.deliver_due(now).await.unwrap();
            assert_eq!(report.claimed, 1, "attempt {attempt}");
            let after = entry(&db, id).await;
            assert_eq!(after.attempts, attempt);
            assert!(after.last_error.as_deref().unwrap().contains("421 try later"));
            if attempt == ATTEMPTS_MAX {
                assert_eq!(report.failed, 1);
                assert_eq!(after.status, MailStatus::Failed);
                break;
            }
            assert_eq!(report.retrying, 1);
            assert_eq!(after.status, MailStatus::Pending);
            let delay = i64::try_from(retry_delay_secs(attempt)).unwrap();
            let next = after.not_before.unwrap();
            assert_eq!(next, plus_secs(now, delay), "exponential backoff");
            let just_before = plus_secs(next, -1);
            assert_eq!(mailer.deliver_due(just_before).await.unwrap().claimed, 0, "not before its time");
            now = next;
        }
        assert_eq!(mailer.transport().sent.lock().unwrap().len(), ATTEMPTS_MAX as usize);
        assert_eq!(mailer.deliver_due(plus_secs(now, 86_400 * 30)).await.unwrap().claimed, 0, "failed is final");
        assert_eq!(stored_body(&db, id).await, "");
        let failed = all(&db, &MailFilter { status: Some(MailStatus::Failed), to: None }).await;
        assert_eq!(failed.len(), 1);
    }

    async fn a_permanent_refusal_fails_at_once(db) {
        let id = queue(&db, start(), &letter("nobody@example.cz", "Refused")).await;
        let refusing = Recorder { error: Some(TransportError::Permanent("550 no such user".into())), ..Default::default() };
        let report = mailer(&db, refusing).deliver_due(start()).await.unwrap();
        assert_eq!(report, DeliveryReport { claimed: 1, failed: 1, ..Default::default() });
        let failed = entry(&db, id).await;
        assert_eq!((failed.status, failed.attempts), (MailStatus::Failed, 1));
        assert!(failed.last_error.unwrap().contains("550 no such user"));
    }

    async fn nothing_is_sent_twice_and_batches_are_bounded(db) {
        let total = DELIVERY_BATCH_MAILS_MAX as usize + 5;
        for n in 0..total {
            queue(&db, start(), &letter(&format!("user{n}@example.cz"), "Batch")).await;
        }
        let mailer = mailer(&db, Recorder::default());
        let first = mailer.deliver_due(start()).await.unwrap();
        assert_eq!(first.claimed, DELIVERY_BATCH_MAILS_MAX);
        assert_eq!(first.sent, DELIVERY_BATCH_MAILS_MAX);
        let second = mailer.deliver_due(start()).await.unwrap();
        assert_eq!(second.sent, 5);
        assert_eq!(mailer.deliver_due(start()).await.unwrap(), DeliveryReport::default());
        assert_eq!(mailer.deliver_due(plus_secs(start(), 86_400)).await.unwrap().claimed, 0, "sent is final");
        let sent = mailer.transport().sent.lock().unwrap().clone();
        assert_eq!(sent.len(), total);
        assert_eq!(sent.iter().collect::<HashSet<_>>().len(), total, "every mail exactly once");
        assert_eq!(all(&db, &MailFilter { status: Some(MailStatus::Sent), to: None }).await.len(), total);
    }

    async fn mail_not_yet_due_waits(db) {
        let later = plus_secs(start(), 3600);
        queue(&db, later, &letter("jana@example.cz", "Later")).await;
        let mailer = mailer(&db, Recorder::default());
        assert_eq!(mailer.deliver_due(start()).await.unwrap().claimed, 0);
        assert_eq!(mailer.deliver_due(later).await.unwrap().sent, 1);
    }

    async fn the_outbox_lists_newest_first_with_filters(db) {
        for n in 0..5 {
            queue(&db, start(), &letter(&format!("user{n}@example.cz"), &format!("Mail {n}"))).await;
        }
        queue(&db, start(), &letter("Jana@Example.cz", "For Jana")).await;
        let page = PageRequest { limit: Some(4), cursor: None }.spec().unwrap();
        let first = list(&db, &MailFilter::default(), &page).await.unwrap();
        assert_eq!(first.items.len(), 4);
        assert_eq!(first.items[0].subject, "For Jana", "newest first");
        let next = PageRequest { limit: Some(4), cursor: first.next_cursor.clone() }.spec().unwrap();
        let second = list(&db, &MailFilter::default(), &next).await.unwrap();
        assert_eq!(second.items.len(), 2);
        assert_eq!(second.next_cursor, None);
        let jana = all(&db, &MailFilter { status: None, to: Some(" jana@example.CZ ".into()) }).await;
        assert_eq!(jana.len(), 1, "the address matches without regard to case");
        assert_eq!(jana[0].to, "Jana@Example.cz");
        assert!(all(&db, &MailFilter { status: Some(MailStatus::Sent), to: None }).await.is_empty());
        let json = serde_json::to_value(&jana[0]).unwrap();
        assert_eq!(json["status"], "pending");
        assert!(json.get("body").is_none(), "listing never shows bodies");
    }

    async fn two_mailers_at_once_never_share_a_mail(db) {
        let total = DELIVERY_BATCH_MAILS_MAX as usize + 10;
        for n in 0..total {
            queue(&db, start(), &letter(&format!("user{n}@example.cz"), "Shared outbox")).await;
        }
        let a = mailer(&db, Recorder::default());
        let b = mailer(&db, Recorder::default());
        for _ in 0..2 {
            let (first, second) = tokio::join!(a.deliver_due(start()), b.deliver_due(start()));
            first.unwrap();
            second.unwrap();
        }
        let by_a: HashSet<MailId> = a.transport().sent.lock().unwrap().iter().copied().collect();
        let by_b: HashSet<MailId> = b.transport().sent.lock().unwrap().iter().copied().collect();
        assert!(by_a.is_disjoint(&by_b), "a mail claimed by one mailer is invisible to the other");
        assert_eq!(by_a.len() + by_b.len(), total);
    }

    async fn run_delivers_until_shutdown(db) {
        queue(&db, start(), &letter("jana@example.cz", "From the loop")).await;
        let mailer = mailer(&db, Recorder::default()).with_poll_interval(std::time::Duration::from_millis(10));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let watcher = async {
            for _ in 0..500 {
                if !mailer.transport().sent.lock().unwrap().is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            stop.send(()).unwrap();
        };
        let run = mailer.run(async {
            let _ = stopped.await;
        });
        tokio::time::timeout(std::time::Duration::from_secs(10), async { tokio::join!(run, watcher) }).await.unwrap();
        assert_eq!(mailer.transport().sent.lock().unwrap().len(), 1);
        assert_eq!(all(&db, &MailFilter { status: Some(MailStatus::Sent), to: None }).await.len(), 1);
    }

    async fn a_stopping_mailer_finishes_the_mail_in_hand_and_hands_back_the_rest(db) {
        let ids = [
            queue(&db, start(), &letter("a@example.cz", "First")).await,
            queue(&db, start(), &letter("b@example.cz", "Second")).await,
            queue(&db, start(), &letter("c@example.cz", "Third")).await,
        ];
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let recorder = Recorder { stop: Mutex::new(Some(stop)), ..Default::default() };
        let stopping = mailer(&db, recorder);
        let run = stopping.run(async {
            let _ = stopped.await;
        });
        tokio::time::timeout(std::time::Duration::from_secs(10), run).await.unwrap();
        assert_eq!(stopping.transport().sent.lock().unwrap().as_slice(), &ids[..1], "nothing after the stop");
        assert_eq!(entry(&db, ids[0]).await.status, MailStatus::Sent, "the mail in hand is recorded");
        for id in &ids[1..] {
            let handed_back = entry(&db, *id).await;
            assert_eq!((handed_back.status, handed_back.attempts), (MailStatus::Pending, 0));
            assert_eq!(handed_back.not_before, Some(start()), "due at once, not after the lease");
        }
        let next = mailer(&db, Recorder::default());
        assert_eq!(next.deliver_due(start()).await.unwrap().sent, 2);
    }
}
