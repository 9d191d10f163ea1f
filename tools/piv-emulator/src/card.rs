//! The card seen by the reader: piv-authenticator's APDU handling plus the transport
//! behaviour a YubiKey has and the `yubikey` crate relies on.
//!
//! - SELECT by the 5-byte PIV RID (A0 00 00 03 08), as YubiKey clients send it, selects PIV;
//! - GET VERSION (INS FD) answers a YubiKey 5 firmware version (5.4.3);
//! - command chaining (CLA bit 0x10) collects the parts before the command runs;
//! - responses longer than one short APDU are served in parts: 61xx, then GET RESPONSE (INS C0).

use heapless::Vec as HVec;
use iso7816::command::CommandView;
use piv_authenticator::{constants::PIV_AID, Authenticator, Options};

use crate::platform::Client;

/// The firmware version reported to GET VERSION: a YubiKey 5 before 5.7, because those
/// have the management key this card has by default (3DES, 010203..08 three times); from
/// 5.7 on YubiKeys default to AES-192, which piv-authenticator does not support, and clients
/// pick the default key by version.
pub const FIRMWARE_VERSION: [u8; 3] = [5, 4, 3];

/// The registered application provider id of PIV: the AID prefix YubiKey clients select.
const PIV_RID: [u8; 5] = [0xA0, 0x00, 0x00, 0x03, 0x08];

/// Largest response piv-authenticator may build (a certificate object plus its framing).
const MAX_RESPONSE: usize = 8192;
/// Largest command data accepted after chaining.
const MAX_COMMAND: usize = 8192;
/// Data bytes per response part: what a short Le of 00 asks for.
const SHORT_LE: usize = 256;

const INS_SELECT: u8 = 0xA4;
const INS_GET_RESPONSE: u8 = 0xC0;
const INS_GET_VERSION: u8 = 0xFD;
const INS_GENERATE: u8 = 0x47;
const INS_GET_METADATA: u8 = 0xF7;
const SW_NOT_FOUND: [u8; 2] = [0x6A, 0x88];
const CLA_CHAINING: u8 = 0x10;

const SW_OK: [u8; 2] = [0x90, 0x00];
const SW_WRONG_LENGTH: [u8; 2] = [0x67, 0x00];
const SW_CONDITIONS: [u8; 2] = [0x69, 0x85];
const SW_LAST_COMMAND_EXPECTED: [u8; 2] = [0x68, 0x83];
const SW_CLASS_NOT_SUPPORTED: [u8; 2] = [0x6E, 0x00];

/// An emulated PIV card.
pub struct Card<'c> {
    app: Authenticator<Client<'c>>,
    /// Response bytes not yet fetched with GET RESPONSE.
    pending: Vec<u8>,
    /// Header (CLA without the chaining bit, INS, P1, P2) and data of a chain in progress.
    chain: Option<([u8; 4], Vec<u8>)>,
    /// Print each command and response to stderr.
    trace: bool,
    /// What GENERATE made in each slot (algorithm, PIN and touch policy, public key TLVs), for
    /// GET METADATA, which YubiKeys since firmware 5.3 answer and piv-authenticator does not.
    generated: std::collections::HashMap<u8, (u8, u8, u8, Vec<u8>)>,
}

impl<'c> Card<'c> {
    /// A factory-new card (default PIN 123456, PUK 12345678, default management key).
    pub fn new(client: Client<'c>, trace: bool) -> Self {
        Self {
            app: Authenticator::new(client, Options::default()),
            pending: Vec::new(),
            chain: None,
            trace,
            generated: std::collections::HashMap::new(),
        }
    }

    fn clear_transport(&mut self) {
        self.pending.clear();
        self.chain = None;
    }

    /// Handles one command APDU and returns the response APDU (data and status word).
    pub fn handle(&mut self, apdu: &[u8]) -> Vec<u8> {
        let response = self.handle_inner(apdu);
        if self.trace {
            eprintln!("piv-emulator: > {}", hex(apdu));
            eprintln!("piv-emulator: < {}", hex(&response));
        }
        response
    }

    fn handle_inner(&mut self, apdu: &[u8]) -> Vec<u8> {
        let view = match CommandView::try_from(apdu) {
            Ok(view) => view,
            Err(_) => {
                self.clear_transport();
                return SW_WRONG_LENGTH.to_vec();
            }
        };
        let cla = apdu[0];
        let ins = apdu[1];
        let (p1, p2) = (apdu[2], apdu[3]);

        if ins == INS_GET_RESPONSE && self.chain.is_none() {
            return self.next_part(view.expected());
        }
        self.pending.clear();

        if cla & 0x80 != 0 {
            // Proprietary classes: none of the commands here use one.
            self.clear_transport();
            return SW_CLASS_NOT_SUPPORTED.to_vec();
        }
        let header = [cla & !CLA_CHAINING, ins, p1, p2];

        if cla & CLA_CHAINING != 0 {
            return self.add_to_chain(header, view.data());
        }

        let mut data = match self.chain.take() {
            Some((chain_header, mut collected)) => {
                if chain_header != header {
                    return SW_LAST_COMMAND_EXPECTED.to_vec();
                }
                collected.extend_from_slice(view.data());
                collected
            }
            None => view.data().to_vec(),
        };
        if data.len() > MAX_COMMAND {
            return SW_WRONG_LENGTH.to_vec();
        }

        if header == [0x00, INS_GET_VERSION, 0x00, 0x00] {
            return self.answer(FIRMWARE_VERSION.to_vec(), view.expected());
        }
        if ins == INS_SELECT && p1 == 0x04 && is_piv_prefix(&data) {
            data = PIV_AID.as_bytes().to_vec();
        }
        if header == [0x00, INS_GET_METADATA, 0x00, p2] {
            return match self.generated.get(&p2) {
                Some((alg, pin, touch, public)) => {
                    let mut out = vec![0x01, 0x01, *alg, 0x02, 0x02, *pin, *touch, 0x03, 0x01, 0x01];
                    out.push(0x04);
                    push_len(&mut out, public.len());
                    out.extend_from_slice(public);
                    self.answer(out, view.expected())
                }
                None => SW_NOT_FOUND.to_vec(),
            };
        }
        // GENERATE: AC { 80 alg [AA pin] [AB touch] }; the policies are YubiKey extensions.
        let generate = (ins == INS_GENERATE).then(|| {
            let tag = |t: u8| {
                data.windows(3)
                    .position(|w| w[0] == t && w[1] == 1)
                    .map(|i| data[i + 2])
            };
            (p2, tag(0x80).unwrap_or(0), tag(0xAA).unwrap_or(0), tag(0xAB).unwrap_or(0))
        });

        let command = encode_apdu(header, &data);
        let command = match CommandView::try_from(command.as_slice()) {
            Ok(command) => command,
            Err(_) => return SW_WRONG_LENGTH.to_vec(),
        };
        let mut reply: Box<HVec<u8, MAX_RESPONSE>> = Box::default();
        match self.app.respond(command, reply.as_mut_view()) {
            Ok(()) => {
                if let Some((slot, alg, pin, touch)) = generate {
                    // The reply is 7F49 len { 86 len point }: keep the inner TLVs.
                    if let Some(inner) = strip_tlv(&reply, 0x7F49) {
                        // Policy bytes 0 mean "default": the YubiKey reports PIN once, touch never.
                        let pin = if pin == 0 { 2 } else { pin };
                        let touch = if touch == 0 { 1 } else { touch };
                        self.generated.insert(slot, (alg, pin, touch, inner.to_vec()));
                    }
                }
                self.answer(reply.to_vec(), view.expected())
            }
            Err(status) => {
                let sw: [u8; 2] = status.into();
                sw.to_vec()
            }
        }
    }

    fn add_to_chain(&mut self, header: [u8; 4], data: &[u8]) -> Vec<u8> {
        match &mut self.chain {
            Some((chain_header, collected)) if *chain_header == header => {
                if collected.len() + data.len() > MAX_COMMAND {
                    self.chain = None;
                    return SW_WRONG_LENGTH.to_vec();
                }
                collected.extend_from_slice(data);
            }
            Some(_) => {
                self.chain = None;
                return SW_LAST_COMMAND_EXPECTED.to_vec();
            }
            None => self.chain = Some((header, data.to_vec())),
        }
        SW_OK.to_vec()
    }

    /// Sends `data` whole when it fits one short response, else its first part and 61xx.
    fn answer(&mut self, data: Vec<u8>, expected: usize) -> Vec<u8> {
        self.pending = data;
        self.next_part(expected)
    }

    /// The next part of the pending response: at most `expected` bytes (0 or more than a
    /// short response counts as 256), then 61xx while more remain, else 9000.
    fn next_part(&mut self, expected: usize) -> Vec<u8> {
        if self.pending.is_empty() && expected != 0 {
            // Nothing left to fetch (or a GET RESPONSE out of turn).
            return SW_CONDITIONS.to_vec();
        }
        let size = match expected {
            0 => SHORT_LE,
            n => n.min(SHORT_LE),
        };
        let size = size.min(self.pending.len());
        let mut response: Vec<u8> = self.pending.drain(..size).collect();
        match self.pending.len() {
            0 => response.extend_from_slice(&SW_OK),
            left => response.extend_from_slice(&[0x61, u8::try_from(left).unwrap_or(0)]),
        }
        response
    }

    /// Power-off or reset: drops half-sent chains and unfetched responses, and forgets
    /// that the PIN was verified (as a card losing power does). piv-authenticator offers
    /// no way to forget a management key authentication: that one outlives a reset here.
    pub fn reset(&mut self) {
        self.clear_transport();
        // VERIFY with P1 FF: reset the security status of the PIV PIN (SP 800-73-4, 3.2.1).
        const LOGOUT: [u8; 4] = [0x00, 0x20, 0xFF, 0x80];
        if let Ok(command) = CommandView::try_from(&LOGOUT[..]) {
            let mut reply: Box<HVec<u8, MAX_RESPONSE>> = Box::default();
            // A card not yet set up has no PIN status to forget: errors mean nothing here.
            let _ = self.app.respond(command, reply.as_mut_view());
        }
    }
}

/// True for SELECT data that is a prefix of the PIV AID at least as long as its RID.
/// BER-TLV length.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

/// The value of a TLV with a two-byte tag at the start of `data`.
fn strip_tlv(data: &[u8], tag: u16) -> Option<&[u8]> {
    let rest = data.strip_prefix(&tag.to_be_bytes())?;
    let (len, rest) = match *rest.first()? {
        n if n < 0x80 => (usize::from(n), &rest[1..]),
        0x81 => (usize::from(*rest.get(1)?), &rest[2..]),
        0x82 => (usize::from(*rest.get(1)?) << 8 | usize::from(*rest.get(2)?), &rest[3..]),
        _ => return None,
    };
    rest.get(..len)
}

fn is_piv_prefix(data: &[u8]) -> bool {
    data.len() >= PIV_RID.len() && PIV_AID.as_bytes().starts_with(data)
}

/// A command APDU for `header` and `data`, extended-length when the data needs it, with
/// the largest Le.
fn encode_apdu(header: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut apdu = header.to_vec();
    if data.is_empty() {
        apdu.push(0x00);
    } else if let Ok(short) = u8::try_from(data.len()) {
        apdu.push(short);
        apdu.extend_from_slice(data);
        apdu.push(0x00);
    } else {
        let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
        apdu.push(0x00);
        apdu.extend_from_slice(&len.to_be_bytes());
        apdu.extend_from_slice(data);
        apdu.extend_from_slice(&[0x00, 0x00]);
    }
    apdu
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
