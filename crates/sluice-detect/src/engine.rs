//! One pass over the bytes for every identifier: a single multi-pattern automaton
//! (`regex_automata::meta::Regex::new_many`) whose pattern for an identifier is its value pattern,
//! or — when a keyword is required — its keywords. Where it matches, the unit (a line, a cell, a
//! JSON value) is looked at closely: which identifiers match anywhere in it (an overlapping
//! search, so no identifier hides another), then each one's own pattern, its checks, ignore lists
//! and keyword proximity.

use regex_automata::meta::{self, Regex};
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind, PatternSet};

use crate::identifiers::{Identifier, managed_identifiers};

/// One detection inside a unit: which identifier, the type it reports, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub identifier: usize,
    /// The type reported (an IBAN's by its country).
    pub type_name: String,
    pub start: usize,
    pub end: usize,
}

/// Values never reported: exact strings, or matches of a pattern (Macie's allow lists).
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    pub words: Vec<String>,
    pub patterns: Vec<String>,
}

pub struct Detector {
    identifiers: Vec<Identifier>,
    /// Each identifier's own value pattern.
    values: Vec<Regex>,
    /// Each identifier's keywords (case-insensitive), if it has any.
    keywords: Vec<Option<Regex>>,
    /// Normalised keywords per identifier, for matching column names and JSON paths.
    context_keywords: Vec<Vec<String>>,
    /// The multi-pattern automaton: pattern `i` is identifier `i`'s trigger.
    triggers: Regex,
    /// The same patterns for "which of them match anywhere in this unit".
    trigger_set: Regex,
    allow_words: Vec<Vec<u8>>,
    allow_patterns: Option<Regex>,
}

fn syntax_config() -> syntax::Config {
    // Bytes, ASCII classes: no Unicode tables to build or search through.
    syntax::Config::new().unicode(false).utf8(false)
}

fn compile(pattern: &str, what: &str) -> anyhow::Result<Regex> {
    Regex::builder()
        .syntax(syntax_config())
        .build(pattern)
        .map_err(|error| anyhow::anyhow!("{what}: {error}"))
}

/// `(?i:kw1|kw2|…)` where a keyword's spaces also match `_`, `-` or nothing.
fn keyword_pattern(keywords: &[String]) -> Option<String> {
    if keywords.is_empty() {
        return None;
    }
    let alternatives: Vec<String> = keywords
        .iter()
        .map(|keyword| {
            keyword
                .split(' ')
                .map(regex_syntax_escape)
                .collect::<Vec<_>>()
                .join("[ _-]?")
        })
        .collect();
    Some(format!("(?i:{})", alternatives.join("|")))
}

fn regex_syntax_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(character) {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

fn normalise(text: &str) -> String {
    text.to_ascii_lowercase()
        .chars()
        .map(|character| {
            if character == '_' || character == '-' {
                ' '
            } else {
                character
            }
        })
        .collect()
}

impl Detector {
    /// Every managed identifier.
    pub fn managed() -> anyhow::Result<Detector> {
        Detector::new(managed_identifiers(), &AllowList::default())
    }

    pub fn new(identifiers: Vec<Identifier>, allow: &AllowList) -> anyhow::Result<Detector> {
        let mut values = Vec::with_capacity(identifiers.len());
        let mut keywords = Vec::with_capacity(identifiers.len());
        let mut triggers = Vec::with_capacity(identifiers.len());
        let mut context_keywords = Vec::with_capacity(identifiers.len());
        for identifier in &identifiers {
            values.push(compile(&identifier.pattern, &identifier.id)?);
            let keyword = keyword_pattern(&identifier.keywords);
            keywords.push(
                keyword
                    .as_deref()
                    .map(|pattern| compile(pattern, &format!("{} keywords", identifier.id)))
                    .transpose()?,
            );
            context_keywords.push(identifier.keywords.iter().map(|keyword| normalise(keyword)).collect());
            triggers.push(match (&keyword, identifier.keyword_required) {
                (Some(keyword), true) => keyword.clone(),
                _ => identifier.pattern.clone(),
            });
        }
        let build = |kind: MatchKind| {
            Regex::builder()
                .syntax(syntax_config())
                .configure(meta::Config::new().match_kind(kind))
                .build_many(&triggers)
                .map_err(|error| anyhow::anyhow!("the identifiers do not compile together: {error}"))
        };
        let allow_patterns = if allow.patterns.is_empty() {
            None
        } else {
            Some(
                Regex::builder()
                    .syntax(syntax_config())
                    .build_many(&allow.patterns)
                    .map_err(|error| anyhow::anyhow!("allow list: {error}"))?,
            )
        };
        Ok(Detector {
            triggers: build(MatchKind::LeftmostFirst)?,
            trigger_set: build(MatchKind::All)?,
            identifiers,
            values,
            keywords,
            context_keywords,
            allow_words: allow.words.iter().map(|word| word.as_bytes().to_vec()).collect(),
            allow_patterns,
        })
    }

    pub fn identifiers(&self) -> &[Identifier] {
        &self.identifiers
    }

    /// Whether anything in `bytes` could be a detection (the fast path over large buffers).
    pub fn candidates<'h>(&'h self, bytes: &'h [u8]) -> impl Iterator<Item = std::ops::Range<usize>> + 'h {
        self.triggers.find_iter(bytes).map(|found| found.range())
    }

    /// The identifiers whose keywords a column name or JSON path carries (they then need no
    /// keyword in the value itself).
    pub fn context_matches(&self, context: &str) -> Vec<bool> {
        let context = normalise(context);
        let squeezed: String = context.chars().filter(|character| *character != ' ').collect();
        self.context_keywords
            .iter()
            .map(|keywords| {
                keywords
                    .iter()
                    .any(|keyword| context.contains(keyword.as_str()) || squeezed.contains(&keyword.replace(' ', "")))
            })
            .collect()
    }

    /// Every detection in one unit that cannot span lines (a line, a cell, a JSON value).
    /// `context` is what `context_matches` said of its column or path.
    pub fn scan_unit(&self, unit: &[u8], context: Option<&[bool]>, hits: &mut Vec<Hit>) {
        let mut set = PatternSet::new(self.identifiers.len());
        self.trigger_set.which_overlapping_matches(&Input::new(unit), &mut set);
        let forced = context.map(|flags| flags.iter().enumerate().filter(|(_, on)| **on).map(|(index, _)| index));
        let mut wanted: Vec<usize> = set.iter().map(|id| id.as_usize()).collect();
        if let Some(forced) = forced {
            for index in forced {
                if self.identifiers[index].keyword_required && !wanted.contains(&index) {
                    wanted.push(index);
                }
            }
        }
        for index in wanted {
            let identifier = &self.identifiers[index];
            let by_context = context.is_some_and(|flags| flags.get(index).copied().unwrap_or(false));
            for found in self.values[index].find_iter(unit) {
                let (start, end) = (found.start(), found.end());
                let value = &unit[start..end];
                if let Some(adjoining) = identifier.not_adjoining
                    && (start > 0 && adjoining(unit[start - 1]) || end < unit.len() && adjoining(unit[end]))
                {
                    continue;
                }
                if identifier
                    .ignore_values
                    .iter()
                    .any(|ignored| ignored.as_bytes() == value)
                    || identifier
                        .ignore_words
                        .iter()
                        .any(|word| contains(value, word.as_bytes()))
                {
                    continue;
                }
                if identifier.validator.is_some_and(|check| !check(value)) {
                    continue;
                }
                if identifier.keyword_required && !by_context && !self.keyword_near(index, unit, start, end) {
                    continue;
                }
                if self.allowed(value) {
                    continue;
                }
                let type_name = if identifier.id == "IBAN" {
                    crate::validate::iban_country(value)
                        .map(|country| crate::validate::iban_type(&country).to_string())
                        .unwrap_or_else(|| identifier.id.clone())
                } else {
                    identifier.id.clone()
                };
                hits.push(Hit {
                    identifier: index,
                    type_name,
                    start,
                    end,
                });
            }
        }
        // One value, one detection: a hit inside another identifier's longer hit is part of it
        // (the `user@host` of a URL with credentials is not also an e-mail address, the digits of
        // an IBAN are not also a card number); for the same span the identifier first in the
        // catalogue — credentials, then financial, then personal data — wins.
        hits.sort_by_key(|hit| (std::cmp::Reverse(hit.end - hit.start), hit.identifier, hit.start));
        let mut kept: Vec<Hit> = Vec::with_capacity(hits.len());
        for hit in hits.drain(..) {
            let inside = kept
                .iter()
                .any(|other| other.identifier != hit.identifier && other.start <= hit.start && hit.end <= other.end);
            if !inside {
                kept.push(hit);
            }
        }
        kept.sort_by_key(|hit| (hit.start, hit.identifier));
        *hits = kept;
    }

    /// Macie's proximity: a keyword within `max_distance` characters of the match (either side),
    /// or for custom identifiers a preceding keyword whose end is at most that far from the
    /// match's end.
    fn keyword_near(&self, index: usize, unit: &[u8], start: usize, end: usize) -> bool {
        let Some(keywords) = &self.keywords[index] else {
            return false;
        };
        let identifier = &self.identifiers[index];
        let distance = identifier.max_distance;
        if identifier.keyword_must_precede {
            let from = end.saturating_sub(distance + 90);
            return keywords
                .find_iter(&unit[from..start])
                .any(|keyword| end - (from + keyword.end()) <= distance);
        }
        // Managed identifiers: a keyword before the value, at most `distance` characters from
        // it (or overlapping it). Macie also accepts a keyword after the value; in logs that
        // makes a line's leading timestamp a "date of birth" or its year a "card security code",
        // so Sluice reads the keyword as introducing the value, as data almost always does.
        let from = start.saturating_sub(distance + 90);
        let to = end.min(unit.len());
        keywords.find_iter(&unit[from..to]).any(|keyword| {
            let (keyword_start, keyword_end) = (from + keyword.start(), from + keyword.end());
            (keyword_end <= start && start - keyword_end <= distance) || (keyword_start < end && keyword_end > start)
        })
    }

    fn allowed(&self, value: &[u8]) -> bool {
        self.allow_words.iter().any(|word| word.as_slice() == value)
            || self
                .allow_patterns
                .as_ref()
                .is_some_and(|patterns| patterns.is_match(value))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types(detector: &Detector, text: &str) -> Vec<String> {
        let mut hits = Vec::new();
        detector.scan_unit(text.as_bytes(), None, &mut hits);
        hits.into_iter().map(|hit| hit.type_name).collect()
    }

    #[test]
    fn keywords_decide_what_needs_them() {
        let detector = Detector::managed().expect("compiles");
        assert_eq!(types(&detector, "ssn: 536-22-1234"), ["USA_SOCIAL_SECURITY_NUMBER"]);
        assert!(types(&detector, "order 536-22-1234 shipped").is_empty());
        assert_eq!(
            types(&detector, "card 4556 7375 8689 9855 exp 09/28"),
            ["CREDIT_CARD_NUMBER", "CREDIT_CARD_EXPIRATION"]
        );
        assert_eq!(
            types(&detector, "iban DE89 3704 0044 0532 0130 00"),
            ["GERMANY_BANK_ACCOUNT_NUMBER"]
        );
        assert_eq!(types(&detector, "write to jane.doe@example.org"), ["EMAIL_ADDRESS"]);
        assert!(types(&detector, "key AKIAIOSFODNN7EXAMPLE from the docs").is_empty());
        // A column name carries the keyword for its cells.
        let context = detector.context_matches("customer_ssn");
        let mut hits = Vec::new();
        detector.scan_unit(b"536221234", Some(&context), &mut hits);
        assert_eq!(hits[0].type_name, "USA_SOCIAL_SECURITY_NUMBER");
    }
}
