//! A small world for fleet tests: the IDSOK network published, Petra with an active bank
//! card (through the token gate) and a fare card, a cashier, the test acquirer, one
//! software HSM for selling and list signing. The clock is manual: 21 November 2026, 09:30
//! in Olomouc.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

pub mod xsd;

use std::sync::Arc;

use secrecy::SecretString;
use smartticket_acceptance::lists::{ListKind, MediumKey, TrustedKeys};
use smartticket_catalog::{CatalogDocument, CatalogStore, NaiveDate, ZoneChoice};
use smartticket_core::id::{CustomerId, MediumId, OrderId, StaffId};
use smartticket_core::{Clock, ManualClock, Timestamp};
use smartticket_crypto::hsm::Hsm;
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_crypto::keys::KeyRole;
use smartticket_crypto::token::{Expiry, Pan, PanToken, token_input};
use smartticket_fleet::{Fleet, FleetParts, ListDownload, ListVersionInfo};
use smartticket_identity::audit::Actor;
use smartticket_identity::customers::Registration;
use smartticket_identity::password::HashingCost;
use smartticket_identity::staff::NewStaff;
use smartticket_identity::{AuditCtx, Identity, IdentityPolicy, StaffRole};
use smartticket_sales::MediumEvent;
use smartticket_sales::media::Scope;
use smartticket_sales::orders::{Buyer, ItemRequest, Order};
use smartticket_sales::payments::PaymentStart;
use smartticket_sales::payments::test_acquirer::{Decision, TestAcquirer, event_for};
use smartticket_sales::{Sales, SalesParts, SalesPolicy};
use smartticket_store::Db;

pub const IDSOK: &str = include_str!("../../../../examples/networks/idsok.toml");
/// Petra's bank card, as the token gate and a validator's reader see it.
pub const PETRA_PAN: &str = "4111 1111 1111 1111";
pub const PETRA_EXPIRY: &str = "12/29";
/// Her fare card's UID and printed number.
pub const PETRA_CARD_UID: [u8; 7] = [4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66];

pub fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

pub fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

pub fn system() -> AuditCtx {
    AuditCtx::system("test")
}

pub struct World {
    pub db: Db,
    pub sales: Sales,
    pub fleet: Fleet,
    pub identity: Identity,
    pub clock: Arc<ManualClock>,
    pub hsm: Arc<SoftHsm>,
    pub acquirer: Arc<TestAcquirer>,
    pub customer: CustomerId,
    pub cashier: StaffId,
    pub bank_card: MediumId,
    pub fare_card: MediumId,
}

impl World {
    pub async fn new(db: Db) -> World {
        let clock = Arc::new(ManualClock::new(at("2026-11-21T08:30:00Z")));
        let hsm = Arc::new(SoftHsm::generate(&KeyRole::ALL).unwrap());
        let policy = IdentityPolicy {
            password_hashing: HashingCost { memory_kib: 64, passes: 1, lanes: 1 },
            ..IdentityPolicy::default()
        };
        let identity = Identity::new(db.clone(), clock.clone(), policy).unwrap();
        let catalog = CatalogStore::new(db.clone(), clock.clone());
        catalog
            .publish(&system(), CatalogDocument::from_toml(IDSOK).unwrap(), date("2026-11-01"), "IDSOK for tests")
            .await
            .unwrap();
        let acquirer =
            Arc::new(TestAcquirer::new(SecretString::from("test secret".to_owned()), "http://127.0.0.1:8080"));
        let sales = Sales::new(SalesParts {
            db: db.clone(),
            clock: clock.clone(),
            hsm: hsm.clone(),
            catalog: catalog.clone(),
            gateway: acquirer.clone(),
            public_url: "http://127.0.0.1:8080".into(),
            policy: SalesPolicy::default(),
        });
        let fleet = Fleet::new(FleetParts { db: db.clone(), clock: clock.clone(), hsm: hsm.clone(), catalog });
        let customer = identity
            .register_customer(
                &system(),
                Registration {
                    email: "petra@example.org".into(),
                    display_name: "Petra Nováková".into(),
                    password: SecretString::from("correct horse battery staple 42".to_owned()),
                },
            )
            .await
            .unwrap()
            .id;
        let cashier = identity
            .create_staff(
                &system(),
                NewStaff {
                    email: "cashier@example.org".into(),
                    display_name: "Karel Pokladní".into(),
                    role: StaffRole::Cashier,
                    password: SecretString::from("another long passphrase 77".to_owned()),
                },
            )
            .await
            .unwrap()
            .id;
        let mut world = World {
            db,
            sales,
            fleet,
            identity,
            clock,
            hsm,
            acquirer,
            customer,
            cashier,
            bank_card: MediumId::new(),
            fare_card: MediumId::new(),
        };
        world.bank_card = world.register_bank_card(PETRA_PAN, PETRA_EXPIRY).await;
        world.fare_card = world.register_fare_card(PETRA_CARD_UID, "1001").await;
        world
    }

    pub fn customer_ctx(&self) -> AuditCtx {
        AuditCtx::new(Actor::Customer { id: self.customer })
    }

    pub fn cashier_ctx(&self) -> AuditCtx {
        AuditCtx::new(Actor::Staff { id: self.cashier, role: StaffRole::Cashier })
    }

    /// A bank card of Petra's through the token gate, activated.
    pub async fn register_bank_card(&self, pan: &str, expiry: &str) -> MediumId {
        let ctx = self.customer_ctx();
        let pan = SecretString::from(pan.to_owned());
        let card = self.sales.register_bank_card(&ctx, self.customer, &pan, expiry, Some("Visa")).await.unwrap();
        self.sales.activate(&ctx, Scope::Customer(self.customer), card.id).await.unwrap();
        card.id
    }

    /// A fare card of Petra's from stock, registered and active (not personalised: the
    /// lists key it by UID, which is all a validator reads first).
    pub async fn register_fare_card(&self, uid: [u8; 7], number: &str) -> MediumId {
        let staff = self.cashier_ctx();
        let medium = self.sales.register_stock(&staff, uid, number).await.unwrap();
        self.sales.change_status(&staff, Scope::Staff, medium.id, MediumEvent::Issue, None).await.unwrap();
        let medium =
            self.sales.register_fare_card(&staff, Scope::Staff, Some(self.customer), number, None).await.unwrap();
        self.sales.activate(&staff, Scope::Staff, medium.id).await.unwrap();
        medium.id
    }

    /// What a validator's secure module computes from the card it reads.
    pub fn bank_key(&self, pan: &str, expiry: &str) -> MediumKey {
        let pan = Pan::parse(pan).unwrap();
        let expiry = Expiry::parse_mm_yy(expiry).unwrap();
        let key = self.hsm.active(KeyRole::Tokenisation).unwrap();
        let mac = self.hsm.hmac(key, &token_input(&pan, expiry)).unwrap();
        MediumKey::bank_card(&PanToken::from_hmac(&mac))
    }

    /// The list-signing keys a validator is provisioned with.
    pub fn trusted(&self) -> TrustedKeys {
        TrustedKeys::from_hsm(self.hsm.as_ref()).unwrap()
    }

    pub fn item(&self, medium: MediumId, product: &str, discount: &str, zones: ZoneChoice, start: &str) -> ItemRequest {
        ItemRequest {
            medium_id: medium,
            product: product.into(),
            discount: discount.into(),
            zones,
            start_date: Some(date(start)),
            amount_minor: None,
        }
    }

    /// Petra buys `items` in the e-shop and pays by card.
    pub async fn buy(&self, items: &[ItemRequest], key: &str) -> Order {
        let ctx = self.customer_ctx();
        let buyer = Buyer::Customer(self.customer);
        let order = self.sales.create_order(&ctx, buyer, items, key).await.unwrap();
        self.pay(order.id).await;
        self.sales.order(Scope::Staff, order.id).await.unwrap()
    }

    async fn pay(&self, order: OrderId) {
        let buyer = Buyer::Customer(self.customer);
        let payment = self.sales.start_payment(&self.customer_ctx(), buyer, order, &PaymentStart::Card).await.unwrap();
        let event = event_for(payment.id, &Decision::Approve).unwrap();
        let (body, signature) = self.acquirer.signed_callback(&event, self.clock.now()).unwrap();
        self.sales.gateway_callback(Some(&signature), &body).await.unwrap();
    }

    /// Publishes `kind` now, with the world's HSM.
    pub async fn publish(&self, kind: ListKind) -> ListVersionInfo {
        self.fleet.publish(kind, self.hsm.as_ref(), self.clock.now()).await.unwrap()
    }

    /// The full file of the latest version of `kind`.
    pub async fn full_file(&self, kind: ListKind) -> Vec<u8> {
        match self.fleet.list_file(kind, None).await.unwrap() {
            ListDownload::File { base_version: 0, bytes, .. } => bytes.to_vec(),
            other => panic!("expected a full file, got {other:?}"),
        }
    }
}

/// A small PNG portrait for discount requests.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}
