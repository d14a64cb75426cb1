//! User-visible text in Simplified Chinese (default) and English, for the screens and the reports alike.
//!
//! Every string a screen or a report shows lives in `assets/locales/zh-CN.toml` and `assets/locales/en.toml` (flat
//! keys such as `register.name` or `report.doc.summary`, grouped in TOML tables). A test checks both files have
//! exactly the same keys and the same `{placeholders}`. Screens and reports never hold literal text.
//!
//! One language type serves the whole application: [`Language`] (from [`crate::config`]); `reports::Lang` is an
//! alias of it. This module is pure (no GUI), so the reports and HQ use it without the toolkit; `ui::i18n`
//! re-exports it.

use std::collections::HashMap;
use std::sync::LazyLock;

pub use crate::config::Language;

const ZH: &str = include_str!("../assets/locales/zh-CN.toml");
const EN: &str = include_str!("../assets/locales/en.toml");

/// Parsed locale tables.
struct Tables {
    zh: HashMap<String, String>,
    en: HashMap<String, String>,
}

static TABLES: LazyLock<Tables> =
    LazyLock::new(|| Tables { zh: parse(ZH).unwrap_or_default(), en: parse(EN).unwrap_or_default() });

/// Parses a locale file into flat `section.key` → text.
pub fn parse(text: &str) -> Result<HashMap<String, String>, String> {
    let value: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    flatten("", &toml::Value::Table(value), &mut out)?;
    Ok(out)
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut HashMap<String, String>) -> Result<(), String> {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out)?;
            }
            Ok(())
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
            Ok(())
        }
        other => Err(format!("{prefix}: expected text, found {}", other.type_str())),
    }
}

/// The translator for the current language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr {
    /// Current language.
    pub lang: Language,
}

impl Tr {
    /// A translator for a language.
    pub fn new(lang: Language) -> Self {
        Self { lang }
    }

    /// The text for `key`; the key itself if it is missing (tests prevent that).
    pub fn t<'a>(&self, key: &'a str) -> &'a str
    where
        'static: 'a,
    {
        let table = match self.lang {
            Language::ZhCn => &TABLES.zh,
            Language::En => &TABLES.en,
        };
        table.get(key).map_or(key, String::as_str)
    }

    /// The text for `key` with `{name}` placeholders replaced.
    pub fn f(&self, key: &str, args: &[(&str, &dyn std::fmt::Display)]) -> String {
        let mut s = self.t(key).to_string();
        for (name, value) in args {
            s = s.replace(&format!("{{{name}}}"), &value.to_string());
        }
        s
    }

    /// The text for `prefix.key` if the locale has it.
    pub fn k_opt(&self, prefix: &str, key: &str) -> Option<&'static str> {
        let table = match self.lang {
            Language::ZhCn => &TABLES.zh,
            Language::En => &TABLES.en,
        };
        table.get(&format!("{prefix}.{key}")).map(String::as_str)
    }

    /// The text for `prefix.key` (enum labels such as `step.triaged`).
    pub fn k(&self, prefix: &str, key: &str) -> &'static str {
        let table = match self.lang {
            Language::ZhCn => &TABLES.zh,
            Language::En => &TABLES.en,
        };
        table.get(&format!("{prefix}.{key}")).map_or("?", String::as_str)
    }
}

#[allow(non_upper_case_globals)]
impl Language {
    /// Simplified Chinese under the reports' historical name (`Lang::Zh`); the same value as [`Language::ZhCn`].
    pub const Zh: Language = Language::ZhCn;

    /// Parses `zh-CN`/`zh`/`zh-Hans` or `en`/`en-US`/`en-GB`, in any case (the CLI's `--lang`).
    pub fn parse(s: &str) -> Option<Language> {
        match s.trim().to_ascii_lowercase().as_str() {
            "zh-cn" | "zh" | "zh-hans" => Some(Language::ZhCn),
            "en" | "en-us" | "en-gb" => Some(Language::En),
            _ => None,
        }
    }

    /// The language tag (`zh-CN`, `en`), as in HTML's `lang` attribute and HQ's `lang=` parameter.
    pub fn tag(self) -> &'static str {
        match self {
            Language::ZhCn => "zh-CN",
            Language::En => "en",
        }
    }

    /// The translator for this language.
    pub fn tr(self) -> Tr {
        Tr::new(self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn placeholders(s: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut rest = s;
        while let Some(i) = rest.find('{') {
            let Some(j) = rest[i..].find('}') else { break };
            out.insert(rest[i + 1..i + j].to_string());
            rest = &rest[i + j + 1..];
        }
        out
    }

    #[test]
    fn both_locales_parse_and_have_the_same_keys_and_placeholders() {
        let zh = parse(ZH).unwrap();
        let en = parse(EN).unwrap();
        let zk: BTreeSet<_> = zh.keys().collect();
        let ek: BTreeSet<_> = en.keys().collect();
        assert_eq!(zk.difference(&ek).collect::<Vec<_>>(), Vec::<&&String>::new(), "keys missing in en");
        assert_eq!(ek.difference(&zk).collect::<Vec<_>>(), Vec::<&&String>::new(), "keys missing in zh-CN");
        for (k, v) in &zh {
            assert_eq!(placeholders(v), placeholders(&en[k]), "placeholders differ for {k}");
            assert!(!v.trim().is_empty() && !en[k].trim().is_empty(), "empty text for {k}");
        }
    }

    #[test]
    fn every_enum_value_has_a_label() {
        use crate::model::*;
        let tr = [Tr::new(Language::ZhCn), Tr::new(Language::En)];
        for t in tr {
            for s in VisitStep::ALL {
                assert_ne!(t.k("step", s.key()), "?", "{s:?}");
            }
            for c in ArrivalChannel::ALL {
                assert_ne!(t.k("channel", c.key()), "?");
            }
            for n in Need::ALL {
                assert_ne!(t.k("need", n.key()), "?");
            }
            for c in ConsultationChannel::ALL {
                assert_ne!(t.k("cchannel", c.key()), "?");
            }
            for c in Concern::ALL {
                assert_ne!(t.k("concern", c.key()), "?");
            }
            for g in CaseGrade::ALL {
                assert_ne!(t.k("grade", g.key()), "?");
            }
            for c in CaseStatus::ALL {
                assert_ne!(t.k("cstatus", c.key()), "?");
            }
            for c in CaseChannel::ALL {
                assert_ne!(t.k("casechannel", c.key()), "?");
            }
            for o in CallOutcome::ALL {
                assert_ne!(t.k("outcome", o.key()), "?");
            }
            for r in Rating::ALL {
                assert_ne!(t.k("rating", r.key()), "?");
            }
            for f in ["discharge", "outpatient", "feedback", "case"] {
                assert_ne!(t.k("fsource", f), "?");
            }
            for e in [
                "received",
                "assigned",
                "investigating",
                "resolved",
                "not_established",
                "notified",
                "closed",
                "escalated",
                "referred_legal",
                "reopened",
                "note",
            ] {
                assert_ne!(t.k("cevent", e), "?");
            }
            for p in ["normal", "urgent", "emergency"] {
                assert_ne!(t.k("priority", p), "?");
            }
        }
    }
}
