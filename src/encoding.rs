//! Text encodings of binary data, in one place: lower-case hex (fingerprints, serials, key
//! ids) and PEM (RFC 7468) blocks.

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Wrap DER in a PEM block with 64-character lines.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A PEM block found in a text: its label and the decoded DER.
#[derive(Debug)]
pub struct PemBlock {
    /// The label between `BEGIN ` and the dashes, e.g. `CERTIFICATE REQUEST`.
    pub label: String,
    /// The decoded contents, or why they could not be decoded.
    pub der: Result<Vec<u8>, String>,
}

/// Find the first PEM block in `bytes` (text before and after it is ignored, as openssl does).
/// Returns `None` when the input holds no `-----BEGIN` line at all.
pub fn first_pem_block(bytes: &[u8]) -> Option<PemBlock> {
    use base64::Engine;
    let text = String::from_utf8_lossy(bytes);
    let begin = text.find("-----BEGIN ")?;
    let after_begin = &text[begin + "-----BEGIN ".len()..];
    let label_end = after_begin.find("-----")?;
    let label = after_begin[..label_end].trim().to_string();
    let body_start = &after_begin[label_end + 5..];
    let end_marker = format!("-----END {label}-----");
    let der = match body_start.find(&end_marker) {
        None => Err(format!("no `{end_marker}` line")),
        Some(end) => {
            let b64: String = body_start[..end]
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| format!("bad base64: {e}"))
        }
    };
    Some(PemBlock { label, der })
}
