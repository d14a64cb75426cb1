//! Reading a CSV file or an XLSX worksheet into rows of cells, with spreadsheet line numbers.
//!
//! The format is recognised from the content, never from the file name: a zip archive is an XLSX workbook, an OLE
//! compound file is an old `.xls`, anything else must be text. Text is decoded by its byte-order mark (UTF-8,
//! UTF-16LE/BE), else as UTF-8 when it is valid UTF-8, else as GB18030 (a superset of GBK, which Excel and WPS on
//! Chinese Windows use for "CSV"). The CSV delimiter is a comma unless the first line has more tabs or semicolons.

use std::io::{Cursor, Read};

use calamine::{DataRef, Reader, Xlsx};
use chrono::NaiveDate;

use super::{ImportError, Limits, shorten};

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Nothing in the cell.
    Empty,
    /// Text (every CSV cell, and text cells of a workbook).
    Text(String),
    /// A number cell of a workbook (not formatted as a date).
    Number(f64),
    /// A date or date-time cell of a workbook (the time part dropped).
    Date(NaiveDate),
    /// A workbook cell that holds no usable value: an error (`#N/A`, `#REF!`…), usually a formula's result, a formula
    /// never computed, or an impossible date. The text describes it (`the spreadsheet error #N/A`).
    Error(String),
}

impl Value {
    /// Whether the cell is empty or only whitespace.
    pub fn is_blank(&self) -> bool {
        match self {
            Value::Empty => true,
            Value::Text(t) => clean(t).is_empty(),
            _ => false,
        }
    }

    /// The cell as text: numbers that are whole are written without a fraction (phone and admission numbers stored
    /// as numbers), dates as `YYYY-MM-DD`. A cell without a usable value gives `Err` with its description.
    pub fn to_text(&self) -> Result<String, String> {
        match self {
            Value::Empty => Ok(String::new()),
            Value::Text(t) => Ok(clean(t).to_string()),
            Value::Number(n) => Ok(number_text(*n)),
            Value::Date(d) => Ok(d.format("%Y-%m-%d").to_string()),
            Value::Error(e) => Err(e.clone()),
        }
    }
}

/// Text without surrounding whitespace (including the ideographic space), byte-order marks and zero-width spaces.
pub fn clean(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || matches!(c, '\u{feff}' | '\u{200b}'))
}

/// A whole number without a fraction, other numbers as Rust prints them.
fn number_text(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { format!("{n}") }
}

/// One non-empty row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The line number a spreadsheet shows for this row.
    pub line: u32,
    /// The cells, from the first column.
    pub cells: Vec<Value>,
}

impl Row {
    /// The cell in a column (`Empty` past the end).
    pub fn cell(&self, col: usize) -> &Value {
        self.cells.get(col).unwrap_or(&Value::Empty)
    }
}

/// The kind of file read and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// CSV text.
    Csv {
        /// The encoding found (`UTF-8`, `UTF-8 with BOM`, `UTF-16LE`, `GBK/GB18030`…).
        encoding: &'static str,
        /// The delimiter.
        delimiter: u8,
    },
    /// An XLSX worksheet.
    Xlsx {
        /// The sheet's name.
        sheet: String,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Csv { encoding, delimiter: b'\t' } => write!(f, "tab-separated text, {encoding}"),
            Source::Csv { encoding, delimiter: b';' } => write!(f, "CSV (semicolons), {encoding}"),
            Source::Csv { encoding, .. } => write!(f, "CSV, {encoding}"),
            Source::Xlsx { sheet } => write!(f, "XLSX, sheet {sheet:?}"),
        }
    }
}

/// A file's non-empty rows, in line order.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// How the file was read.
    pub source: Source,
    /// The rows that have at least one non-blank cell.
    pub rows: Vec<Row>,
}

/// Rows above the header that may hold a title; also the rows searched for the header.
pub const HEADER_SEARCH_ROWS: usize = 10;

const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
const OLE_MAGIC: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Reads a CSV file or an XLSX workbook (the first visible worksheet, or `sheet`). At most `limits.max_rows` rows
/// below the header search window are read; more is [`ImportError::TooManyRows`].
pub fn read_table(bytes: &[u8], sheet: Option<&str>, limits: &Limits) -> Result<Table, ImportError> {
    if bytes.is_empty() {
        return Err(ImportError::Empty);
    }
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(ImportError::TooLarge { max: limits.max_file_bytes });
    }
    if bytes.starts_with(ZIP_MAGIC) {
        return read_xlsx(bytes, sheet, limits);
    }
    if bytes.starts_with(OLE_MAGIC) {
        return Err(ImportError::Xls);
    }
    if sheet.is_some() {
        return Err(ImportError::SheetForCsv);
    }
    let (text, encoding) = decode_text(bytes)?;
    read_csv(&text, encoding, limits)
}

/// Decodes text by BOM, as UTF-8, or as GB18030; refuses binary data.
pub fn decode_text(bytes: &[u8]) -> Result<(String, &'static str), ImportError> {
    if let Some((enc, bom_len)) = encoding_rs::Encoding::for_bom(bytes) {
        let body = &bytes[bom_len..];
        // The offset of binary data in the file: `bom_len + scale * unit`.
        let at = |scale: usize| {
            move |e| match e {
                ImportError::Binary { offset } => ImportError::Binary { offset: bom_len + scale * offset },
                e => e,
            }
        };
        if enc == encoding_rs::UTF_8 {
            check_binary(body).map_err(at(1))?;
        }
        let text = enc
            .decode_without_bom_handling_and_without_replacement(body)
            .ok_or_else(|| ImportError::Encoding { offset: bom_len + first_invalid(enc, body) })?
            .into_owned();
        let name = if enc == encoding_rs::UTF_8 {
            "UTF-8 with BOM"
        } else {
            let units: Vec<u16> = text.encode_utf16().collect();
            check_binary(&units).map_err(at(2))?;
            if enc == encoding_rs::UTF_16LE { "UTF-16LE" } else { "UTF-16BE" }
        };
        return Ok((text, name));
    }
    // Without a BOM the text is UTF-8 or GB18030, in which a byte below 0x20 is always that control character.
    check_binary(bytes)?;
    let (text, name) = if let Ok(t) = std::str::from_utf8(bytes) {
        (t.to_string(), "UTF-8")
    } else {
        let enc = encoding_rs::GB18030;
        let t = enc
            .decode_without_bom_handling_and_without_replacement(bytes)
            .ok_or_else(|| ImportError::Encoding { offset: first_invalid(enc, bytes) })?;
        (t.into_owned(), "GBK/GB18030")
    };
    Ok((text, name))
}

/// The byte offset of the first malformed sequence (approximate: the start of the chunk that failed).
fn first_invalid(enc: &'static encoding_rs::Encoding, bytes: &[u8]) -> usize {
    let mut decoder = enc.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(4096);
    let mut read = 0;
    while read < bytes.len() {
        out.clear();
        let (result, n) = decoder.decode_to_string_without_replacement(&bytes[read..], &mut out, true);
        match result {
            encoding_rs::DecoderResult::Malformed(bad, after) => {
                return (read + n).saturating_sub(usize::from(bad) + usize::from(after));
            }
            encoding_rs::DecoderResult::InputEmpty => return bytes.len(),
            encoding_rs::DecoderResult::OutputFull => read += n,
        }
    }
    bytes.len()
}

/// Refuses data that is not text: a NUL, or more than 1 in 100 control characters in the first 64 Ki units (bytes,
/// or characters of decoded UTF-16). The error carries the offset of the first offending unit.
fn check_binary<T: Copy + Into<u32>>(units: &[T]) -> Result<(), ImportError> {
    let is_control = |u: u32| u < 0x20 && !matches!(u, 0x09 | 0x0A | 0x0D | 0x1A) || u == 0x7F;
    if let Some(offset) = units.iter().position(|&u| u.into() == 0) {
        return Err(ImportError::Binary { offset });
    }
    let head = &units[..units.len().min(65_536)];
    let controls = head.iter().filter(|&&u| is_control(u.into())).count();
    if controls > 0 && controls * 100 > head.len() {
        let offset = head.iter().position(|&u| is_control(u.into())).unwrap_or(0);
        return Err(ImportError::Binary { offset });
    }
    Ok(())
}

/// The delimiter the first non-empty line uses most: comma, tab or semicolon.
fn sniff_delimiter(text: &str) -> u8 {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let count = |c: char| line.chars().filter(|&x| x == c).count();
    let (comma, tab, semi) = (count(','), count('\t'), count(';'));
    if tab > comma && tab >= semi {
        b'\t'
    } else if semi > comma && semi > tab {
        b';'
    } else {
        b','
    }
}

/// Parses CSV text (RFC 4180 quoting; rows may have any number of fields).
pub fn read_csv(text: &str, encoding: &'static str, limits: &Limits) -> Result<Table, ImportError> {
    // Line ends are unified first so line numbers count CR-only files too; a line break inside a quoted field is
    // part of one spreadsheet row, so those are subtracted to get the row number Excel shows.
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let delimiter = sniff_delimiter(&text);
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(text.as_bytes());
    let cap = limits.max_rows.saturating_add(HEADER_SEARCH_ROWS);
    let mut rows = Vec::new();
    let mut embedded: u64 = 0;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(ImportError::Csv(e.to_string())),
        }
        // A record's position is where the reader started looking for it, before any empty lines it skipped.
        let (start_line, start_byte) = record.position().map_or((1, 0), |p| (p.line(), p.byte()));
        let skipped = usize::try_from(start_byte)
            .ok()
            .and_then(|b| text.as_bytes().get(b..))
            .map_or(0, |rest| rest.iter().take_while(|&&b| b == b'\n').count() as u64);
        let physical = start_line + skipped;
        let line = u32::try_from(physical.saturating_sub(embedded)).unwrap_or(u32::MAX);
        embedded += record.iter().map(|f| f.matches('\n').count() as u64).sum::<u64>();
        let cells: Vec<Value> = record.iter().take(limits.max_columns).map(|f| Value::Text(f.to_string())).collect();
        if cells.iter().all(Value::is_blank) {
            continue;
        }
        if rows.len() >= cap {
            return Err(ImportError::TooManyRows { max: limits.max_rows });
        }
        rows.push(Row { line, cells });
    }
    Ok(Table { source: Source::Csv { encoding, delimiter }, rows })
}

/// Reads one worksheet of an XLSX workbook.
fn read_xlsx(bytes: &[u8], sheet: Option<&str>, limits: &Limits) -> Result<Table, ImportError> {
    check_unpacked_size(bytes, limits.max_unpacked_bytes)?;
    let mut wb: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|e| xlsx_error(&e))?;
    let names = wb.sheet_names();
    let name = match sheet {
        Some(s) => names
            .iter()
            .find(|n| n.as_str() == s)
            .or_else(|| names.iter().find(|n| n.trim().eq_ignore_ascii_case(s.trim())))
            .cloned()
            .ok_or_else(|| ImportError::SheetNotFound {
                name: shorten(s, 40),
                available: names.iter().take(20).map(|n| shorten(n, 40)).collect(),
            })?,
        // The first sheet a person sees: hidden sheets and chart sheets are passed over.
        None => wb
            .sheets_metadata()
            .iter()
            .find(|m| m.typ == calamine::SheetType::WorkSheet && m.visible == calamine::SheetVisible::Visible)
            .map(|m| m.name.clone())
            .or_else(|| names.first().cloned())
            .ok_or(ImportError::NoSheets)?,
    };
    let cap = limits.max_rows.saturating_add(HEADER_SEARCH_ROWS);
    let mut rows: std::collections::BTreeMap<u32, Vec<(usize, Value)>> = std::collections::BTreeMap::new();
    let mut cells = wb.worksheet_cells_reader(&name).map_err(|e| xlsx_error(&e))?;
    while let Some(cell) = cells.next_cell_with_formula_metadata().map_err(|e| xlsx_error(&e))? {
        let (row, col) = cell.pos;
        let col = col as usize;
        if col >= limits.max_columns {
            continue;
        }
        let value = match &cell.value {
            DataRef::Empty => Value::Empty,
            DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Value::Text(s.clone()),
            DataRef::SharedString(s) => Value::Text((*s).to_string()),
            DataRef::Int(i) => Value::Number(*i as f64),
            DataRef::Float(f) => Value::Number(*f),
            DataRef::Bool(b) => Value::Text(if *b { "TRUE" } else { "FALSE" }.to_string()),
            DataRef::DateTime(dt) if dt.is_datetime() => excel_date(dt.as_f64(), dt),
            DataRef::DateTime(dt) => Value::Number(dt.as_f64()),
            DataRef::Error(e) => Value::Error(format!("the spreadsheet error {e}")),
        };
        let value = match value {
            v if !v.is_blank() => v,
            _ if cell.formula.is_some() => Value::Error(
                "a formula with no saved result (open the file in Excel or WPS, save it and import it again)".into(),
            ),
            _ => continue,
        };
        if !rows.contains_key(&row) && rows.len() >= cap {
            return Err(ImportError::TooManyRows { max: limits.max_rows });
        }
        rows.entry(row).or_default().push((col, value));
    }
    let rows = rows
        .into_iter()
        .map(|(row, mut cells)| {
            cells.sort_by_key(|(c, _)| *c);
            let width = cells.last().map_or(0, |(c, _)| c + 1);
            let mut out = vec![Value::Empty; width];
            for (c, v) in cells {
                out[c] = v;
            }
            Row { line: row.saturating_add(1), cells: out }
        })
        .collect();
    Ok(Table { source: Source::Xlsx { sheet: name }, rows })
}

/// A workbook error as a short message (the reader's messages may quote the file).
fn xlsx_error(e: &calamine::XlsxError) -> ImportError {
    ImportError::Xlsx(shorten(&e.to_string(), 200))
}

/// A date cell's calendar day, or an error value when the serial is outside Excel's range.
fn excel_date(serial: f64, dt: &calamine::ExcelDateTime) -> Value {
    if !(0.0..2_958_466.0).contains(&serial) {
        return Value::Error(format!("a date outside Excel's range (serial number {serial})"));
    }
    let (y, m, d, ..) = dt.to_ymd_hms_milli();
    NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d))
        .map_or_else(|| Value::Error(format!("the date {y}-{m:02}-{d:02}, which does not exist")), Value::Date)
}

/// The calendar day of an Excel serial number in the 1900 date system (the one Windows Excel and WPS use), or `None`
/// outside Excel's range (1900-01-01 to 9999-12-31) and for the 1900-02-29 that only Excel believes in.
pub fn excel_serial_date(serial: f64) -> Option<NaiveDate> {
    if !(1.0..2_958_466.0).contains(&serial) {
        return None;
    }
    let dt = calamine::ExcelDateTime::new(serial, calamine::ExcelDateTimeType::DateTime, false);
    let (y, m, d, ..) = dt.to_ymd_hms_milli();
    NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d))
}

/// Refuses a workbook whose parts unpack to more than `max` bytes, by actually unpacking them (sizes declared in
/// the archive can lie) into nothing; also refuses archives that cannot be unpacked.
fn check_unpacked_size(bytes: &[u8], max: u64) -> Result<(), ImportError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ImportError::Xlsx(format!("not a valid zip archive: {e}")))?;
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| ImportError::Xlsx(format!("damaged archive: {e}")))?;
        if entry.size() > max.saturating_sub(total) {
            return Err(ImportError::Unpacked { max });
        }
        let budget = max - total;
        let n = std::io::copy(&mut (&mut entry).take(budget + 1), &mut std::io::sink()).map_err(|e| {
            let part = entry.name().map(|n| shorten(&n, 60)).unwrap_or_default();
            ImportError::Xlsx(format!("damaged archive part {part:?}: {e}"))
        })?;
        if n > budget {
            return Err(ImportError::Unpacked { max });
        }
        total += n;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lines(t: &Table) -> Vec<u32> {
        t.rows.iter().map(|r| r.line).collect()
    }

    fn texts(r: &Row) -> Vec<String> {
        r.cells.iter().map(|c| c.to_text().unwrap()).collect()
    }

    #[test]
    fn rfc4180_quoting_and_excel_line_numbers() {
        let csv = "a,b,c\r\n\"x, y\",\"two\r\nlines\",\"say \"\"hi\"\"\"\r\n\r\nlast,row,\"\"\r\n";
        let t = read_table(csv.as_bytes(), None, &Limits::DEFAULT).unwrap();
        assert_eq!(lines(&t), [1, 2, 4]);
        assert_eq!(texts(&t.rows[1]), ["x, y", "two\nlines", "say \"hi\""]);
        assert_eq!(texts(&t.rows[2]), ["last", "row", ""]);
        assert_eq!(t.source, Source::Csv { encoding: "UTF-8", delimiter: b',' });
    }

    #[test]
    fn encodings_are_detected() {
        let text = "姓名,电话\n张三,13800138000\n";
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        let (gbk, _, bad) = encoding_rs::GBK.encode(text);
        assert!(!bad);
        let mut utf16 = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        for (bytes, enc) in [
            (text.as_bytes().to_vec(), "UTF-8"),
            (bom, "UTF-8 with BOM"),
            (gbk.into_owned(), "GBK/GB18030"),
            (utf16, "UTF-16LE"),
        ] {
            let t = read_table(&bytes, None, &Limits::DEFAULT).unwrap();
            assert_eq!(t.source, Source::Csv { encoding: enc, delimiter: b',' });
            assert_eq!(texts(&t.rows[1]), ["张三", "13800138000"], "{enc}");
        }
    }

    #[test]
    fn tabs_and_semicolons() {
        let t = read_table("姓名\t电话\n李四\t139 0000 0000\n".as_bytes(), None, &Limits::DEFAULT).unwrap();
        assert_eq!(texts(&t.rows[1]), ["李四", "139 0000 0000"]);
        let t = read_table("a;b\n1;2\n".as_bytes(), None, &Limits::DEFAULT).unwrap();
        assert_eq!(texts(&t.rows[1]), ["1", "2"]);
    }

    #[test]
    fn hostile_files_are_refused_clearly() {
        let e = |b: &[u8]| read_table(b, None, &Limits::DEFAULT).unwrap_err().to_string();
        assert_eq!(e(b""), "the file is empty");
        assert!(e(b"abc\0def").contains("binary data at byte 3"), "{}", e(b"abc\0def"));
        assert!(e(b"\xEF\xBB\xBFab\0").contains("binary data at byte 5"));
        assert!(e(b"\xFF\xFEa\0\0\0").contains("binary data at byte 4"));
        assert!(e(&[0xFF, 0xFF, 0xFF, 0x41]).contains("not text in UTF-8, UTF-16 or GBK"));
        assert!(e(&[0x01, 0x02, 0x03, 0x04, 0x05, b'a']).contains("binary data"));
        assert!(e(OLE_MAGIC).contains(".xls workbook"));
        assert!(e(b"PK\x03\x04garbage").contains("XLSX workbook cannot be read"));
        let small = Limits { max_file_bytes: 10, ..Limits::DEFAULT };
        let err = read_table(b"0123456789ab", None, &small).unwrap_err().to_string();
        assert!(err.contains("larger than 10 bytes"), "{err}");
        let few = Limits { max_rows: 2, ..Limits::DEFAULT };
        let many = "r\n".repeat(20);
        let err = read_table(many.as_bytes(), None, &few).unwrap_err().to_string();
        assert!(err.contains("more than 2 data rows"), "{err}");
        assert!(matches!(read_table(b"a,b\n", Some("x"), &Limits::DEFAULT), Err(ImportError::SheetForCsv)));
    }

    #[test]
    fn excel_serials() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd);
        assert_eq!(excel_serial_date(46_346.0), d(2026, 11, 20));
        assert_eq!(excel_serial_date(46_346.75), d(2026, 11, 20));
        assert_eq!(excel_serial_date(1.0), d(1900, 1, 1));
        assert_eq!(excel_serial_date(61.0), d(1900, 3, 1));
        assert_eq!(excel_serial_date(60.0), None, "1900-02-29 does not exist");
        assert_eq!(excel_serial_date(0.0), None);
        assert_eq!(excel_serial_date(f64::NAN), None);
        assert_eq!(excel_serial_date(3e6), None);
    }

    #[test]
    fn whole_numbers_print_without_fraction() {
        assert_eq!(Value::Number(13_800_138_000.0).to_text().unwrap(), "13800138000");
        assert_eq!(Value::Number(1.5).to_text().unwrap(), "1.5");
        assert_eq!(Value::Text(" \u{3000}张三\u{feff} ".into()).to_text().unwrap(), "张三");
        assert_eq!(Value::Error("#N/A".into()).to_text(), Err("#N/A".into()));
    }
}
