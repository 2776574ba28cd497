//! fwknop's SPA wire format (Rijndael + HMAC-SHA256 subset): parse, authenticate, decrypt,
//! decode the fields, and the reverse for the client.
//!
//! A payload is `S ‖ T`: `S` is the base64 of `"Salted__" ‖ salt[8] ‖ AES-256-CBC(PKCS#7(P))`
//! without its first 10 characters (`U2FsdGVkX1`) and without `=`; `T` is the 43-character
//! base64 of HMAC-SHA256 over the ASCII text `"U2FsdGVkX1" ‖ S`. The key and IV come from
//! OpenSSL's `EVP_BytesToKey(MD5, 1 round)` over the encryption key and the salt. `P` is
//! `rand:B64(user):ts:version:type:B64(msg)[:server_auth][:timeout]:B64(SHA-256(all before))`.
//!
//! Invariants: nothing here allocates on the receiving side (fixed stack buffers), nothing
//! panics on any input, and the HMAC is compared in constant time before a byte is
//! decrypted. [`Packet::parse`] brings every re-encoding of one packet (trailing newline or
//! NUL, `=` padding, the `U2FsdGVkX1` prefix put back, base64 endings with other unused bits)
//! to one canonical form, so [`Packet::replay_key`] is the same for all of them.

use super::{Access, Keys, Message, Refusal, MAX_ACCESS};
use crate::config::Proto;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use std::net::Ipv4Addr;

/// Base64, standard alphabet, as fwknop writes it: no `=` written; when reading, `=` at the
/// end is tolerated and unused trailing bits are dropped (fwknop's own decoder does both).
mod b64 {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine;

    const B64: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );

    /// Decodes `input` into `out`; `None` on a character outside the alphabet, a length
    /// that no encoding has (4n+1), or `out` too small.
    pub fn decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
        B64.decode_slice(input, out).ok()
    }

    /// Encodes `input` into `out` without padding; `None` if `out` is too small.
    pub fn encode_into(input: &[u8], out: &mut [u8]) -> Option<usize> {
        B64.encode_slice(input, out).ok()
    }

    /// Encodes `input` without padding.
    pub fn encode(input: &[u8]) -> String {
        B64.encode(input)
    }
}

/// The base64 of `"Salted__"`'s first 60 bits, which the sender strips.
pub const PREFIX: &[u8] = b"U2FsdGVkX1";
/// Length of the base64 HMAC-SHA256 tag (32 bytes, `=` removed).
pub const TAG_LEN: usize = 43;
/// Shortest payload fwknopd considers (`MIN_SPA_DATA_SIZE`).
pub const MIN_PAYLOAD: usize = 140;
/// fwknopd treats a payload of 400 characters or more as GnuPG, never as Rijndael.
pub const MAX_RIJNDAEL: usize = 399;
/// The longest raw payload looked at (fwknopd's `MAX_SPA_PACKET_LEN`); longer is not SPA.
pub const MAX_PAYLOAD: usize = 1500;
/// Room for the canonical text `U2FsdGVkX1 ‖ S` (S < 400 − 43 characters).
const TEXT_MAX: usize = PREFIX.len() + MAX_RIJNDAEL - TAG_LEN;
/// Room for the decoded blob (header, salt and ciphertext).
const BLOB_MAX: usize = TEXT_MAX * 3 / 4 + 3;

/// A received payload in canonical form, authenticated or not yet.
///
/// Invariant: `blob` starts with `Salted__`, is a multiple of 16 bytes and at least 32;
/// `text` is the canonical base64 of `blob` (no `=`, unused bits zero).
pub struct Packet {
    text: [u8; TEXT_MAX],
    text_len: usize,
    blob: [u8; BLOB_MAX],
    blob_len: usize,
    tag: [u8; 32],
}

fn is_b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'+' || c == b'/'
}

fn trim_end<'a>(mut s: &'a [u8], junk: &[u8]) -> &'a [u8] {
    while let [rest @ .., last] = s {
        if !junk.contains(last) {
            break;
        }
        s = rest;
    }
    s
}

/// The cheap test the daemon can run before any hashing: length in range and the first
/// character one of `8 9 + /` (the bits of `Salted__` that the sender did not strip), or
/// the stripped prefix put back.
pub fn looks_like_spa(payload: &[u8]) -> bool {
    (MIN_PAYLOAD..=MAX_PAYLOAD).contains(&payload.len())
        && (matches!(payload[0], b'8' | b'9' | b'+' | b'/') || payload.starts_with(PREFIX))
}

impl Packet {
    /// Brings a UDP payload to canonical form. Refuses, as [`Refusal::NotSpa`], anything that
    /// cannot be a Rijndael SPA packet: wrong length, a character outside base64, a blob that
    /// does not decode to `Salted__ ‖ salt ‖ whole AES blocks`.
    pub fn parse(payload: &[u8]) -> Result<Packet, Refusal> {
        if payload.len() > MAX_PAYLOAD {
            return Err(Refusal::NotSpa);
        }
        let p = trim_end(payload, b"\n\r\0 \t");
        let p = trim_end(p, b"=");
        if p.len() < TAG_LEN {
            return Err(Refusal::NotSpa);
        }
        let (body, tag) = p.split_at(p.len() - TAG_LEN);
        let body = trim_end(body, b"=");
        let body = body.strip_prefix(PREFIX).unwrap_or(body);
        let canonical_len = body.len() + TAG_LEN;
        if !(MIN_PAYLOAD..=MAX_RIJNDAEL).contains(&canonical_len)
            || !body.iter().chain(tag).all(|&c| is_b64(c))
        {
            return Err(Refusal::NotSpa);
        }
        let mut pk = Packet {
            text: [0; TEXT_MAX],
            text_len: 0,
            blob: [0; BLOB_MAX],
            blob_len: 0,
            tag: [0; 32],
        };
        // Decode the text as received, then re-encode it: the result is canonical.
        let mut full = [0u8; TEXT_MAX];
        let full_len = PREFIX.len() + body.len();
        full[..PREFIX.len()].copy_from_slice(PREFIX);
        full[PREFIX.len()..full_len].copy_from_slice(body);
        pk.blob_len = b64::decode(&full[..full_len], &mut pk.blob).ok_or(Refusal::NotSpa)?;
        let mut tag_bytes = [0u8; 33];
        match b64::decode(tag, &mut tag_bytes) {
            Some(32) => pk.tag.copy_from_slice(&tag_bytes[..32]),
            _ => return Err(Refusal::NotSpa),
        }
        let blob = &pk.blob[..pk.blob_len];
        if blob.len() < 32 || !blob.len().is_multiple_of(16) || !blob.starts_with(b"Salted__") {
            return Err(Refusal::NotSpa);
        }
        pk.text_len = b64::encode_into(blob, &mut pk.text).ok_or(Refusal::NotSpa)?;
        Ok(pk)
    }

    /// The 8-byte salt the sender chose (for the client's byte-exact re-encoding tests).
    pub fn salt(&self) -> [u8; 8] {
        let mut s = [0u8; 8];
        s.copy_from_slice(&self.blob[8..16]);
        s
    }

    /// Whether the tag is HMAC-SHA256 of the canonical text under `key`, compared in
    /// constant time. Call before [`Packet::decrypt`].
    pub fn authentic(&self, hmac_key: &[u8]) -> bool {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(hmac_key) else {
            return false;
        };
        mac.update(&self.text[..self.text_len]);
        mac.verify_slice(&self.tag).is_ok()
    }

    /// The replay-cache key: SHA-256 of the decoded blob and tag, the same for every
    /// re-encoding of one packet.
    pub fn replay_key(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(&self.blob[..self.blob_len]);
        h.update(self.tag);
        h.finalize().into()
    }

    /// Decrypts with `enc_key` and decodes the fields. [`Refusal::BadKey`] when the key does
    /// not fit (bad padding, or not `16 digits:` at the start), [`Refusal::BadMsg`] and
    /// friends when the plaintext breaks the format.
    pub fn decrypt(&self, enc_key: &[u8]) -> Result<Message, Refusal> {
        let blob = &self.blob[..self.blob_len];
        let (key, iv) = derive(enc_key, &blob[8..16]);
        let mut buf = [0u8; BLOB_MAX];
        let ct = &blob[16..];
        buf[..ct.len()].copy_from_slice(ct);
        let dec = cbc::Decryptor::<aes::Aes256>::new(&key.into(), &iv.into());
        let pt = dec
            .decrypt_padded_mut::<Pkcs7>(&mut buf[..ct.len()])
            .map_err(|_| Refusal::BadKey)?;
        // fwknop's own test of a right key: 16 digits, then ':'.
        if pt.len() < 17 || !pt[..16].iter().all(u8::is_ascii_digit) || pt[16] != b':' {
            return Err(Refusal::BadKey);
        }
        decode_plaintext(pt)
    }
}

/// OpenSSL `EVP_BytesToKey(aes-256-cbc, md5, salt, pw, 1)`: key = D1‖D2, iv = D3.
fn derive(pw: &[u8], salt: &[u8]) -> ([u8; 32], [u8; 16]) {
    let round = |prev: Option<&[u8]>| -> [u8; 16] {
        let mut h = Md5::new();
        if let Some(p) = prev {
            h.update(p);
        }
        h.update(pw);
        h.update(salt);
        h.finalize().into()
    };
    let d1 = round(None);
    let d2 = round(Some(&d1));
    let d3 = round(Some(&d2));
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(&d1);
    key[16..].copy_from_slice(&d2);
    (key, d3)
}

fn digits(s: &[u8], max: usize) -> Option<u64> {
    if s.len() > max || s.first() == Some(&b'+') {
        return None;
    }
    crate::config::number(std::str::from_utf8(s).ok()?)
}

/// Decodes an fwknop username: printable, none of `" / \ [ ] : ; | = , + * ? < >`.
fn valid_user(u: &[u8]) -> bool {
    !u.is_empty()
        && u.iter().all(|&c| (0x20..0x7f).contains(&c))
        && !u.iter().any(|c| b"\"/\\[]:;|=,+*?<>".contains(c))
}

/// Checks and splits a decrypted plaintext. Digest types other than SHA-256 are refused.
fn decode_plaintext(pt: &[u8]) -> Result<Message, Refusal> {
    if !pt.iter().all(|&c| (0x20..0x7f).contains(&c)) {
        return Err(Refusal::BadKey);
    }
    let cut = pt.iter().rposition(|&c| c == b':').ok_or(Refusal::BadMsg)?;
    let (signed, digest) = (&pt[..cut], &pt[cut + 1..]);
    match digest.len() {
        43 => {}
        22 | 27 | 64 | 86 => return Err(Refusal::DigestUnsupported),
        _ => return Err(Refusal::BadMsg),
    }
    let mut mine = [0u8; 44];
    let n = b64::encode_into(&Sha256::digest(signed), &mut mine).ok_or(Refusal::BadMsg)?;
    if &mine[..n] != digest {
        return Err(Refusal::BadMsg);
    }
    let mut f: heapless::Vec<&[u8], 9> = heapless::Vec::new();
    for field in signed.split(|&c| c == b':') {
        f.push(field).map_err(|_| Refusal::BadMsg)?;
    }
    if f.len() < 6 {
        return Err(Refusal::BadMsg);
    }
    let mut m = Message::default();
    if f[0].len() != 16 {
        return Err(Refusal::BadMsg);
    }
    m.rand.copy_from_slice(f[0]);
    let mut user = [0u8; 64];
    if f[1].len() > 64 {
        return Err(Refusal::BadMsg);
    }
    let n = b64::decode(f[1], &mut user).ok_or(Refusal::BadMsg)?;
    if !valid_user(&user[..n]) {
        return Err(Refusal::BadMsg);
    }
    let user = std::str::from_utf8(&user[..n]).map_err(|_| Refusal::BadMsg)?;
    m.user = user.try_into().map_err(|_| Refusal::BadMsg)?;
    m.timestamp = digits(f[2], 12).ok_or(Refusal::BadMsg)? as i64;
    let version = std::str::from_utf8(f[3]).map_err(|_| Refusal::BadMsg)?;
    if version.is_empty() {
        return Err(Refusal::BadMsg);
    }
    m.version = version.try_into().map_err(|_| Refusal::BadMsg)?;
    let kind = digits(f[4], 2).ok_or(Refusal::BadMsg)?;
    let rest = &f[6..];
    // Type 1: msg[:server_auth]; type 3: msg[:server_auth]:timeout. Others are valid fwknop
    // (command, NAT) but outside the subset.
    match (kind, rest.len()) {
        (1, 0 | 1) => {}
        (3, 1 | 2) => {
            let t = digits(rest[rest.len() - 1], 5).ok_or(Refusal::BadMsg)?;
            if t > 65536 {
                return Err(Refusal::BadMsg);
            }
            m.client_timeout = t as u32;
        }
        (0 | 2 | 4 | 5 | 6, _) => return Err(Refusal::TypeUnsupported),
        _ => return Err(Refusal::BadMsg),
    }
    if f[5].len() > 256 {
        return Err(Refusal::BadMsg);
    }
    let mut msg = [0u8; 192];
    let n = b64::decode(f[5], &mut msg).ok_or(Refusal::BadMsg)?;
    parse_access(&msg[..n], &mut m)?;
    Ok(m)
}

/// `a.b.c.d,proto/port[,proto/port…]`, strictly (no leading zeros, ports 1..=65535).
fn parse_access(msg: &[u8], m: &mut Message) -> Result<(), Refusal> {
    let msg = std::str::from_utf8(msg).map_err(|_| Refusal::BadMsg)?;
    let mut parts = msg.split(',');
    let ip = parts.next().unwrap_or("");
    m.allow = ip.parse::<Ipv4Addr>().map_err(|_| Refusal::BadMsg)?;
    for spec in parts {
        let (proto, port) = spec.split_once('/').ok_or(Refusal::BadMsg)?;
        let proto = if proto.eq_ignore_ascii_case("tcp") {
            Proto::Tcp
        } else if proto.eq_ignore_ascii_case("udp") {
            Proto::Udp
        } else {
            return Err(Refusal::BadMsg);
        };
        let port = digits(port.as_bytes(), 5)
            .filter(|p| (1..=65535).contains(p))
            .ok_or(Refusal::BadMsg)? as u16;
        m.access
            .push(Access { proto, port })
            .map_err(|_| Refusal::BadMsg)?;
    }
    if m.access.is_empty() {
        return Err(Refusal::BadMsg);
    }
    Ok(())
}

/// Builds the payload a real fwknop client would send for `m` (type 3 when
/// `m.client_timeout > 0`, else type 1), with the given salt. The caller supplies the
/// randomness (`m.rand`, `salt`) so this stays pure and testable byte for byte.
pub fn encode(m: &Message, keys: &Keys, salt: [u8; 8]) -> String {
    let b64 = b64::encode;
    let mut access = m.allow.to_string();
    for a in &m.access {
        access.push_str(&format!(",{}/{}", a.proto.name(), a.port));
    }
    let mut pt = format!(
        "{}:{}:{}:{}:{}:{}",
        String::from_utf8_lossy(&m.rand),
        b64(m.user.as_bytes()),
        m.timestamp,
        m.version,
        if m.client_timeout > 0 { 3 } else { 1 },
        b64(access.as_bytes())
    );
    if m.client_timeout > 0 {
        pt.push_str(&format!(":{}", m.client_timeout));
    }
    let digest = b64(&Sha256::digest(pt.as_bytes()));
    pt.push(':');
    pt.push_str(&digest);

    seal(pt.as_bytes(), keys, salt)
}

/// Encrypts and authenticates any plaintext the way the fwknop client does (the encoder's
/// second half; also lets the fuzzer reach the plaintext parser).
pub fn seal(pt: &[u8], keys: &Keys, salt: [u8; 8]) -> String {
    let (key, iv) = derive(&keys.enc, &salt);
    let mut blob = Vec::with_capacity(16 + pt.len() + 16);
    blob.extend_from_slice(b"Salted__");
    blob.extend_from_slice(&salt);
    let start = blob.len();
    blob.extend_from_slice(pt);
    blob.resize(start + (pt.len() / 16 + 1) * 16, 0);
    let enc = cbc::Encryptor::<aes::Aes256>::new(&key.into(), &iv.into());
    // The buffer has room for a full padding block, so this cannot fail.
    let n = enc
        .encrypt_padded_mut::<Pkcs7>(&mut blob[start..], pt.len())
        .map(|c| c.len())
        .unwrap_or(0);
    blob.truncate(start + n);

    let text = b64::encode(&blob);
    let mut out = text[PREFIX.len()..].to_string();
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&keys.hmac) {
        mac.update(text.as_bytes());
        out.push_str(&b64::encode(&mac.finalize().into_bytes()));
    }
    out
}

/// Decodes a base64 key as written in access.conf or `~/.fwknoprc` (padding optional).
/// `None` when it is not base64 or longer than `max` bytes.
pub fn decode_key(text: &str, max: usize) -> Option<Vec<u8>> {
    let mut buf = [0u8; 256];
    let t = text.trim().as_bytes();
    if t.is_empty() || !t.iter().all(|&c| is_b64(c) || c == b'=') {
        return None;
    }
    let n = b64::decode(t, &mut buf)?;
    (n > 0 && n <= max).then(|| buf[..n].to_vec())
}

/// fwknop's `--key-gen` output form: standard base64 with `=` padding.
pub fn encode_key(bytes: &[u8]) -> String {
    let mut s = b64::encode(bytes);
    while !s.len().is_multiple_of(4) {
        s.push('=');
    }
    s
}

const _: () = assert!(MAX_ACCESS >= 1);

#[cfg(test)]
mod b64_tests {
    use super::b64;

    #[test]
    fn rfc4648_vectors_both_ways() {
        let v = [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ];
        let mut out = [0u8; 16];
        for (plain, enc) in v {
            assert_eq!(b64::encode(plain.as_bytes()), enc);
            let n = b64::decode(enc.as_bytes(), &mut out).unwrap();
            assert_eq!(&out[..n], plain.as_bytes());
            let padded = format!("{enc}{}", "=".repeat((4 - enc.len() % 4) % 4));
            let n = b64::decode(padded.as_bytes(), &mut out).unwrap();
            assert_eq!(&out[..n], plain.as_bytes(), "{padded}");
        }
        // Unused trailing bits are dropped, as fwknop's decoder does.
        let n = b64::decode(b"Zh", &mut out).unwrap();
        assert_eq!(&out[..n], b"f");
        assert_eq!(b64::decode(b"Zm9vY", &mut out), None, "4n+1 characters");
        assert_eq!(b64::decode(b"Zm9v!", &mut out), None);
        assert_eq!(b64::decode(b"Zm=9", &mut out), None);
        assert_eq!(b64::decode(b"Zm9vYmFy", &mut [0u8; 5]), None, "room");
        assert_eq!(super::encode_key(b"foob"), "Zm9vYg==");
    }
}
