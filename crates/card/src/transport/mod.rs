//! How APDUs reach a card: one [`Transport`] trait with an in-process implementation (the
//! simulator itself implements it), PC/SC through `pcsc` ([`pcsc`]), and a bridge that makes
//! the simulator appear to a real `pcscd` as a virtual card over the vsmartcard vpcd
//! protocol ([`vpcd`]). The host driver is written against the trait alone.

pub mod pcsc;
pub mod relay;
pub mod vpcd;

pub use self::pcsc::PcscTransport;
pub use self::vpcd::VpcdBridge;
pub use crate::error::TransportError;

/// Carries command APDUs to a card and its answers back.
pub trait Transport {
    /// Sends one command APDU; returns the response APDU (data followed by SW1 SW2).
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// Which reader or card this is, for logs.
    fn describe(&self) -> String;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}
