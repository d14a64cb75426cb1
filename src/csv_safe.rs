//! CSV cells that a spreadsheet cannot run: the one rule against formula (CSV) injection, shared by every CSV writer
//! and by the importers.
//!
//! Excel, WPS and LibreOffice treat a cell whose text begins with `=`, `+`, `-` or `@` as a formula, and some also
//! start one after a leading tab or carriage return. A record field typed at the desk (a name, a complaint, a survey
//! comment, an audit detail) could therefore carry `=HYPERLINK("http://x","y")` or a DDE payload into a supervisor's
//! spreadsheet. Following OWASP, such a cell is written with a single quote `'` in front, which spreadsheets show as
//! text and do not evaluate.
//!
//! **Numbers.** A cell that is exactly a plain decimal number — an optional sign, digits, an optional fraction
//! (`-3`, `+8613800138000`, `-0.5`) — is left as it is: a spreadsheet reads it as that number, nothing in it can call
//! a function or refer to another cell, and quoting it would turn negative figures and international phone numbers
//! into text. Anything else that starts with a trigger (`-2+3`, `+1+1`, `-`, `--x`) is neutralised, whoever wrote it.
//!
//! Every CSV the project writes goes through [`Writer`], which applies [`neutralise_cell`] to every field, so a new
//! export cannot forget it.

use std::borrow::Cow;
use std::io;

/// The characters that make a spreadsheet read a cell as a formula when they come first.
pub const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether `s` is exactly a plain decimal number: an optional `+` or `-`, at least one ASCII digit, and an optional
/// `.` followed by at least one digit. No exponent, spaces or separators.
pub fn is_plain_number(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    digits(int) && frac.is_none_or(digits)
}

/// Whether a spreadsheet could read `s` as a formula: it starts with one of [`TRIGGERS`] and is not a plain number
/// (see the module documentation). The importers refuse such text cells with the same rule.
pub fn looks_like_formula(s: &str) -> bool {
    s.starts_with(TRIGGERS) && !is_plain_number(s)
}

/// The cell as written to a CSV file: `s` itself, or `'` followed by `s` when a spreadsheet could read it as a
/// formula ([`looks_like_formula`]). The empty string and plain numbers are unchanged.
pub fn neutralise_cell(s: &str) -> Cow<'_, str> {
    if looks_like_formula(s) { Cow::Owned(format!("'{s}")) } else { Cow::Borrowed(s) }
}

/// A CSV writer with the project's conventions (RFC 4180 quoting, CRLF line ends) that neutralises every field
/// ([`neutralise_cell`]) before writing it. The only way the project writes CSV.
#[derive(Debug)]
pub struct Writer<W: io::Write> {
    inner: csv::Writer<W>,
}

impl<W: io::Write> Writer<W> {
    /// A writer onto `out`; the caller writes a BOM first if the file should have one.
    pub fn new(out: W) -> Self {
        Self { inner: csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(out) }
    }

    /// A writer onto `out` after writing the UTF-8 BOM (so Excel and WPS on Chinese Windows read UTF-8).
    pub fn with_bom(mut out: W) -> io::Result<Self> {
        out.write_all(b"\xEF\xBB\xBF")?;
        Ok(Self::new(out))
    }

    /// Writes one record, each field through [`neutralise_cell`].
    pub fn write_record<I, T>(&mut self, fields: I) -> csv::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.inner.write_record(fields.into_iter().map(|f| neutralise_cell(f.as_ref()).into_owned()))
    }

    /// Flushes buffered records to the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_trigger_is_neutralised() {
        for (raw, want) in [
            ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("\rcmd", "'\rcmd"),
            ("=", "'="),
            ("+", "'+"),
            ("-", "'-"),
            ("@", "'@"),
            ("-1e5", "'-1e5"),
            ("+86 138 0013 8000", "'+86 138 0013 8000"),
            ("-.5", "'-.5"),
            ("-5.", "'-5."),
            ("=1", "'=1"),
        ] {
            assert_eq!(neutralise_cell(raw), want, "{raw:?}");
            assert!(looks_like_formula(raw), "{raw:?}");
        }
    }

    #[test]
    fn safe_cells_are_untouched_and_borrowed() {
        for s in [
            "",
            "王秀英",
            "头痛 =2",
            "a=1",
            " =1",
            "'=1",
            "13800138000",
            "-3",
            "+8613800138000",
            "-0.5",
            "12.25",
            "＝SUM(A1)",
            "€=1",
            "2026-11-23 10:00:00",
        ] {
            assert!(matches!(neutralise_cell(s), Cow::Borrowed(b) if b == s), "{s:?}");
            assert!(!looks_like_formula(s), "{s:?}");
        }
    }

    #[test]
    fn plain_numbers() {
        for s in ["0", "-3", "+86", "1.5", "-0.25"] {
            assert!(is_plain_number(s), "{s}");
        }
        for s in ["", "-", "+", ".5", "1.", "1.2.3", "1e3", "--1", "+-1", "1 2", "١٢"] {
            assert!(!is_plain_number(s), "{s}");
        }
    }

    #[test]
    fn the_writer_neutralises_every_field_and_quotes_as_rfc_4180() {
        let mut buf = Vec::new();
        {
            let mut w = Writer::with_bom(&mut buf).unwrap();
            w.write_record(["name", "n"]).unwrap();
            w.write_record(["=HYPERLINK(\"http://x\",\"y\")", "-3"]).unwrap();
            w.write_record(vec![String::from("@SUM(A1)"), String::from("\rcmd")]).unwrap();
            w.flush().unwrap();
        }
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(
            text,
            "\u{feff}name,n\r\n\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",-3\r\n'@SUM(A1),\"'\rcmd\"\r\n"
        );
    }
}
