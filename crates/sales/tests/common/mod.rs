//! A small world for selling tests: the IDSOK network published, a passenger with a fare
//! card (a simulated card personalised with the world's keys), a cashier, a partner, and
//! the test acquirer as the card gateway. The clock is manual: 21 November 2026, 09:30 in
//! Olomouc.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use chrono::NaiveDate;
use secrecy::SecretString;
use smartticket_card::desfire::host::Desfire;
use smartticket_card::fare::KeySource;
use smartticket_card::fare::ops;
use smartticket_card::fare::records::Environment;
use smartticket_card::sim::SimCard;
use smartticket_catalog::{CatalogDocument, CatalogStore};
use smartticket_core::id::{CustomerId, MediumId, PartnerId, StaffId};
use smartticket_core::{ManualClock, Timestamp};
use smartticket_crypto::hsm::soft::SoftHsm;
use smartticket_crypto::keys::KeyRole;
use smartticket_identity::audit::Actor;
use smartticket_identity::customers::Registration;
use smartticket_identity::partners::NewPartner;
use smartticket_identity::password::HashingCost;
use smartticket_identity::staff::NewStaff;
use smartticket_identity::{AuditCtx, Identity, IdentityPolicy, StaffRole};
use smartticket_sales::media::Scope;
use smartticket_sales::orders::{Buyer, ItemRequest};
use smartticket_sales::payments::GatewayEvent;
use smartticket_sales::payments::test_acquirer::TestAcquirer;
use smartticket_sales::{Sales, SalesParts, SalesPolicy};
use smartticket_store::Db;

pub const SYSTEM_ID: &[u8] = b"SmartTicket-test";
pub const IDSOK: &str = include_str!("../../../../examples/networks/idsok.toml");

pub fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

pub fn date(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

pub struct World {
    pub db: Db,
    pub sales: Sales,
    pub identity: Identity,
    pub clock: Arc<ManualClock>,
    pub hsm: Arc<SoftHsm>,
    pub acquirer: Arc<TestAcquirer>,
    pub customer: CustomerId,
    pub cashier: StaffId,
    pub partner: PartnerId,
    pub card: MediumId,
    pub sim: Option<SimCard>,
}

pub fn system() -> AuditCtx {
    AuditCtx::system("test")
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
            catalog,
            gateway: acquirer.clone(),
            public_url: "http://127.0.0.1:8080".into(),
            policy: SalesPolicy { delivery_step_timeout_ms: 2_000, ..SalesPolicy::default() },
        });
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
        let partner = identity
            .create_partner(&system(), NewPartner { name: "Trafika".into(), contact_email: "shop@example.org".into() })
            .await
            .unwrap()
            .id;
        let mut world = World {
            db,
            sales,
            identity,
            clock,
            hsm,
            acquirer,
            customer,
            cashier,
            partner,
            card: MediumId::new(),
            sim: None,
        };
        let (card, sim) = world.new_card([4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66], "1001", Some(customer)).await;
        world.card = card;
        world.sim = Some(sim);
        world
    }

    pub fn cashier_ctx(&self) -> AuditCtx {
        AuditCtx::new(Actor::Staff { id: self.cashier, role: StaffRole::Cashier })
    }

    pub fn customer_ctx(&self) -> AuditCtx {
        AuditCtx::new(Actor::Customer { id: self.customer })
    }

    /// A personalised simulated card registered for `customer` (and activated, if it is
    /// their first), or anonymous when `None`.
    pub async fn new_card(&self, uid: [u8; 7], number: &str, customer: Option<CustomerId>) -> (MediumId, SimCard) {
        let keys = KeySource { hsm: self.hsm.as_ref(), system_id: SYSTEM_ID };
        let mut card = Desfire::new(SimCard::blank(uid));
        let environment = Environment {
            card_number: 9_643_000_000_000 + number.parse::<u64>().unwrap(),
            profile: 1,
            discount_category: 0,
            expires: at("2031-12-31T00:00:00Z"),
            issuer: 1,
        };
        ops::personalise(&mut card, &keys, &keys, &environment).unwrap();
        let staff = self.cashier_ctx();
        let medium = self.sales.register_stock(&staff, uid, number).await.unwrap();
        self.sales
            .change_status(&staff, Scope::Staff, medium.id, smartticket_sales::MediumEvent::Issue, None)
            .await
            .unwrap();
        let medium =
            self.sales.register_fare_card(&staff, Scope::Staff, customer, number, Some("my card")).await.unwrap();
        if let Some(customer) = customer {
            let first = self.sales.media_of(customer).await.unwrap().len() == 1;
            if first {
                self.sales.activate(&staff, Scope::Staff, medium.id).await.unwrap();
            }
        }
        (medium.id, card.into_transport())
    }

    pub fn month_pass(&self, medium: MediumId) -> ItemRequest {
        ItemRequest {
            medium_id: medium,
            product: "monthly".into(),
            discount: "adult".into(),
            zones: smartticket_catalog::ZoneChoice::Combi("OLOMOUC".into()),
            start_date: Some(date("2026-12-01")),
            amount_minor: None,
        }
    }

    pub fn top_up(&self, medium: MediumId, amount_minor: i64) -> ItemRequest {
        ItemRequest {
            medium_id: medium,
            product: "purse".into(),
            discount: "adult".into(),
            zones: smartticket_catalog::ZoneChoice::All,
            start_date: None,
            amount_minor: Some(amount_minor),
        }
    }

    pub fn passenger(&self) -> Buyer {
        Buyer::Customer(self.customer)
    }

    /// What the test acquirer sends for `event`, signed now.
    pub fn signed(&self, event: &GatewayEvent) -> (Vec<u8>, String) {
        self.acquirer.signed_callback(event, smartticket_core::Clock::now(self.clock.as_ref())).unwrap()
    }
}
