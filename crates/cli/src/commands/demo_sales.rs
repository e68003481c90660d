//! The demo's selling: the IDSOK network published, simulated cards personalised and
//! registered, a bank card tokenised, and purchases made the ways real people make them
//! (the e-shop paid on the test acquirer's page, a student discount approved with a photo
//! and paid by bank transfer, cash at a counter, a partner's kiosk), then delivered onto
//! the cards as at their next tap, and one card used at a validator.

use std::sync::Arc;

use anyhow::Context;
use secrecy::SecretString;
use smartticket_card::desfire::host::Desfire;
use smartticket_card::fare::KeySource;
use smartticket_card::fare::ops::{self, Terminal};
use smartticket_card::fare::records::Environment;
use smartticket_card::sim::SimCard;
use smartticket_catalog::{CatalogDocument, ZoneChoice};
use smartticket_core::id::{CustomerId, MediumId, OrderId, PartnerId, StaffId};
use smartticket_core::{Clock, Money, Timestamp};
use smartticket_crypto::hsm::Hsm;
use smartticket_identity::AuditCtx;
use smartticket_identity::audit::Actor;
use smartticket_identity::{Identity, StaffRole};
use smartticket_sales::discounts::{Approval, ApprovalMethod};
use smartticket_sales::media::Scope;
use smartticket_sales::orders::{Buyer, ItemRequest};
use smartticket_sales::payments::PaymentStart;
use smartticket_sales::payments::test_acquirer::{Decision, TestAcquirer, event_for};
use smartticket_sales::sell::SaleRequest;
use smartticket_sales::{MediumEvent, Sales};

use super::demo_cards::CARDS_DIR;
use crate::config::Config;

/// The network the demo sells.
const IDSOK: &str = include_str!("../../../../examples/networks/idsok.toml");

/// Who the demo acts as.
pub struct Cast {
    /// Petra, who shops in the e-shop.
    pub petra: CustomerId,
    /// Ivan, a student.
    pub ivan: CustomerId,
    /// The cashier at the main station.
    pub cashier: StaffId,
    /// The partner kiosk.
    pub partner: PartnerId,
}

/// What the demo sold, for the summary.
struct Sold {
    what: &'static str,
    order: OrderId,
    total: Money,
    how: &'static str,
}

/// Runs the selling part of the demo: sells and delivers, and answers Ivan's card, which
/// the validators' part of the demo blocks.
pub async fn run(
    config: &Config,
    sales: &Sales,
    identity: &Identity,
    acquirer: &TestAcquirer,
    hsm: &Arc<dyn Hsm>,
    cast: &Cast,
) -> anyhow::Result<MediumId> {
    let system = AuditCtx::system("demo");
    let clock = smartticket_core::SystemClock;
    let document = CatalogDocument::from_toml(IDSOK).context("the example network")?;
    let today = smartticket_catalog::Catalog::from_document(document.clone())?.local_date(clock.now());
    let version = sales.catalog().publish(&system, document, today, "IDSOK, from the demo").await?;
    println!(
        "\nCatalogue: the IDSOK network (examples/networks/idsok.toml), version {} in force from {today}",
        version.id
    );

    let petra = AuditCtx::new(Actor::Customer { id: cast.petra });
    let ivan = AuditCtx::new(Actor::Customer { id: cast.ivan });
    let cashier = AuditCtx::new(Actor::Staff { id: cast.cashier, role: StaffRole::Cashier });
    let kiosk = AuditCtx::new(Actor::Partner { id: cast.partner });
    let keys = KeySource { hsm: hsm.as_ref(), system_id: config.hsm.system_id.as_bytes() };
    let dir = config.data_dir.join(CARDS_DIR);
    std::fs::create_dir_all(&dir)?;

    // Cards: personalised at the factory, into stock, issued to the counter.
    let mut cards = Vec::new();
    for (n, name) in [(1_u8, "petra-card"), (2, "ivan-card"), (3, "anonymous-purse")] {
        let uid = [0x04, 0x53, 0x54, 0x00, 0x00, 0x00, n];
        let mut sim = SimCard::blank(uid);
        sim.save_to(&dir.join(format!("{name}.json")))?;
        let mut card = Desfire::new(sim);
        let environment = Environment {
            card_number: 9_643_000_000_000 + u64::from(n),
            profile: u8::from(n != 3),
            discount_category: 0,
            expires: Timestamp::parse_rfc3339("2031-12-31T00:00:00Z")?,
            issuer: 1,
        };
        ops::personalise(&mut card, &keys, &keys, &environment)?;
        let number = format!("96430000{n:05}");
        let medium = sales.register_stock(&system, uid, &number).await?;
        sales.change_status(&system, Scope::Staff, medium.id, MediumEvent::Issue, Some("to the main station")).await?;
        cards.push((name, number, card));
    }
    let [petra_number, ivan_number, anonymous_number] =
        [0, 1, 2].map(|n| cards.get(n).map(|(_, number, _)| number.clone()).unwrap_or_default());
    // Petra registers hers in the e-shop and activates it; Ivan's is registered at the
    // counter; the kiosk sells the third as an anonymous card.
    let petra_card =
        sales.register_fare_card(&petra, Scope::Customer(cast.petra), None, &petra_number, Some("My card")).await?;
    sales.activate(&petra, Scope::Customer(cast.petra), petra_card.id).await?;
    let ivan_card =
        sales.register_fare_card(&cashier, Scope::Staff, Some(cast.ivan), &ivan_number, Some("School")).await?;
    sales.activate(&cashier, Scope::Staff, ivan_card.id).await?;
    let anonymous =
        sales.register_fare_card(&kiosk, Scope::Partner(cast.partner), None, &anonymous_number, None).await?;
    let bank = sales
        .register_bank_card(
            &petra,
            cast.petra,
            &SecretString::from("4111 1111 1111 1111".to_owned()),
            "12/29",
            Some("Visa"),
        )
        .await?;
    sales.activate(&petra, Scope::Customer(cast.petra), bank.id).await?;

    let mut sold = Vec::new();
    // Petra, in the e-shop: a month coupon and a top-up, paid by card on the bank's page.
    let month = item(petra_card.id, "monthly", "adult", ZoneChoice::Combi("OLOMOUC".into()), None);
    sales.add_to_cart(&petra, Buyer::Customer(cast.petra), &month).await?;
    sales
        .add_to_cart(
            &petra,
            Buyer::Customer(cast.petra),
            &item(petra_card.id, "purse", "adult", ZoneChoice::All, Some(20_000)),
        )
        .await?;
    let order = sales.checkout(&petra, Buyer::Customer(cast.petra), "demo-petra-1").await?;
    pay_by_card(sales, acquirer, &petra, Buyer::Customer(cast.petra), order.id).await?;
    sold.push(Sold {
        what: "Petra: month coupon + 200.00 top-up",
        order: order.id,
        total: order.total,
        how: "card (test acquirer)",
    });
    // And a day ticket on her bank card: in force at once, account-based.
    let day = item(bank.id, "day", "adult", ZoneChoice::Zones(vec![1]), None);
    let order = sales.create_order(&petra, Buyer::Customer(cast.petra), &[day], "demo-petra-2").await?;
    pay_by_card(sales, acquirer, &petra, Buyer::Customer(cast.petra), order.id).await?;
    sold.push(Sold {
        what: "Petra: day ticket on her Visa token",
        order: order.id,
        total: order.total,
        how: "card (test acquirer)",
    });

    // Ivan: a photo and a student discount request; the cashier approves it.
    let photo = sales.upload_photo(&ivan, cast.ivan, &portrait()?).await?;
    let request = sales.request_discount(&ivan, cast.ivan, "student", photo.id, Some("ISIC card")).await?;
    let until = today.checked_add_months(chrono::Months::new(9)).unwrap_or(today);
    let approval = Approval {
        method: ApprovalMethod::DocumentAtCounter,
        document: Some("ISIC S 420 000 123".into()),
        valid_until: until,
    };
    sales.approve_discount(&cashier, cast.cashier, request.id, &approval).await?;
    println!("Discount: Ivan's student request, with his photo, approved by the cashier until {until}");
    // His student month coupon, paid by bank transfer: the statement arrives, is imported.
    let student = item(ivan_card.id, "monthly", "student", ZoneChoice::Combi("OLOMOUC".into()), None);
    let order = sales.create_order(&ivan, Buyer::Customer(cast.ivan), &[student], "demo-ivan-1").await?;
    let transfer =
        sales.start_payment(&ivan, Buyer::Customer(cast.ivan), order.id, &PaymentStart::BankTransfer).await?;
    let statement = statement(transfer.variable_symbol.as_deref().unwrap_or_default(), order.total);
    let bank_dir = config.data_dir.join("bank");
    std::fs::create_dir_all(&bank_dir)?;
    let statement_path = bank_dir.join(format!("camt053-{today}.xml"));
    std::fs::write(&statement_path, &statement)?;
    let report = sales.import_statement(&system, &statement).await?;
    anyhow::ensure!(report.matched.len() == 1, "the demo statement should pay Ivan's order: {report:?}");
    sold.push(Sold {
        what: "Ivan: student month coupon",
        order: order.id,
        total: order.total,
        how: "bank transfer (camt.053 imported)",
    });
    // Ten trips at the counter, in cash, in the cashier's shift.
    sales
        .open_shift(&cashier, cast.cashier, "Main station, counter 1", Money::new(50_000, order.total.currency))
        .await?;
    let trips = item(ivan_card.id, "trips10", "adult", ZoneChoice::Zones(vec![1]), None);
    let order = sales
        .sell(
            &cashier,
            Buyer::Cashier(cast.cashier),
            SaleRequest { items: vec![trips], payment: PaymentStart::Cash },
            "demo-counter-1",
        )
        .await?;
    sold.push(Sold { what: "Ivan: ten trips", order: order.id, total: order.total, how: "cash at the counter" });
    // The kiosk tops up the anonymous card and collects the money itself.
    let top_up = item(anonymous.id, "purse", "adult", ZoneChoice::All, Some(30_000));
    let order = sales
        .sell(
            &kiosk,
            Buyer::Partner(cast.partner),
            SaleRequest { items: vec![top_up], payment: PaymentStart::Partner },
            "demo-kiosk-1",
        )
        .await?;
    sold.push(Sold { what: "Kiosk: 300.00 on an anonymous card", order: order.id, total: order.total, how: "partner" });

    println!("\nSales:");
    for sale in &sold {
        println!("  {:<38} {:>12}  {:<32} {}", sale.what, sale.total.to_string(), sale.how, sale.order);
    }

    // Each card is held to a reader: what was paid is written to it.
    println!("\nDeliveries (each card at its next tap on an online reader):");
    let system_id: Arc<[u8]> = Arc::from(config.hsm.system_id.as_bytes());
    let now = clock.now();
    for (name, _, card) in cards {
        let (report, mut card) = sales.deliver_local(&system, card, system_id.clone()).await?;
        println!("  {name:<16} {} ({} written)", report.message, report.delivered.len());
        // Then it is used: the anonymous card pays a single fare, Ivan rides once on his trips.
        let terminal = |device| Terminal { device, location: 1, at: now };
        if name == "anonymous-purse" {
            ops::debit_purse(&mut card, &keys, 2_400, terminal(7001))?;
            sales.record_tap(anonymous.id, now, "Hlavní nádraží").await?;
        }
        if name == "ivan-card" {
            let state = ops::read(&mut card, &keys)?;
            let slot = state.contracts.iter().position(|c| c.is_some_and(|c| c.product == 30)).unwrap_or(0);
            ops::consume_trip(&mut card, &keys, u8::try_from(slot).unwrap_or(0), terminal(7002))?;
            sales.record_tap(ivan_card.id, now, "Náměstí Hrdinů").await?;
        }
        println!("\n{name} ({}):", dir.join(format!("{name}.json")).display());
        super::card::show(&mut card, hsm.as_ref(), config, false)?;
    }
    let _ = identity;
    Ok(ivan_card.id)
}

fn item(medium: MediumId, product: &str, discount: &str, zones: ZoneChoice, amount_minor: Option<i64>) -> ItemRequest {
    ItemRequest {
        medium_id: medium,
        product: product.into(),
        discount: discount.into(),
        zones,
        start_date: None,
        amount_minor,
    }
}

/// Pays `order` by card as the bank's hosted page would: the test acquirer approves the
/// card, signs its webhook, and the webhook is verified and applied.
async fn pay_by_card(
    sales: &Sales,
    acquirer: &TestAcquirer,
    ctx: &AuditCtx,
    buyer: Buyer,
    order: OrderId,
) -> anyhow::Result<()> {
    let payment = sales.start_payment(ctx, buyer, order, &PaymentStart::Card).await?;
    let event = event_for(payment.id, &Decision::Approve).context("the test acquirer answers an approval")?;
    let (body, signature) = acquirer.signed_callback(&event, smartticket_core::SystemClock.now())?;
    sales.gateway_callback(Some(&signature), &body).await?;
    Ok(())
}

/// A bank statement (camt.053) crediting `amount` with variable symbol `vs`.
fn statement(vs: &str, amount: Money) -> String {
    let value = amount.major_decimal();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>DEMO-STATEMENT</MsgId><CreDtTm>2026-11-21T18:00:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>DEMO-1</Id>
      <Ntry>
        <Amt Ccy="{currency}">{value}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
        <AcctSvcrRef>DEMO-{vs}</AcctSvcrRef>
        <NtryDtls><TxDtls><RmtInf><Strd><CdtrRefInf><Ref>{vs}</Ref></CdtrRefInf></Strd></RmtInf></TxDtls></NtryDtls>
      </Ntry>
    </Stmt>
  </BkToCstmrStmt>
</Document>
"#,
        currency = amount.currency.code()
    )
}

/// A portrait-shaped picture for Ivan's discount request (the real thing is a photo).
fn portrait() -> anyhow::Result<Vec<u8>> {
    let image = image::RgbImage::from_fn(300, 400, |x, y| {
        let face = (x as i64 - 150).pow(2) + (y as i64 - 170).pow(2) < 90_i64.pow(2);
        if face { image::Rgb([224, 172, 140]) } else { image::Rgb([40, 90, u8::try_from(y % 200).unwrap_or(0)]) }
    });
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png)?;
    Ok(png.into_inner())
}
