//! The remote relay: a card in a reader somewhere else (a phone relaying NFC, a counter
//! PC with a PC/SC reader, a ticket machine), reached through channels that an async pump
//! (a WebSocket handler) connects to the network. The host side is an ordinary blocking
//! [`Transport`], so the fare operations run unchanged on the blocking thread pool while
//! the pump moves bytes.
//!
//! Every wait is bounded: an answer that does not come within the timeout counts as the
//! card leaving the field, which is what the host must assume when a phone goes quiet.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::{Transport, TransportError};

/// How long the host waits for one answer unless told otherwise: a phone relaying NFC
/// over a mobile network needs a few hundred milliseconds; five seconds covers a bad
/// connection without leaving a dead session open long.
pub const ANSWER_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);

/// The host's side of a relay.
pub struct RelayTransport {
    commands: UnboundedSender<Vec<u8>>,
    answers: Receiver<Result<Vec<u8>, TransportError>>,
    timeout: Duration,
    label: String,
}

/// The pump's side of a relay: commands to forward to the reader, and where to put its
/// answers.
pub struct RelayEnd {
    /// Command APDUs from the host, in order.
    pub commands: UnboundedReceiver<Vec<u8>>,
    /// Answers (or the reason there is none) back to the host.
    pub answers: Sender<Result<Vec<u8>, TransportError>>,
}

/// A connected pair.
pub fn relay(label: impl Into<String>, timeout: Duration) -> (RelayTransport, RelayEnd) {
    let (command_tx, command_rx) = tokio::sync::mpsc::unbounded_channel();
    let (answer_tx, answer_rx) = std::sync::mpsc::channel();
    (
        RelayTransport { commands: command_tx, answers: answer_rx, timeout, label: label.into() },
        RelayEnd { commands: command_rx, answers: answer_tx },
    )
}

impl Transport for RelayTransport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.commands.send(command.to_vec()).map_err(|_| TransportError::CardRemoved)?;
        match self.answers.recv_timeout(self.timeout) {
            Ok(answer) => answer,
            Err(RecvTimeoutError::Timeout) => {
                Err(TransportError::Reader(format!("{}: no answer within {} ms", self.label, self.timeout.as_millis())))
            }
            Err(RecvTimeoutError::Disconnected) => Err(TransportError::CardRemoved),
        }
    }

    fn describe(&self) -> String {
        self.label.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commands_and_answers_cross_and_silence_times_out() {
        let (mut host, mut end) = relay("test relay", Duration::from_millis(200));
        let pump = tokio::spawn(async move {
            let command = end.commands.recv().await.unwrap();
            end.answers.send(Ok([command, vec![0x90, 0x00]].concat())).unwrap();
            // Then go quiet: the next command gets no answer.
            let _ = end.commands.recv().await;
            end
        });
        let answer = tokio::task::spawn_blocking(move || {
            let first = host.transmit(&[0x00, 0xA4]).unwrap();
            let second = host.transmit(&[0x00, 0xB0]);
            (first, second)
        })
        .await
        .unwrap();
        assert_eq!(answer.0, vec![0x00, 0xA4, 0x90, 0x00]);
        assert!(matches!(answer.1, Err(TransportError::Reader(message)) if message.contains("no answer")));
        drop(pump.await.unwrap());
    }
}
