//! Imports of files exported by other hospital systems (the HIS), written through the store like any other record.
//!
//! [`table`] turns the bytes of a CSV file (UTF-8 with or without BOM, UTF-16 with BOM, GBK/GB18030) or an XLSX
//! workbook into rows of cells, each with the line number a person sees in Excel or WPS (the header is usually line
//! 1). An importer such as [`discharges`] maps the columns by their header text, validates each row and writes every
//! good row of one file in a single store transaction. A bad row never stops the others: it is reported with its
//! line number and reason. Problems with the file as a whole (unreadable, too large, wrong format, a required column
//! missing) are an [`ImportError`] and nothing is written.
//!
//! Hostile input is expected: sizes, rows and the unpacked size of a workbook are capped ([`Limits`]), binary data
//! and unknown encodings are refused with a clear message, and nothing here panics on any input.

pub mod discharges;
pub mod table;

use std::fmt;
use std::path::PathBuf;

use crate::store::StoreError;

/// Caps that bound the work and memory an import may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted file, in bytes.
    pub max_file_bytes: u64,
    /// Most data rows (below the header) in one file.
    pub max_rows: usize,
    /// Largest total unpacked size of an XLSX workbook's parts, in bytes (zip bombs).
    pub max_unpacked_bytes: u64,
    /// Columns beyond this many are ignored.
    pub max_columns: usize,
}

impl Limits {
    /// The limits the CLI and the desk use: 20 MB, 100 000 rows, 256 MB unpacked, 1 000 columns.
    pub const DEFAULT: Limits =
        Limits { max_file_bytes: 20 * MB, max_rows: 100_000, max_unpacked_bytes: 256 * MB, max_columns: 1_000 };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

const MB: u64 = 1024 * 1024;

/// One row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The row's line number as a spreadsheet shows it (the header row is usually line 1).
    pub line: u32,
    /// What is wrong, in English (several problems are joined with `; `).
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// Rows imported (discharges new to the store).
    pub imported: usize,
    /// Follow-up calls put on the worklist (a discharge makes one per round of the policy).
    pub calls: usize,
    /// Good rows skipped because an earlier import already created their record.
    pub already_imported: usize,
    /// Rows not imported, in line order.
    pub errors: Vec<RowError>,
    /// How the file was read, e.g. `CSV, GBK/GB18030` or `XLSX, sheet "出院名单"`.
    pub source: String,
    /// The line of the header row.
    pub header_line: u32,
}

/// Why a file could not be imported at all. Nothing is written when one of these is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read the file: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than [`Limits::max_file_bytes`].
    #[error("the file is larger than {} (the most accepted); split the list into smaller files", human_bytes(*max))]
    TooLarge {
        /// The limit in bytes.
        max: u64,
    },
    /// The file has no bytes.
    #[error("the file is empty")]
    Empty,
    /// The file holds binary data: neither a text (CSV) file nor an XLSX workbook.
    #[error(
        "the file is not a CSV text file or an XLSX workbook (it contains binary data at byte {offset}); export the \
         list from the HIS as CSV or XLSX"
    )]
    Binary {
        /// Where the first binary byte is.
        offset: usize,
    },
    /// The text is in an encoding that is not supported.
    #[error(
        "the file is not text in UTF-8, UTF-16 or GBK/GB18030 (invalid byte sequence near byte {offset}); save it \
         from Excel or WPS as \"CSV UTF-8\" or as an .xlsx workbook"
    )]
    Encoding {
        /// Where decoding failed.
        offset: usize,
    },
    /// An old binary Excel workbook.
    #[error("the file is an old Excel .xls workbook, which is not supported; save it as .xlsx or CSV and import that")]
    Xls,
    /// The CSV text cannot be split into rows.
    #[error("the CSV text cannot be parsed: {0}")]
    Csv(String),
    /// The XLSX workbook is damaged or not a workbook.
    #[error("the XLSX workbook cannot be read: {0}")]
    Xlsx(String),
    /// The XLSX workbook unpacks to more than [`Limits::max_unpacked_bytes`].
    #[error(
        "the XLSX workbook unpacks to more than {} (the most accepted); it is either damaged or far larger than a \
         discharge list",
        human_bytes(*max)
    )]
    Unpacked {
        /// The limit in bytes.
        max: u64,
    },
    /// The workbook has no sheet of that name.
    #[error("the workbook has no sheet named {name:?}; its sheets are: {}", quoted_list(available))]
    SheetNotFound {
        /// The name asked for.
        name: String,
        /// The sheets the workbook has.
        available: Vec<String>,
    },
    /// The workbook has no worksheet.
    #[error("the workbook has no worksheet")]
    NoSheets,
    /// A sheet was named for a CSV file.
    #[error("--sheet applies only to XLSX workbooks, and this file is CSV text")]
    SheetForCsv,
    /// More data rows than [`Limits::max_rows`].
    #[error(
        "the file has more than {max} data rows (the most accepted in one file); split the list into smaller files"
    )]
    TooManyRows {
        /// The limit.
        max: usize,
    },
    /// Nothing but empty rows.
    #[error("the file has no header row: every row is empty")]
    NoHeader,
    /// Required columns are missing from the header row.
    #[error(
        "required column(s) missing: {}. The header row (line {line}) has: {}",
        missing.join("; "),
        if found.is_empty() { "no column names".to_string() } else { quoted_list(found) }
    )]
    MissingColumns {
        /// Each missing column with the header texts accepted for it.
        missing: Vec<String>,
        /// The header texts found (shortened).
        found: Vec<String>,
        /// The header row's line.
        line: u32,
    },
    /// The staff id given as the importer is not an account on this kiosk.
    #[error("no staff account with id {0:?} on this kiosk")]
    UnknownStaff(String),
    /// The store failed; the transaction was rolled back.
    #[error("the import was not saved (nothing was written): {0}")]
    Store(#[from] StoreError),
}

fn human_bytes(n: u64) -> String {
    if n >= MB && n.is_multiple_of(MB) { format!("{} MB", n / MB) } else { format!("{n} bytes") }
}

fn quoted_list(items: &[String]) -> String {
    items.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
}

/// A value shortened for a message: at most `max` characters, with `…` when cut; control characters escaped by the
/// `{:?}` formatting callers use.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}
