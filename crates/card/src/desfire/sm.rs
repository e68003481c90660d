//! EV2 secure messaging, one implementation for both ends (host driver and card
//! simulator): the AuthenticateEV2First/NonFirst exchange, session keys, the command
//! counter, IVs, truncated MACs and encryption of the communication modes MAC and Full.
//! Follows NXP AN12196 §4–§5 (EV2 secure messaging examples) and AN12343 §7.1; every
//! formula here is checked against those notes' worked examples in the tests below.
//!
//! Owns keys and counters, not file layout or command semantics.

use aes::Aes128;
use aes::cipher::block_padding::{Iso7816, NoPadding};
use aes::cipher::{BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit};
use smartticket_crypto::cmac::{CmacKey, SecretKey16, TRUNCATED_MAC_BYTES};
use zeroize::Zeroizing;

/// Bytes of RndA, RndB and an AES block.
pub const RANDOM_BYTES: usize = 16;
/// Bytes of the transaction identifier.
pub const TI_BYTES: usize = 4;
/// The last usable command counter. The counter is 16 bits and enters every IV and MAC;
/// reusing a value would repeat an IV under the same key, so a session ends before it
/// wraps and the host must authenticate again.
pub const CMD_CTR_MAX: u16 = u16::MAX - 1;

type CbcEncryptor = cbc::Encryptor<Aes128>;
type CbcDecryptor = cbc::Decryptor<Aes128>;

/// Why a secure-messaging step failed. The caller decides whose fault it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmError {
    /// A MAC did not verify: the peer does not hold the session keys, or the data was
    /// changed or replayed.
    #[error("MAC mismatch")]
    BadMac,
    /// The peer's RndA' (or RndB') is not the rotation of ours: wrong key.
    #[error("the authentication proof does not match")]
    BadProof,
    /// Ciphertext of a length that cannot be AES blocks, or padding that is not ISO 9797-1 M2.
    #[error("malformed ciphertext or padding")]
    BadCiphertext,
    /// The command counter is exhausted; authenticate again.
    #[error("command counter exhausted; authenticate again")]
    CounterExhausted,
}

/// Proof that a response MAC was checked. Only [`Channel::verify_response_mac`] makes one,
/// and every result the host returns from a protected exchange carries it, so no code path
/// can use response data without the check (the rustls "goto fail" defence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacVerified(());

/// `rotl(x, 1)`: the first byte moved to the end.
pub fn rotate_left(block: &[u8; RANDOM_BYTES]) -> [u8; RANDOM_BYTES] {
    let mut out = *block;
    out.rotate_left(1);
    out
}

fn aes_cbc_zero_iv_encrypt(key: &[u8; 16], data: &mut [u8]) -> Result<(), SmError> {
    let length = data.len();
    CbcEncryptor::new(&(*key).into(), &[0_u8; 16].into())
        .encrypt_padded::<NoPadding>(data, length)
        .map(|_| ())
        .map_err(|_| SmError::BadCiphertext)
}

fn aes_cbc_zero_iv_decrypt(key: &[u8; 16], data: &mut [u8]) -> Result<(), SmError> {
    CbcDecryptor::new(&(*key).into(), &[0_u8; 16].into())
        .decrypt_padded::<NoPadding>(data)
        .map(|_| ())
        .map_err(|_| SmError::BadCiphertext)
}

/// `SV = prefix || 00 01 00 80 || RndA[15..14] || (RndA[13..8] ⊕ RndB[15..10]) ||
/// RndB[9..0] || RndA[7..0]` (AN12196 §5.6, AN12343 §7.1.3.1), where byte 15 is the first.
fn session_vector(prefix: [u8; 2], rnd_a: &[u8; 16], rnd_b: &[u8; 16]) -> [u8; 32] {
    let mut sv = [0_u8; 32];
    sv[..2].copy_from_slice(&prefix);
    sv[2..6].copy_from_slice(&[0x00, 0x01, 0x00, 0x80]);
    sv[6..8].copy_from_slice(&rnd_a[0..2]);
    for ((out, a), b) in sv[8..14].iter_mut().zip(&rnd_a[2..8]).zip(&rnd_b[0..6]) {
        *out = a ^ b;
    }
    sv[14..24].copy_from_slice(&rnd_b[6..16]);
    sv[24..32].copy_from_slice(&rnd_a[8..16]);
    sv
}

/// The session keys of one authentication. Wiped on drop (the AES and CMAC key schedules
/// zeroize themselves).
#[derive(Clone)]
pub struct SessionKeys {
    enc: Aes128,
    enc_raw: Zeroizing<[u8; 16]>,
    mac: CmacKey,
}

impl SessionKeys {
    /// `SesAuthENCKey = CMAC(Kx, SV1)`, `SesAuthMACKey = CMAC(Kx, SV2)`.
    pub fn derive(kx: &[u8; 16], rnd_a: &[u8; 16], rnd_b: &[u8; 16]) -> SessionKeys {
        let master = CmacKey::new(kx);
        let enc_raw = Zeroizing::new(master.mac(&session_vector([0xA5, 0x5A], rnd_a, rnd_b)));
        let mac_raw = Zeroizing::new(master.mac(&session_vector([0x5A, 0xA5], rnd_a, rnd_b)));
        SessionKeys { enc: Aes128::new(&(*enc_raw).into()), enc_raw, mac: CmacKey::new(&mac_raw) }
    }

    /// The encryption key, for tests against published vectors.
    pub fn enc_key(&self) -> &[u8; 16] {
        &self.enc_raw
    }

    /// The MAC of `data` under SesAuthMACKey, for tests against published vectors.
    pub fn mac_full(&self, data: &[u8]) -> [u8; 16] {
        self.mac.mac(data)
    }
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(…)")
    }
}

/// The host's half of AuthenticateEV2First/NonFirst after part 1: it decrypted RndB and
/// chose RndA, and now waits for the card's answer to part 2.
pub struct ExpectAuthAnswer {
    kx: SecretKey16,
    rnd_a: Zeroizing<[u8; 16]>,
    rnd_b: Zeroizing<[u8; 16]>,
}

impl ExpectAuthAnswer {
    /// From the card's part-1 answer `E(Kx, RndB)`: decrypts RndB and builds the part-2
    /// command data `E(Kx, RndA || rotl(RndB))`.
    pub fn new(
        kx: SecretKey16,
        encrypted_rnd_b: &[u8],
        rnd_a: [u8; 16],
    ) -> Result<(ExpectAuthAnswer, [u8; 32]), SmError> {
        let mut rnd_b: Zeroizing<[u8; 16]> =
            Zeroizing::new(encrypted_rnd_b.try_into().map_err(|_| SmError::BadCiphertext)?);
        aes_cbc_zero_iv_decrypt(&kx, rnd_b.as_mut())?;
        let mut part2 = [0_u8; 32];
        part2[..16].copy_from_slice(&rnd_a);
        part2[16..].copy_from_slice(&rotate_left(&rnd_b));
        aes_cbc_zero_iv_encrypt(&kx, &mut part2)?;
        Ok((ExpectAuthAnswer { kx, rnd_a: Zeroizing::new(rnd_a), rnd_b }, part2))
    }

    /// AuthenticateEV2First's answer `E(Kx, TI || rotl(RndA) || PDcap2 || PCDcap2)`: checks
    /// RndA' and opens a channel with command counter 0.
    pub fn finish_first(self, answer: &[u8]) -> Result<Channel, SmError> {
        let mut plain: Zeroizing<[u8; 32]> = Zeroizing::new(answer.try_into().map_err(|_| SmError::BadCiphertext)?);
        aes_cbc_zero_iv_decrypt(&self.kx, plain.as_mut())?;
        // TI (4) || RndA' (16) || PDcap2 (6) || PCDcap2 (6): fixed offsets in a 32-byte array.
        let (ti, rest) = plain.split_first_chunk::<TI_BYTES>().ok_or(SmError::BadCiphertext)?;
        let (proof, _) = rest.split_first_chunk::<RANDOM_BYTES>().ok_or(SmError::BadCiphertext)?;
        self.check_rnd_a(proof)?;
        let ti = *ti;
        Ok(Channel { keys: SessionKeys::derive(&self.kx, &self.rnd_a, &self.rnd_b), ti, cmd_ctr: 0 })
    }

    /// AuthenticateEV2NonFirst's answer `E(Kx, rotl(RndA))`: checks RndA' and re-keys the
    /// existing channel, keeping TI and the command counter (AN12196 §5.14).
    pub fn finish_non_first(self, answer: &[u8], channel: &mut Channel) -> Result<(), SmError> {
        let mut plain: Zeroizing<[u8; 16]> = Zeroizing::new(answer.try_into().map_err(|_| SmError::BadCiphertext)?);
        aes_cbc_zero_iv_decrypt(&self.kx, plain.as_mut())?;
        self.check_rnd_a(plain.as_ref())?;
        channel.keys = SessionKeys::derive(&self.kx, &self.rnd_a, &self.rnd_b);
        Ok(())
    }

    fn check_rnd_a(&self, proof: &[u8]) -> Result<(), SmError> {
        use subtle::ConstantTimeEq;
        if bool::from(rotate_left(&self.rnd_a).ct_eq(proof)) { Ok(()) } else { Err(SmError::BadProof) }
    }
}

/// The card's half of an authentication after part 1: it sent `E(Kx, RndB)`.
pub struct CardAuth {
    kx: SecretKey16,
    rnd_b: Zeroizing<[u8; 16]>,
}

impl CardAuth {
    /// Part 1 on the card: `E(Kx, RndB)`.
    pub fn start(kx: SecretKey16, rnd_b: [u8; 16]) -> Result<(CardAuth, [u8; 16]), SmError> {
        let mut encrypted = rnd_b;
        aes_cbc_zero_iv_encrypt(&kx, &mut encrypted)?;
        Ok((CardAuth { kx, rnd_b: Zeroizing::new(rnd_b) }, encrypted))
    }

    fn open(&self, part2: &[u8]) -> Result<Zeroizing<[u8; 16]>, SmError> {
        use subtle::ConstantTimeEq;
        let mut plain: Zeroizing<[u8; 32]> = Zeroizing::new(part2.try_into().map_err(|_| SmError::BadCiphertext)?);
        aes_cbc_zero_iv_decrypt(&self.kx, plain.as_mut())?;
        let (rnd_a, rnd_b_rotated) = plain.split_first_chunk::<RANDOM_BYTES>().ok_or(SmError::BadCiphertext)?;
        if !bool::from(rotate_left(&self.rnd_b).ct_eq(rnd_b_rotated)) {
            return Err(SmError::BadProof);
        }
        Ok(Zeroizing::new(*rnd_a))
    }

    /// Part 2 of AuthenticateEV2First on the card: checks RndB', answers
    /// `E(Kx, TI || RndA' || PDcap2 || PCDcap2)` (capabilities all zero) and opens a channel.
    pub fn finish_first(self, part2: &[u8], ti: [u8; TI_BYTES]) -> Result<(Channel, [u8; 32]), SmError> {
        let rnd_a = self.open(part2)?;
        let mut answer = [0_u8; 32];
        answer[..4].copy_from_slice(&ti);
        answer[4..20].copy_from_slice(&rotate_left(&rnd_a));
        aes_cbc_zero_iv_encrypt(&self.kx, &mut answer)?;
        let channel = Channel { keys: SessionKeys::derive(&self.kx, &rnd_a, &self.rnd_b), ti, cmd_ctr: 0 };
        Ok((channel, answer))
    }

    /// Part 2 of AuthenticateEV2NonFirst on the card: re-keys `channel`, answers `E(Kx, RndA')`.
    pub fn finish_non_first(self, part2: &[u8], channel: &mut Channel) -> Result<[u8; 16], SmError> {
        let rnd_a = self.open(part2)?;
        let mut answer = rotate_left(&rnd_a);
        aes_cbc_zero_iv_encrypt(&self.kx, &mut answer)?;
        channel.keys = SessionKeys::derive(&self.kx, &rnd_a, &self.rnd_b);
        Ok(answer)
    }
}

/// An authenticated channel: session keys, transaction identifier and command counter.
/// Host and card each hold one and advance it once per command/response pair.
#[derive(Debug, Clone)]
pub struct Channel {
    keys: SessionKeys,
    ti: [u8; TI_BYTES],
    cmd_ctr: u16,
}

impl Channel {
    /// A channel from known session keys (tests against published vectors).
    pub fn from_parts(keys: SessionKeys, ti: [u8; TI_BYTES], cmd_ctr: u16) -> Channel {
        Channel { keys, ti, cmd_ctr }
    }

    /// The transaction identifier.
    pub fn ti(&self) -> [u8; TI_BYTES] {
        self.ti
    }

    /// The command counter of the next command.
    pub fn cmd_ctr(&self) -> u16 {
        self.cmd_ctr
    }

    /// The session keys.
    pub fn keys(&self) -> &SessionKeys {
        &self.keys
    }

    fn next_ctr(&self) -> Result<u16, SmError> {
        if self.cmd_ctr >= CMD_CTR_MAX { Err(SmError::CounterExhausted) } else { Ok(self.cmd_ctr + 1) }
    }

    /// Moves to the next command (after a complete command/response pair).
    pub fn advance(&mut self) -> Result<(), SmError> {
        self.cmd_ctr = self.next_ctr()?;
        Ok(())
    }

    fn iv(&self, prefix: [u8; 2], ctr: u16) -> [u8; 16] {
        let mut block = [0_u8; 16];
        block[..2].copy_from_slice(&prefix);
        block[2..6].copy_from_slice(&self.ti);
        block[6..8].copy_from_slice(&ctr.to_le_bytes());
        let mut block = block.into();
        self.keys.enc.encrypt_block(&mut block);
        block.into()
    }

    /// `IVc = E(SesAuthENCKey, A5 5A || TI || CmdCtr || 0^8)`.
    pub fn command_iv(&self) -> [u8; 16] {
        self.iv([0xA5, 0x5A], self.cmd_ctr)
    }

    /// `IVr = E(SesAuthENCKey, 5A A5 || TI || CmdCtr+1 || 0^8)`.
    pub fn response_iv(&self) -> Result<[u8; 16], SmError> {
        Ok(self.iv([0x5A, 0xA5], self.next_ctr()?))
    }

    /// `MACt(SesAuthMACKey, Cmd || CmdCtr || TI || CmdHeader || CmdData)`.
    pub fn command_mac(&self, command: u8, header: &[u8], data: &[u8]) -> [u8; TRUNCATED_MAC_BYTES] {
        self.keys.mac.mac_truncated(&[&[command], &self.cmd_ctr.to_le_bytes(), &self.ti, header, data])
    }

    /// Checks a command MAC on the card side.
    pub fn verify_command_mac(&self, command: u8, header: &[u8], data: &[u8], mac: &[u8]) -> Result<(), SmError> {
        self.keys
            .mac
            .verify_truncated(&[&[command], &self.cmd_ctr.to_le_bytes(), &self.ti, header, data], mac)
            .map_err(|_| SmError::BadMac)
    }

    /// `MACt(SesAuthMACKey, RC || CmdCtr+1 || TI || RespData)`.
    pub fn response_mac(&self, status: u8, data: &[u8]) -> Result<[u8; TRUNCATED_MAC_BYTES], SmError> {
        let ctr = self.next_ctr()?;
        Ok(self.keys.mac.mac_truncated(&[&[status], &ctr.to_le_bytes(), &self.ti, data]))
    }

    /// Checks a response MAC on the host side, returning the proof token.
    pub fn verify_response_mac(&self, status: u8, data: &[u8], mac: &[u8]) -> Result<MacVerified, SmError> {
        let ctr = self.next_ctr()?;
        self.keys
            .mac
            .verify_truncated(&[&[status], &ctr.to_le_bytes(), &self.ti, data], mac)
            .map(|()| MacVerified(()))
            .map_err(|_| SmError::BadMac)
    }

    fn encrypt(&self, iv: [u8; 16], plain: &[u8]) -> Vec<u8> {
        CbcEncryptor::new(&(*self.keys.enc_raw).into(), &iv.into()).encrypt_padded_vec::<Iso7816>(plain)
    }

    fn decrypt(&self, iv: [u8; 16], cipher: &[u8]) -> Result<Zeroizing<Vec<u8>>, SmError> {
        if cipher.is_empty() || !cipher.len().is_multiple_of(16) {
            return Err(SmError::BadCiphertext);
        }
        CbcDecryptor::new(&(*self.keys.enc_raw).into(), &iv.into())
            .decrypt_padded_vec::<Iso7816>(cipher)
            .map(Zeroizing::new)
            .map_err(|_| SmError::BadCiphertext)
    }

    /// Full mode, host: `E(SesAuthENCKey, IVc, pad(data))` with ISO/IEC 9797-1 method 2.
    pub fn encrypt_command(&self, plain: &[u8]) -> Vec<u8> {
        self.encrypt(self.command_iv(), plain)
    }

    /// Full mode, card: decrypts and unpads command data.
    pub fn decrypt_command(&self, cipher: &[u8]) -> Result<Zeroizing<Vec<u8>>, SmError> {
        self.decrypt(self.command_iv(), cipher)
    }

    /// Full mode, card: encrypts response data with IVr.
    pub fn encrypt_response(&self, plain: &[u8]) -> Result<Vec<u8>, SmError> {
        Ok(self.encrypt(self.response_iv()?, plain))
    }

    /// Full mode, host: decrypts and unpads response data.
    pub fn decrypt_response(&self, cipher: &[u8]) -> Result<Zeroizing<Vec<u8>>, SmError> {
        self.decrypt(self.response_iv()?, cipher)
    }
}

#[cfg(test)]
mod tests {
    use hex_literal::hex;

    use super::*;

    fn key(bytes: [u8; 16]) -> SecretKey16 {
        Zeroizing::new(bytes)
    }

    // NXP AN12196 Rev 1.x §6.6 (Rev 2.0 §5.6 Table 14): AuthenticateEV2First with key 0x00,
    // Kx all zero, host and card side reproduced byte for byte.
    #[test]
    fn an12196_authenticate_ev2_first_key0() {
        let kx = [0_u8; 16];
        let rnd_b = hex!("B9E2FC789B64BF237CCCAA20EC7E6E48");
        let rnd_a = hex!("13C5DB8A5930439FC3DEF9A4C675360F");
        let (card, part1) = CardAuth::start(key(kx), rnd_b).unwrap();
        assert_eq!(part1, hex!("A04C124213C186F22399D33AC2A30215"));
        let (host, part2) = ExpectAuthAnswer::new(key(kx), &part1, rnd_a).unwrap();
        assert_eq!(part2, hex!("35C3E05A752E0144BAC0DE51C1F22C56B34408A23D8AEA266CAB947EA8E0118D"));
        let (card_channel, answer) = card.finish_first(&part2, hex!("9D00C4DF")).unwrap();
        assert_eq!(answer, hex!("3FA64DB5446D1F34CD6EA311167F5E4985B89690C04A05F17FA7AB2F08120663"));
        let host_channel = host.finish_first(&answer).unwrap();
        assert_eq!(host_channel.ti(), hex!("9D00C4DF"));
        assert_eq!(
            session_vector([0xA5, 0x5A], &rnd_a, &rnd_b),
            hex!("A55A0001008013C56268A548D8FBBF237CCCAA20EC7E6E48C3DEF9A4C675360F")
        );
        assert_eq!(*host_channel.keys().enc_key(), hex!("1309C877509E5A215007FF0ED19CA564"));
        assert_eq!(host_channel.keys().mac_full(&[]), card_channel.keys().mac_full(&[]));
        let mac_key_check = SessionKeys::derive(&kx, &rnd_a, &rnd_b);
        let expected_mac = CmacKey::new(&hex!("4C6626F5E72EA694202139295C7A7FC7"));
        assert_eq!(mac_key_check.mac_full(b"x"), expected_mac.mac(b"x"), "SesAuthMACKey");
    }

    // AN12196 Rev 2.0 §5.10 Table 19: AuthenticateEV2First with key 0x03 (all-zero value).
    #[test]
    fn an12196_authenticate_ev2_first_key3() {
        let rnd_b = hex!("91517975190DCEA6104948EFA3085C1B");
        let rnd_a = hex!("B98F4C50CF1C2E084FD150E33992B048");
        let (card, part1) = CardAuth::start(key([0; 16]), rnd_b).unwrap();
        assert_eq!(part1, hex!("B875CEB0E66A6C5CD00898DC371F92D1"));
        let (host, part2) = ExpectAuthAnswer::new(key([0; 16]), &part1, rnd_a).unwrap();
        assert_eq!(part2, hex!("FF0306E47DFBC50087C4D8A78E88E62DE1E8BE457AA477C707E2F0874916A8B1"));
        let (_, answer) = card.finish_first(&part2, hex!("7614281A")).unwrap();
        assert_eq!(answer, hex!("0CC9A8094A8EEA683ECAAC5C7BF20584206D0608D477110FC6B3D5D3F65C3A6A"));
        let channel = host.finish_first(&answer).unwrap();
        assert_eq!(*channel.keys().enc_key(), hex!("7A93D6571E4B180FCA6AC90C9A7488D4"));
    }

    // AN12196 Rev 2.0 §5.14 Table 23: AuthenticateEV2NonFirst keeps TI (7614281A).
    #[test]
    fn an12196_authenticate_ev2_non_first() {
        let rnd_b = hex!("6924E8D09722659A2E7DEC68E66312B8");
        let rnd_a = hex!("60BE759EDA560250AC57CDDC11743CF6");
        let (card, part1) = CardAuth::start(key([0; 16]), rnd_b).unwrap();
        assert_eq!(part1, hex!("A6A2B3C572D06C097BB8DB70463E22DC"));
        let (host, part2) = ExpectAuthAnswer::new(key([0; 16]), &part1, rnd_a).unwrap();
        assert_eq!(part2, hex!("BE7D45753F2CAB85F34BC60CE58B940763FE969658A532DF6D95EA2773F6E991"));
        let keys = SessionKeys::derive(&[0; 16], &[0; 16], &[1; 16]);
        let mut card_channel = Channel::from_parts(keys.clone(), hex!("7614281A"), 2);
        let answer = card.finish_non_first(&part2, &mut card_channel).unwrap();
        assert_eq!(answer, hex!("B888349C24B315EAB5B589E279C8263E"));
        let mut host_channel = Channel::from_parts(keys, hex!("7614281A"), 2);
        host.finish_non_first(&answer, &mut host_channel).unwrap();
        assert_eq!(*host_channel.keys().enc_key(), hex!("4CF3CB41A22583A61E89B158D252FC53"));
        assert_eq!((host_channel.ti(), host_channel.cmd_ctr()), (hex!("7614281A"), 2), "TI and counter kept");
    }

    // AN12343 §7.1.3.1 (pp. 33-35): session keys from RndA/RndB.
    #[test]
    fn an12343_session_keys() {
        let keys = SessionKeys::derive(
            &[0; 16],
            &hex!("B04D0787C93EE0CC8CACC8E86F16C6FE"),
            &hex!("FA659AD0DCA738DD65DC7DC38612AD81"),
        );
        assert_eq!(*keys.enc_key(), hex!("63DC07286289A7A6C0334CA31C314A04"));
        let mac = CmacKey::new(&hex!("774F26743ECE6AF5033B6AE8522946F6"));
        assert_eq!(keys.mac_full(b"check"), mac.mac(b"check"));
    }

    fn channel(enc: [u8; 16], mac: [u8; 16], ti: [u8; 4], ctr: u16) -> Channel {
        Channel {
            keys: SessionKeys { enc: Aes128::new(&enc.into()), enc_raw: Zeroizing::new(enc), mac: CmacKey::new(&mac) },
            ti,
            cmd_ctr: ctr,
        }
    }

    // AN12196 Rev 2.0 §4.3 Table 7: GetFileSettings(02) in CommMode.MAC.
    #[test]
    fn an12196_mac_mode_get_file_settings() {
        let ch = channel([0; 16], hex!("8248134A386E86EB7FAF54A52E536CB6"), hex!("7A21085E"), 0);
        assert_eq!(ch.command_mac(0xF5, &[0x02], &[]), hex!("6597A457C8CD442C"));
        let data = hex!("0040EEEE000100D1FE001F00004400004400002000006A0000");
        assert!(ch.verify_response_mac(0x00, &data, &hex!("2A474282E7A47986")).is_ok());
        assert!(ch.verify_response_mac(0x00, &data, &hex!("2A474282E7A47987")).is_err(), "one flipped bit");
    }

    // AN12196 Rev 2.0 §5.8.2 Table 17: WriteData (8D) of the NDEF file in CommMode.Full, in
    // the session of §5.6. (The note's steps 4 and 12 print the length as 530000; the APDU
    // and the MAC use 800000.)
    #[test]
    fn an12196_full_mode_write_data() {
        let ch = channel(
            hex!("1309C877509E5A215007FF0ED19CA564"),
            hex!("4C6626F5E72EA694202139295C7A7FC7"),
            hex!("9D00C4DF"),
            0,
        );
        assert_eq!(ch.command_iv(), hex!("D2CB7277A17841A06654A48188C1F8F5"));
        let mut plain = hex!("0051D1014D550463686F6F73652E75726C2E636F6D2F6E7461673432343F653D").to_vec();
        plain.extend_from_slice(&[0x30; 32]);
        plain.extend_from_slice(&hex!("26633D"));
        plain.extend_from_slice(&[0x30; 16]);
        plain.resize(128, 0);
        let cipher = ch.encrypt_command(&plain);
        assert_eq!(cipher.len(), 144, "a full extra block of padding");
        assert_eq!(
            cipher,
            hex!(
                "421C73A27D827658AF481FDFF20A5025B559D0E3AA21E58D347F343CFFC768BF"
                "E596C706BC00F2176781D4B0242642A0FF5A42C461AAF894D9A1284B8C76BCFA"
                "658ACD40555D362E08DB15CF421B51283F9064BCBE20E96CAE545B407C9D651A"
                "3315B27373772E5DA2367D2064AE054AF996C6F1F669170FA88CE8C4E3A4A7BB"
                "BEF0FD971FF532C3A802AF745660F2B4"
            )
        );
        let header = hex!("02000000800000");
        assert_eq!(ch.command_mac(0x8D, &header, &cipher), hex!("D1D9A8499661EBF3"));
        assert!(ch.verify_response_mac(0x00, &[], &hex!("FC222E5F7A542452")).is_ok());
        assert_eq!(&*ch.decrypt_command(&cipher).unwrap(), &plain);
    }

    // AN12196 Rev 2.0 §5.9 Table 18: ChangeFileSettings in CommMode.Full at CmdCtr 1.
    #[test]
    fn an12196_full_mode_change_file_settings() {
        let ch = channel(
            hex!("1309C877509E5A215007FF0ED19CA564"),
            hex!("4C6626F5E72EA694202139295C7A7FC7"),
            hex!("9D00C4DF"),
            1,
        );
        assert_eq!(ch.command_iv(), hex!("3E27082AB2ACC1EF55C57547934E9962"));
        let cipher = ch.encrypt_command(&hex!("4000E0C1F121200000430000430000"));
        assert_eq!(cipher, hex!("61B6D97903566E84C3AE5274467E89EA"));
        assert_eq!(ch.command_mac(0x5F, &[0x02], &cipher), hex!("D799B7C1A0EF7A04"));
        assert!(ch.verify_response_mac(0x00, &[], &hex!("57BFF87B1241E93D")).is_ok());
    }

    // AN12196 Rev 2.0 §6.3 Table 28: GetCardUID with the response in CommMode.Full.
    #[test]
    fn an12196_full_mode_get_card_uid_response() {
        let ch = channel(
            hex!("2B4D963C014DC36F24F69A50A394F875"),
            hex!("379D32130CE61705DD5FD8C36B95D764"),
            hex!("DF055522"),
            0,
        );
        assert_eq!(ch.command_mac(0x51, &[], &[]), hex!("8E2C155ADDA99BE3"));
        let cipher = hex!("70756055688505B52A5E26E59E329CD6");
        assert_eq!(ch.response_iv().unwrap(), hex!("7F6BB0B278EA054CBD238C5D9E9E342B"));
        assert!(ch.verify_response_mac(0x00, &cipher, &hex!("595F672298EA41B7")).is_ok());
        assert_eq!(&*ch.decrypt_response(&cipher).unwrap(), &hex!("04958CAA5C5E80"));
        // And the card side produces the same bytes.
        assert_eq!(ch.encrypt_response(&hex!("04958CAA5C5E80")).unwrap(), cipher);
        assert_eq!(ch.response_mac(0x00, &cipher).unwrap(), hex!("595F672298EA41B7"));
    }

    // AN12343 p. 54 (via Proxmark3 client desfiretest.c TestEV2MAC): WriteData then
    // ReadData in CommMode.MAC.
    #[test]
    fn an12343_mac_mode_write_then_read() {
        let mut ch = channel([0; 16], hex!("9366FA195EB566F5BD2BAD4020B83002"), hex!("E2D3AF69"), 0);
        let data = [0x22_u8; 25];
        assert_eq!(ch.command_mac(0x8D, &hex!("00000000190000"), &data), hex!("68F2C28C575A1628"));
        assert!(ch.verify_response_mac(0x00, &[], &hex!("0820F68898C2A7F1")).is_ok());
        ch.advance().unwrap();
        assert_eq!(ch.command_mac(0xAD, &hex!("00000000300000"), &[]), hex!("0D9BE191D5960834"));
        let mut read = data.to_vec();
        read.resize(48, 0);
        assert!(ch.verify_response_mac(0x00, &read, &hex!("A49A44222D926666")).is_ok());
    }

    #[test]
    fn wrong_keys_and_replays_are_refused() {
        let (card, part1) = CardAuth::start(key([7; 16]), [1; 16]).unwrap();
        let (_, part2) = ExpectAuthAnswer::new(key([8; 16]), &part1, [2; 16]).unwrap();
        assert_eq!(card.finish_first(&part2, [0; 4]).unwrap_err(), SmError::BadProof, "a host with another key");
        let ch = channel([1; 16], [2; 16], [3; 4], 5);
        let mac = ch.command_mac(0xDC, &[0x03], &[1, 0, 0, 0]);
        let mut later = ch.clone();
        later.advance().unwrap();
        assert_eq!(
            later.verify_command_mac(0xDC, &[0x03], &[1, 0, 0, 0], &mac),
            Err(SmError::BadMac),
            "a replayed MAC"
        );
        let exhausted = channel([1; 16], [2; 16], [3; 4], CMD_CTR_MAX);
        assert_eq!(exhausted.response_mac(0, &[]), Err(SmError::CounterExhausted));
        assert!(ch.decrypt_command(&[0; 15]).is_err());
    }
}
