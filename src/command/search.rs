//! Search over past arrivals and consultations (by phone, name prefix, period and department), run off the UI
//! thread by the app.

use chrono::NaiveDate;

use crate::model::{Arrival, Consultation, Moment, RecordId};
use crate::store::{Store, StoreError};

/// A search over past arrivals and consultations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchQuery {
    /// Phone digits or a name (prefix).
    pub text: String,
    /// First day included.
    pub from: Option<NaiveDate>,
    /// Last day included.
    pub to: Option<NaiveDate>,
    /// Department code.
    pub department: Option<String>,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchHit {
    /// An arrival.
    Arrival(Box<Arrival>),
    /// A consultation.
    Consultation(Box<Consultation>),
}

/// Runs a search against the store (called on a background thread).
pub fn run_search(store: &Store, q: &SearchQuery) -> Result<Vec<SearchHit>, StoreError> {
    use crate::model::RecordKind;
    let offset = store.utc_offset();
    let from = q.from.map_or(Moment(i64::MIN), |d| Moment::start_of_day(d, offset));
    let to = q.to.and_then(|d| d.succ_opt()).map_or(Moment(i64::MAX), |d| Moment::start_of_day(d, offset));
    let text = q.text.trim();
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let is_phone =
        !digits.is_empty() && digits.len() == text.chars().filter(|c| !c.is_whitespace() && *c != '-').count();
    let mut keys: Vec<(RecordKind, RecordId)> = Vec::new();
    if text.is_empty() {
        for kind in [RecordKind::Arrival, RecordKind::Consultation] {
            let lo = if from.0 == i64::MIN { store.now().plus_millis(-7 * 86_400_000) } else { from };
            let mut ids = store.ids_between(kind, lo, to)?;
            ids.reverse();
            ids.truncate(500);
            keys.extend(ids.into_iter().map(|id| (kind, id)));
        }
    } else if is_phone {
        keys = store.find_by_phone(&digits)?;
    } else {
        keys = store.find_by_name_prefix(text, 500)?.into_iter().map(|(_, k, id)| (k, id)).collect();
    }
    let dept = q.department.as_deref();
    let mut hits = Vec::new();
    for (kind, id) in keys {
        match kind {
            RecordKind::Arrival => {
                if let Some(a) = store.get::<Arrival>(id)?
                    && a.arrived_at >= from
                    && a.arrived_at < to
                    && dept.is_none_or(|d| a.department.value == d)
                {
                    hits.push(SearchHit::Arrival(Box::new(a)));
                }
            }
            RecordKind::Consultation => {
                if let Some(c) = store.get::<Consultation>(id)?
                    && c.at >= from
                    && c.at < to
                    && dept.is_none_or(|d| c.referred_department.as_deref() == Some(d))
                {
                    hits.push(SearchHit::Consultation(Box::new(c)));
                }
            }
            _ => {}
        }
    }
    hits.sort_by_key(|h| {
        std::cmp::Reverse(match h {
            SearchHit::Arrival(a) => a.arrived_at,
            SearchHit::Consultation(c) => c.at,
        })
    });
    hits.truncate(500);
    Ok(hits)
}
