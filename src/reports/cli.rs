//! `guidedesk report`: the weekly opinion sheet or the monthly analysis report from the kiosk store, as a printable
//! HTML file and, optionally, its tables as CSV files.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::html::{self, DocOptions};
use super::summary::Summary;
use super::tables::{self, Table};
use super::{Lang, Period, ReportParams, source};
use crate::model::Moment;
use crate::store::{Store, StoreError};

/// Arguments of `guidedesk report`.
#[derive(Debug, Clone, clap::Args)]
#[command(group = clap::ArgGroup::new("document").required(true).args(["weekly", "monthly"]))]
pub struct ReportArgs {
    /// The weekly opinion sheet (《医院客户服务意见表》) of the week (Monday–Sunday) containing --date
    #[arg(long)]
    pub weekly: bool,
    /// The monthly analysis report of the month containing --date
    #[arg(long)]
    pub monthly: bool,
    /// A day in the week or month to report on (YYYY-MM-DD) [default: today]
    #[arg(long, value_parser = parse_date)]
    pub date: Option<NaiveDate>,
    /// The HTML file to write
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Also write the document's tables as CSV files (UTF-8 with BOM) into this directory
    #[arg(long, value_name = "DIR")]
    pub csv_dir: Option<PathBuf>,
    /// Language of the document: zh-CN or en
    #[arg(long, default_value = "zh-CN", value_parser = parse_lang)]
    pub lang: Lang,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("{s:?} is not a date in the form YYYY-MM-DD"))
}

fn parse_lang(s: &str) -> Result<Lang, String> {
    Lang::parse(s).ok_or_else(|| format!("{s:?} is not a supported language (zh-CN or en)"))
}

/// Which document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// The weekly opinion sheet.
    Weekly,
    /// The monthly analysis report.
    Monthly,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A generated document: its figures, its HTML and its tables.
#[derive(Debug, Clone)]
pub struct Report {
    /// The figures.
    pub summary: Summary,
    /// The HTML document.
    pub html: String,
    /// The tables (also rendered in the HTML), for CSV.
    pub tables: Vec<Table>,
}

/// Builds a document from the store: one streaming pass over the period, then rendering. Figures are as of the
/// store's today; the header shows the store's now.
pub fn generate(store: &Store, kind: DocKind, date: NaiveDate, lang: Lang) -> Result<Report, StoreError> {
    let period = match kind {
        DocKind::Weekly => Period::week_of(date),
        DocKind::Monthly => Period::month_of(date),
    };
    let params = ReportParams::new(period, store.utc_offset(), store.today());
    let agg = source::aggregate(store, params)?;
    let refs = store.reference();
    let summary = agg.finish(&refs);
    Ok(render(summary, &refs, kind, lang, store.now()))
}

/// Renders a document from finished figures (pure).
pub fn render(
    summary: Summary,
    refs: &crate::model::ReferenceData,
    kind: DocKind,
    lang: Lang,
    generated_at: Moment,
) -> Report {
    let opts = DocOptions { lang, generated_at, organisation: None };
    let (html, tables) = match kind {
        DocKind::Weekly => (html::weekly(&summary, refs, &opts), tables::weekly(&summary, refs, lang)),
        DocKind::Monthly => (html::monthly(&summary, refs, &opts), tables::monthly(&summary, refs, lang)),
    };
    Report { summary, html, tables }
}

/// Writes a file through a temporary file beside it, so a failure never leaves a truncated file under the name.
fn write_atomically(path: &Path, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), ReportError> {
    let io = |source| ReportError::Io { path: path.to_path_buf(), source };
    let mut tmp_name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    tmp_name.push(".partial");
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f(&mut w)?;
        w.into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

/// What `guidedesk report` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The HTML file.
    pub html: PathBuf,
    /// The CSV files.
    pub csv: Vec<PathBuf>,
    /// The period's short name.
    pub period: String,
    /// Seconds spent.
    pub seconds: f64,
}

/// Runs `guidedesk report`.
pub fn run(store: &Store, args: &ReportArgs) -> Result<Written, ReportError> {
    let started = std::time::Instant::now();
    let kind = if args.monthly { DocKind::Monthly } else { DocKind::Weekly };
    let report = generate(store, kind, args.date.unwrap_or_else(|| store.today()), args.lang)?;
    write_atomically(&args.out, |w| w.write_all(report.html.as_bytes()))?;
    let mut csv = Vec::new();
    if let Some(dir) = &args.csv_dir {
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.clone(), source })?;
        for t in &report.tables {
            let path = dir.join(format!("{}.csv", t.name));
            write_atomically(&path, |w| t.write_csv(w))?;
            csv.push(path);
        }
    }
    Ok(Written {
        html: args.out.clone(),
        csv,
        period: report.summary.params().period.slug(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
