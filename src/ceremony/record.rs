//! `ceremony record`: a transcript as one self-contained printable HTML page (no external
//! resources; inline CSS with print rules), for the officers and witnesses to read aloud, sign
//! and file.
//!
//! Hashes and fingerprints are printed in the read-aloud form: upper-case hex in groups of four
//! digits, eight groups to a line (`3F2A 91B0 ...`), so two people can compare them group by
//! group. Everything taken from the transcript is HTML-escaped.

use std::fmt::Write as _;

use super::transcript::{Status, Transcript};

/// HTML-escapes text.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// The read-aloud form of a hex digest: upper case, groups of four, eight groups a line.
pub fn read_aloud(hex: &str) -> Vec<String> {
    let up: Vec<char> = hex
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let groups: Vec<String> = up.chunks(4).map(|c| c.iter().collect()).collect();
    groups.chunks(8).map(|g| g.join(" ")).collect()
}

fn digest_html(hex: &str) -> String {
    let lines: Vec<String> = read_aloud(hex)
        .iter()
        .map(|l| format!("<div class=\"digest\">{}</div>", escape(l)))
        .collect();
    lines.concat()
}

const CSS: &str = "body{font-family:serif;margin:2em;color:#000}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.2em}\
table{border-collapse:collapse;width:100%}td,th{border:1px solid #444;padding:4px;vertical-align:top;text-align:left}\
.digest{font-family:monospace;font-size:1.05em;letter-spacing:.05em;white-space:nowrap}\
.step{page-break-inside:avoid;break-inside:avoid;margin-bottom:1em}\
.sig{margin-top:2.5em;page-break-inside:avoid;break-inside:avoid}.sig td{height:3em}\
@media print{body{margin:0}a{color:#000;text-decoration:none}}\
@page{size:A4;margin:15mm}";

/// Renders the record page.
pub fn render(t: &Transcript) -> String {
    let mut h = String::new();
    let title = format!("Ceremony record: {}", t.name);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let _ = writeln!(
        h,
        "<table><tr><th>Operator</th><td>{}</td></tr><tr><th>Started</th><td>{}</td></tr><tr><th>Ended</th><td>{}</td></tr><tr><th>hsmsign</th><td>{}</td></tr><tr><th>Run</th><td>{}</td></tr>\
<tr><th>Ceremony file</th><td>{}</td></tr><tr><th>its SHA-256</th><td>{}</td></tr><tr><th>Site file</th><td>{}</td></tr></table>",
        escape(&t.operator),
        escape(&t.started),
        escape(t.ended.as_deref().unwrap_or("not ended (the run stopped)")),
        escape(&t.hsmsign_version),
        if t.rehearsal {
            "REHEARSAL on throwaway tokens"
        } else {
            "on the real tokens"
        },
        escape(&t.ceremony_file.path.display().to_string()),
        digest_html(&t.ceremony_file.sha256),
        match &t.site_file {
            Some(s) => format!(
                "{}<br>SHA-256:{}",
                escape(&s.path.display().to_string()),
                digest_html(&s.sha256)
            ),
            None => "none (bound through the environment)".to_owned(),
        }
    );
    let _ = writeln!(h, "<h2>Steps</h2>");
    for (n, s) in t.steps.iter().enumerate() {
        let status = match s.status {
            Status::Started => "INTERRUPTED",
            Status::Done => "done",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        };
        let _ = writeln!(
            h,
            "<div class=\"step\"><h3>Step {}: {} ({}) {}</h3><p>{}</p><table><tr><th>Input hash</th><td>{}</td></tr>",
            n + 1,
            escape(&s.id),
            escape(&s.kind),
            status,
            escape(&s.summary),
            digest_html(&s.input_hash)
        );
        for f in &s.inputs {
            let _ = writeln!(
                h,
                "<tr><th>Read {} (SHA-256)</th><td>{}</td></tr>",
                escape(&f.path.display().to_string()),
                digest_html(&f.sha256)
            );
        }
        for f in &s.outputs {
            let _ = writeln!(
                h,
                "<tr><th>Wrote {} (SHA-256)</th><td>{}</td></tr>",
                escape(&f.path.display().to_string()),
                digest_html(&f.sha256)
            );
        }
        for c in &s.certificates {
            let _ = writeln!(
                h,
                "<tr><th colspan=\"2\">Certificate {}</th></tr><tr><th>its SHA-256 fingerprint</th><td>{}</td></tr>",
                escape(&c.subject),
                digest_html(&c.sha256_fingerprint)
            );
        }
        if !s.audit_seq.is_empty() {
            let seqs: Vec<String> = s.audit_seq.iter().map(u64::to_string).collect();
            let _ = writeln!(
                h,
                "<tr><th>Audit records</th><td>{}</td></tr>",
                seqs.join(", ")
            );
        }
        let _ = writeln!(h, "</table></div>");
    }
    let _ = write!(
        h,
        "<div class=\"sig\"><h2>Signatures</h2><p>We read the hashes and fingerprints above aloud and compared them with the screen.</p>\
<table><tr><th>Role</th><th>Name</th><th>Signature</th><th>Date</th></tr>\
<tr><td>Security officer</td><td></td><td></td><td></td></tr><tr><td>Security officer</td><td></td><td></td><td></td></tr>\
<tr><td>Witness</td><td></td><td></td><td></td></tr><tr><td>Witness</td><td></td><td></td><td></td></tr></table></div>\n</body></html>\n"
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_read_aloud_in_groups_of_four() {
        let l = read_aloud(&"ab".repeat(32));
        assert_eq!(l.len(), 2);
        assert_eq!(l[0], "ABAB ABAB ABAB ABAB ABAB ABAB ABAB ABAB");
    }

    #[test]
    fn transcript_text_is_escaped() {
        assert_eq!(escape("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
    }
}
