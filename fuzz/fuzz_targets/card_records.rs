//! The fare application's records and DESFire file settings as a card returns them:
//! arbitrary bytes never panic, and whatever decodes re-encodes to an equal record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smartticket_card::desfire::files::FileSettings;
use smartticket_card::fare::records::{Contract, Environment, LogRecord};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(settings) = FileSettings::parse(bytes) {
        assert_eq!(FileSettings::parse(&settings.encode()).expect("re-encoded settings parse"), settings);
    }
    if let Ok(environment) = Environment::decode(bytes) {
        assert_eq!(Environment::decode(&environment.encode()).expect("re-encoded"), environment);
    }
    if let Ok(Some(contract)) = Contract::decode(bytes) {
        assert_eq!(Contract::decode(&contract.encode()).expect("re-encoded"), Some(contract));
    }
    if let Ok(record) = LogRecord::decode(bytes) {
        assert_eq!(LogRecord::decode(&record.encode()).expect("re-encoded"), record);
    }
});
