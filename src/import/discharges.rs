//! Discharge lists from the hospital's HIS (出院病人名单) → inpatient follow-up call tasks (回访).
//!
//! Columns are found by their header text, whatever their order; Chinese and English variants are accepted, with
//! spaces, case, a trailing `*` or `:` and a bracketed note (`出院日期(yyyy-mm-dd)`) ignored:
//!
//! | field | required | headers (any of) |
//! |---|---|---|
//! | admission number (HIS key) | yes | 住院号, 住院号码, 住院编号, 住院流水号, 病案号, 病历号, admission no, inpatient no, MRN |
//! | name | yes | 姓名, 患者姓名, 病人姓名, 患者, 病人, name, patient name, patient |
//! | phone | yes | 手机, 手机号, 手机号码, 联系电话, 电话, 电话号码, 联系方式, 患者电话, 联系人电话, mobile, phone, telephone, tel, contact phone |
//! | department | yes | 出院科室, 科室, 科别, 所在科室, 住院科室, 病区, 出院病区, department, dept, ward |
//! | discharge date | yes | 出院日期, 出院时间, 出院日, discharge date, discharged, date of discharge |
//! | diagnosis | no | 出院诊断, 诊断, 主要诊断, 出院主要诊断, 诊断名称, 疾病名称, diagnosis, discharge diagnosis |
//!
//! The header row is the row, among the first ten non-empty ones, that names the most of these (so a title line
//! above the header is fine). When a file has several phone (or diagnosis) columns, the first non-empty one in the
//! order above is used for each row. Each good row becomes one [`FollowupTask`] with a
//! [`FollowupSource::Discharge`] source; its call window comes from [`policy::discharge_window`].

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use chrono::NaiveDate;

use super::table::{self, Row, Source, Table, Value, clean};
use super::{ImportError, ImportReport, Limits, RowError, shorten};
use crate::command::calls::{CHRONIC_FIRST, PlannedTask, put_task_once_as};
use crate::model::followup::open_status;
use crate::model::reference::Department;
use crate::model::validate::{self, Problem, limits};
use crate::model::{FollowupSource, FollowupTask, Lww, RecordId, ReferenceData, StaffRef};
use crate::policy;
use crate::store::Store;

/// The creator recorded on tasks when no staff id is given.
pub const DEFAULT_CREATOR: &str = "import";

/// A column of the discharge list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The HIS's admission number (住院号), the key that makes re-imports idempotent.
    AdmissionNo,
    /// Patient name.
    Name,
    /// Phone to call.
    Phone,
    /// Department discharged from.
    Department,
    /// Discharge date.
    DischargeDate,
    /// Discharge diagnosis (optional).
    Diagnosis,
}

impl Field {
    /// Every field, in report order.
    pub const ALL: [Field; 6] =
        [Field::AdmissionNo, Field::Name, Field::Phone, Field::Department, Field::DischargeDate, Field::Diagnosis];

    /// English label used in messages.
    pub fn label(self) -> &'static str {
        match self {
            Field::AdmissionNo => "admission number",
            Field::Name => "name",
            Field::Phone => "phone",
            Field::Department => "department",
            Field::DischargeDate => "discharge date",
            Field::Diagnosis => "diagnosis",
        }
    }

    /// Whether a file without this column is refused.
    pub fn required(self) -> bool {
        self != Field::Diagnosis
    }

    /// Accepted header texts in [`normalize_header`] form, most preferred first.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::AdmissionNo => &[
                "住院号",
                "住院号码",
                "住院编号",
                "住院流水号",
                "病案号",
                "病历号",
                "admissionno",
                "admissionnumber",
                "admissionid",
                "inpatientno",
                "inpatientnumber",
                "mrn",
                "medicalrecordno",
                "medicalrecordnumber",
                "hiskey",
            ],
            Field::Name => &["姓名", "患者姓名", "病人姓名", "患者", "病人", "name", "patientname", "patient"],
            Field::Phone => &[
                "手机",
                "手机号",
                "手机号码",
                "联系电话",
                "电话",
                "电话号码",
                "联系方式",
                "患者电话",
                "病人电话",
                "联系人电话",
                "mobile",
                "mobilephone",
                "mobileno",
                "cellphone",
                "phone",
                "phoneno",
                "phonenumber",
                "telephone",
                "tel",
                "contactphone",
                "contact",
            ],
            Field::Department => &[
                "出院科室",
                "科室",
                "科别",
                "所在科室",
                "住院科室",
                "病区",
                "出院病区",
                "department",
                "dept",
                "dischargedepartment",
                "ward",
            ],
            Field::DischargeDate => &[
                "出院日期",
                "出院时间",
                "出院日",
                "dischargedate",
                "dischargedon",
                "discharged",
                "dateofdischarge",
                "dischargetime",
            ],
            Field::Diagnosis => &[
                "出院诊断",
                "诊断",
                "主要诊断",
                "出院主要诊断",
                "诊断名称",
                "疾病名称",
                "diagnosis",
                "dischargediagnosis",
                "primarydiagnosis",
            ],
        }
    }

    /// A few accepted headers, for messages.
    fn examples(self) -> &'static str {
        match self {
            Field::AdmissionNo => "住院号/病案号/admission no",
            Field::Name => "姓名/患者姓名/name",
            Field::Phone => "电话/联系电话/手机/phone",
            Field::Department => "科室/出院科室/department",
            Field::DischargeDate => "出院日期/discharge date",
            Field::Diagnosis => "诊断/出院诊断/diagnosis",
        }
    }

    /// Whether a row falls back to the next matching column when the preferred one is empty.
    fn falls_back(self) -> bool {
        matches!(self, Field::Phone | Field::Diagnosis)
    }
}

/// A header text reduced for matching: surrounding and inner whitespace, `_ - . # : * /` and a trailing bracketed
/// note removed, lower case.
pub fn normalize_header(raw: &str) -> String {
    let t = clean(raw);
    let cut = t.find(['(', '（', '[', '【']).filter(|&i| i > 0).unwrap_or(t.len());
    t[..cut]
        .chars()
        .filter(|c| {
            !c.is_whitespace() && !matches!(c, '_' | '-' | '.' | '#' | ':' | '：' | '*' | '/' | '\u{feff}' | '\u{200b}')
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The field a header names and its preference rank, if any.
pub fn match_header(raw: &str) -> Option<(Field, usize)> {
    let n = normalize_header(raw);
    if n.is_empty() {
        return None;
    }
    Field::ALL.into_iter().find_map(|f| f.aliases().iter().position(|a| *a == n).map(|rank| (f, rank)))
}

/// Which columns hold each field, most preferred first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnMap {
    columns: HashMap<Field, Vec<usize>>,
}

impl ColumnMap {
    /// Maps a header row's texts.
    pub fn from_headers(headers: &[String]) -> Self {
        let mut ranked: HashMap<Field, Vec<(usize, usize)>> = HashMap::new();
        for (col, h) in headers.iter().enumerate() {
            if let Some((f, rank)) = match_header(h) {
                ranked.entry(f).or_default().push((rank, col));
            }
        }
        let columns = ranked
            .into_iter()
            .map(|(f, mut v)| {
                v.sort_unstable();
                (f, v.into_iter().map(|(_, c)| c).collect())
            })
            .collect();
        ColumnMap { columns }
    }

    /// The columns of a field, most preferred first (empty when the file lacks it).
    pub fn columns(&self, f: Field) -> &[usize] {
        self.columns.get(&f).map_or(&[], Vec::as_slice)
    }

    /// How many fields were found.
    pub fn found(&self) -> usize {
        self.columns.len()
    }

    fn missing(&self) -> Vec<Field> {
        Field::ALL.into_iter().filter(|f| f.required() && self.columns(*f).is_empty()).collect()
    }
}

/// One good row of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discharge {
    /// The row's line.
    pub line: u32,
    /// Admission number.
    pub his_key: String,
    /// Patient name.
    pub name: String,
    /// Normalised phone digits.
    pub phone: String,
    /// Department code.
    pub department: String,
    /// Discharge date.
    pub discharged_on: NaiveDate,
    /// Diagnosis.
    pub diagnosis: Option<String>,
}

/// A list read and checked, before anything is written.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedList {
    /// How the file was read.
    pub source: Source,
    /// The header row's line.
    pub header_line: u32,
    /// The good rows, in line order.
    pub discharges: Vec<Discharge>,
    /// The bad rows, in line order.
    pub errors: Vec<RowError>,
}

/// Reads and checks a discharge list (CSV or XLSX bytes) against the reference data. `today` is the site's date
/// (discharge dates after it are refused).
pub fn parse(
    bytes: &[u8],
    sheet: Option<&str>,
    refs: &ReferenceData,
    today: NaiveDate,
    limits: &Limits,
) -> Result<ParsedList, ImportError> {
    parse_table(&table::read_table(bytes, sheet, limits)?, refs, today, limits)
}

/// Checks the rows of a table already read.
pub fn parse_table(
    table: &Table,
    refs: &ReferenceData,
    today: NaiveDate,
    limits: &Limits,
) -> Result<ParsedList, ImportError> {
    let header_idx = find_header(&table.rows).ok_or(ImportError::NoHeader)?;
    let header = &table.rows[header_idx];
    let headers: Vec<String> = header.cells.iter().map(|c| c.to_text().unwrap_or_default()).collect();
    let map = ColumnMap::from_headers(&headers);
    let missing = map.missing();
    if !missing.is_empty() {
        return Err(ImportError::MissingColumns {
            missing: missing.iter().map(|f| format!("{} ({})", f.label(), f.examples())).collect(),
            found: headers.iter().filter(|h| !clean(h).is_empty()).take(30).map(|h| shorten(clean(h), 30)).collect(),
            line: header.line,
        });
    }
    let data = &table.rows[header_idx + 1..];
    if data.len() > limits.max_rows {
        return Err(ImportError::TooManyRows { max: limits.max_rows });
    }
    let mut out = ParsedList {
        source: table.source.clone(),
        header_line: header.line,
        discharges: Vec::new(),
        errors: Vec::new(),
    };
    let departments = Departments::new(refs);
    let mut seen: HashMap<String, u32> = HashMap::new();
    for row in data {
        if Field::ALL.iter().all(|f| map.columns(*f).iter().all(|c| row.cell(*c).is_blank())) {
            continue;
        }
        match check_row(row, &map, &departments, today, &mut seen) {
            Ok(d) => out.discharges.push(d),
            Err(problems) => out.errors.push(RowError { line: row.line, message: problems.join("; ") }),
        }
    }
    Ok(out)
}

/// The index of the header row: among the first non-empty rows, the one naming the most fields (the first on ties).
fn find_header(rows: &[Row]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, row) in rows.iter().take(table::HEADER_SEARCH_ROWS).enumerate() {
        let headers: Vec<String> = row.cells.iter().map(|c| c.to_text().unwrap_or_default()).collect();
        let n = ColumnMap::from_headers(&headers).found();
        if best.is_none_or(|(_, m)| n > m) {
            best = Some((i, n));
        }
    }
    best.map(|(i, _)| i)
}

/// A field's text in a row: the first column (or, for fields that fall back, the first non-blank one); `Err` with a
/// message when the cell holds no usable value (a spreadsheet error).
fn field_text(row: &Row, map: &ColumnMap, f: Field) -> Result<String, String> {
    let cols = map.columns(f);
    let take = if f.falls_back() { cols.len() } else { 1 };
    for &c in cols.iter().take(take) {
        let v = row.cell(c);
        if v.is_blank() {
            continue;
        }
        return v.to_text().map_err(|e| format!("{} cell holds {e}", f.label()));
    }
    Ok(String::new())
}

fn check_row(
    row: &Row,
    map: &ColumnMap,
    departments: &Departments<'_>,
    today: NaiveDate,
    seen: &mut HashMap<String, u32>,
) -> Result<Discharge, Vec<String>> {
    let mut problems = Vec::new();
    let mut text = |f: Field| match field_text(row, map, f) {
        Ok(t) => Some(t),
        Err(m) => {
            problems.push(m);
            None
        }
    };
    let (key, name, phone, dept, diagnosis) = (
        text(Field::AdmissionNo),
        text(Field::Name),
        text(Field::Phone),
        text(Field::Department),
        text(Field::Diagnosis),
    );

    let his_key = key.and_then(|k| plain_text(&mut problems, Field::AdmissionNo, &k, limits::NAME, true));
    if let Some(k) = &his_key {
        if let Some(first) = seen.get(k) {
            problems.push(format!("admission number {:?} also appears on line {first}", shorten(k, 40)));
        } else {
            seen.insert(k.clone(), row.line);
        }
    }
    let name = name.and_then(|n| plain_text(&mut problems, Field::Name, &n, limits::NAME, true));
    let phone = phone.and_then(|p| {
        if p.is_empty() {
            problems.push("phone is required".into());
            return None;
        }
        validate::normalize_phone(&p).map_err(|e| problems.push(format!("phone {:?} {e}", shorten(&p, 30)))).ok()
    });
    let department = dept.and_then(|d| {
        if d.is_empty() {
            problems.push("department is required".into());
            return None;
        }
        let found = departments.find(&d).map(|dep| dep.id.clone());
        if found.is_none() {
            problems.push(format!("department {:?} is not a department of this hospital", shorten(&d, 30)));
        }
        found
    });
    let discharged_on = match discharge_date(row, map) {
        Ok(Some(d)) if d > today => {
            problems.push(format!("discharge date {d} is after today ({today})"));
            None
        }
        Ok(Some(d)) if d < earliest() => {
            problems.push(format!("discharge date {d} is before {}: check the date", earliest()));
            None
        }
        Ok(d) => d,
        Err(m) => {
            problems.push(m);
            None
        }
    };
    let diagnosis = diagnosis.and_then(|d| plain_text(&mut problems, Field::Diagnosis, &d, limits::LONG, false));
    match (his_key, name, phone, department, discharged_on) {
        (Some(his_key), Some(name), Some(phone), Some(department), Some(discharged_on)) if problems.is_empty() => {
            Ok(Discharge { line: row.line, his_key, name, phone, department, discharged_on, diagnosis })
        }
        _ => Err(problems),
    }
}

/// The earliest discharge date accepted; older dates are almost always a misread cell.
fn earliest() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// A checked text value (`None` when empty and not required, or when bad).
///
/// Text that a spreadsheet could read as a formula is refused with the rule every CSV export uses
/// ([`crate::csv_safe::looks_like_formula`]): after trimming, a first character `=`, `+`, `-`, `@` (a leading tab or
/// carriage return is trimmed away, and what follows is checked), unless the whole value is a plain number such as
/// `-3`. It is checked on the free-text columns only (admission number, name, diagnosis): a phone goes through
/// [`validate::normalize_phone`], which keeps digits only (so `+86 138…` is fine), a department must match the
/// reference data and a date must parse, so no formula can reach a record through them. An optional cell made only
/// of hyphens (`-`, `--`, the HIS's "none") is read as empty rather than refused.
fn plain_text(problems: &mut Vec<String>, f: Field, raw: &str, max: usize, required: bool) -> Option<String> {
    if !required && !raw.trim().is_empty() && raw.trim().chars().all(|c| c == '-') {
        return None;
    }
    let mut e = validate::ValidationErrors::default();
    let t = validate::text(&mut e, f.label(), raw, max, required);
    if let Some(err) = e.0.first() {
        problems.push(match &err.problem {
            Problem::Required => format!("{} is required", f.label()),
            p => format!("{} {:?} {p}", f.label(), shorten(&t, 30)),
        });
        return None;
    }
    if crate::csv_safe::looks_like_formula(&t) {
        problems.push(format!("{} {:?} looks like a spreadsheet formula, not a value", f.label(), shorten(&t, 30)));
        return None;
    }
    (!t.is_empty()).then_some(t)
}

/// The discharge date of a row: `Ok(None)` only when a problem was already impossible (never for a required
/// column); a message when the cell is empty or not a date.
fn discharge_date(row: &Row, map: &ColumnMap) -> Result<Option<NaiveDate>, String> {
    let label = Field::DischargeDate.label();
    let Some(&col) = map.columns(Field::DischargeDate).first() else { return Ok(None) };
    match row.cell(col) {
        v if v.is_blank() => Err(format!("{label} is required")),
        Value::Date(d) => Ok(Some(*d)),
        Value::Number(n) => number_date(*n)
            .map(Some)
            .ok_or_else(|| format!("{label} {n} is not a date (expected a date cell, or a number such as 20261120)")),
        Value::Error(e) => Err(format!("{label} cell holds {e}")),
        Value::Text(t) => parse_date_text(t).map(Some).ok_or_else(|| {
            format!(
                "{label} {:?} is not a date (use 2026-11-20, 2026/11/20, 2026年11月20日 or 20261120)",
                shorten(clean(t), 30)
            )
        }),
        Value::Empty => Err(format!("{label} is required")),
    }
}

/// A number cell as a date: `YYYYMMDD` written as a number, or an Excel serial date (1900 system).
pub fn number_date(n: f64) -> Option<NaiveDate> {
    if n.fract() == 0.0 && (19_000_101.0..=99_991_231.0).contains(&n) {
        return parse_date_text(&format!("{}", n as i64));
    }
    table::excel_serial_date(n)
}

/// Parses a date written as `2026-11-20`, `2026/11/20`, `2026.11.20`, `2026年11月20日` (month and day may have one
/// digit) or `20261120`; a time after the date (`2026/11/20 10:30`) is ignored.
pub fn parse_date_text(raw: &str) -> Option<NaiveDate> {
    let t = clean(raw);
    let date = t.split(|c: char| c.is_whitespace() || c == 'T').next()?;
    let ymd = |y: &str, m: &str, d: &str| -> Option<NaiveDate> {
        let digits = |s: &str, lens: std::ops::RangeInclusive<usize>| {
            (lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u32>().ok()).flatten()
        };
        let (y, m, d) = (digits(y, 4..=4)?, digits(m, 1..=2)?, digits(d, 1..=2)?);
        NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)
    };
    if let Some((y, rest)) = date.split_once('年') {
        let (m, d) = rest.split_once('月')?;
        let d = d.strip_suffix('日').or_else(|| d.strip_suffix('号')).unwrap_or(d);
        return ymd(y, m, d);
    }
    if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) {
        return ymd(&date[..4], &date[4..6], &date[6..]);
    }
    for sep in ['-', '/', '.'] {
        let parts: Vec<&str> = date.split(sep).collect();
        if let [y, m, d] = parts[..] {
            return ymd(y, m, d);
        }
    }
    None
}

/// The department a list names: by code, Chinese or English name (case and spaces ignored), also with a trailing
/// 病区/病房 (ward) removed.
pub fn find_department<'a>(refs: &'a ReferenceData, raw: &str) -> Option<&'a Department> {
    Departments::new(refs).find(raw)
}

/// The reference departments indexed by every name a list may use for them.
struct Departments<'a>(HashMap<String, &'a Department>);

impl<'a> Departments<'a> {
    fn new(refs: &'a ReferenceData) -> Self {
        let mut by = HashMap::new();
        // Codes win over Chinese names, which win over English names, should two departments share a spelling.
        for key in [|d: &Department| d.id.clone(), |d: &Department| d.name.clone(), |d: &Department| d.name_en.clone()]
        {
            for d in &refs.departments {
                let k = squash(&key(d));
                if !k.is_empty() {
                    by.entry(k).or_insert(d);
                }
            }
        }
        Departments(by)
    }

    fn find(&self, raw: &str) -> Option<&'a Department> {
        let key = squash(raw);
        self.0.get(&key).copied().or_else(|| {
            ["病区", "病房"]
                .iter()
                .find_map(|s| key.strip_suffix(s).filter(|k| !k.is_empty()).and_then(|k| self.0.get(k).copied()))
        })
    }
}

/// Lower case without whitespace.
fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The XLSX sheet to read (the first when `None`).
    pub sheet: Option<String>,
    /// The staff id recorded as the tasks' creator ([`DEFAULT_CREATOR`] when `None`).
    pub staff: Option<String>,
    /// Caps.
    pub limits: Limits,
}

/// Reads a file (refusing one larger than the limit before reading it all) and imports it.
pub fn import_file(store: &Store, path: &Path, opts: &ImportOptions) -> Result<ImportReport, ImportError> {
    let io = |source| ImportError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().is_ok_and(|m| m.len() > opts.limits.max_file_bytes) {
        return Err(ImportError::TooLarge { max: opts.limits.max_file_bytes });
    }
    let mut bytes = Vec::new();
    file.take(opts.limits.max_file_bytes.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
    import(store, &bytes, opts)
}

/// Imports a discharge list: every good row that no earlier import created becomes a follow-up task, all in one
/// store transaction (each with its outbox entry).
pub fn import(store: &Store, bytes: &[u8], opts: &ImportOptions) -> Result<ImportReport, ImportError> {
    let creator = match opts.staff.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_CREATOR.to_string(),
        Some(id) => {
            if !store.all_staff()?.iter().any(|s| s.id == id) {
                return Err(ImportError::UnknownStaff(id.to_string()));
            }
            id.to_string()
        }
    };
    let refs = store.reference();
    let parsed = parse(bytes, opts.sheet.as_deref(), &refs, store.today(), &opts.limits)?;
    write(store, parsed, &StaffRef(creator))
}

/// Writes the good rows of a checked list in one transaction, skipping those already imported.
pub fn write(store: &Store, parsed: ParsedList, creator: &StaffRef) -> Result<ImportReport, ImportError> {
    let ParsedList { source, header_line, discharges, errors } = parsed;
    let (imported, already_imported, calls) = store.write(|ctx| {
        let window = ctx.reference().followup_policy.clone();
        let (mut imported, mut already, mut calls) = (0, 0, 0);
        for d in discharges {
            let source = FollowupSource::Discharge {
                his_key: d.his_key.clone(),
                discharged_on: d.discharged_on,
                diagnosis: d.diagnosis.clone(),
            };
            let known = ctx.followup_by_source(&source.dedup_key())?;
            let first_id = match known {
                Some(id) => id,
                None => ctx.new_id(),
            };
            // The second call (7–15 days, by policy) is its own task, made with the first; a chronic diagnosis (by
            // the policy's list) puts the patient on the chronic plan's first round (2–4 weeks), under the id every
            // desk derives from the first call's task.
            let planned = |source, window| PlannedTask {
                source,
                patient_name: d.name.clone(),
                phone: d.phone.clone(),
                department: Some(d.department.clone()),
                window,
            };
            if let Some(w) = policy::discharge_second_window(&window, &d.department, d.discharged_on) {
                let second =
                    FollowupSource::DischargeSecond { his_key: d.his_key.clone(), discharged_on: d.discharged_on };
                let id = ctx.new_id();
                if put_task_once_as(ctx, id, planned(second, w), creator)? {
                    calls += 1;
                }
            }
            if let Some(plan) = &window.chronic
                && d.diagnosis.as_deref().is_some_and(|g| plan.matches(g))
            {
                let chronic =
                    FollowupSource::Chronic { his_key: d.his_key.clone(), discharged_on: d.discharged_on, round: 1 };
                let w = policy::chronic_first_window(plan, d.discharged_on, ctx.today());
                let id = RecordId::derived(CHRONIC_FIRST, first_id);
                if put_task_once_as(ctx, id, planned(chronic, w), creator)? {
                    calls += 1;
                }
            }
            if known.is_some() {
                already += 1;
                continue;
            }
            let (due_from, due_to) = policy::discharge_window(&window, &d.department, d.discharged_on);
            let stamp = ctx.stamp();
            let task = FollowupTask {
                id: first_id,
                created_at: ctx.now(),
                created_by: creator.clone(),
                source,
                patient_name: d.name,
                phone: d.phone,
                department: Some(d.department),
                inpatient: true,
                due_from,
                due_to,
                status: open_status(stamp),
                closed_at: Lww::new(None, stamp),
            };
            ctx.put(&task)?;
            imported += 1;
            calls += 1;
        }
        Ok((imported, already, calls))
    })?;
    Ok(ImportReport { imported, already_imported, calls, errors, source: source.to_string(), header_line })
}

/// `guidedesk import-discharges`: imports the file and prints a summary and one line per bad row to `out`.
/// A file-level problem is returned as an error (nothing written); bad rows are not errors.
pub fn run_cli(
    store: &Store,
    path: &Path,
    sheet: Option<String>,
    staff: Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<ImportReport> {
    let opts = ImportOptions { sheet, staff, limits: Limits::DEFAULT };
    let report = import_file(store, path, &opts).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let rows = |n: usize| if n == 1 { "row" } else { "rows" };
    writeln!(out, "{}: {}, header on line {}", path.display(), report.source, report.header_line)?;
    writeln!(
        out,
        "imported {} new {} ({} follow-up {}); {} {} already imported (skipped); {} {} with errors",
        report.imported,
        if report.imported == 1 { "discharge" } else { "discharges" },
        report.calls,
        if report.calls == 1 { "call" } else { "calls" },
        report.already_imported,
        rows(report.already_imported),
        report.errors.len(),
        rows(report.errors.len()),
    )?;
    for e in &report.errors {
        writeln!(out, "{e}")?;
    }
    if !report.errors.is_empty() {
        writeln!(
            out,
            "{} {} not imported: correct {} in the file and import it again (rows already imported are skipped)",
            report.errors.len(),
            if report.errors.len() == 1 { "row was" } else { "rows were" },
            if report.errors.len() == 1 { "it" } else { "them" },
        )?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
