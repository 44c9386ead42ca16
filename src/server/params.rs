//! Query-string parsing with messages that name the parameter.
//!
//! Parameters are read from the raw query rather than through serde so that every problem (a
//! missing value, a non-number, NaN, a value out of range) gets its own clear 400.

use super::error::{ApiError, ApiResult};
use crate::geometry::metric::HALF_CIRCUMFERENCE_M;
use crate::geometry::Metric;
use crate::store::format::Meta;

/// Largest `limit` and `k` a request may ask for; larger answers must be paged by area.
pub const MAX_RESULTS: usize = 10_000;

/// The default `limit` of list answers.
pub const DEFAULT_LIMIT: usize = 1000;

/// A request's query parameters.
///
/// Keys and values are found through a short list of spans: a request carries a handful of
/// parameters, so a linear scan beats hashing. Each key of up to seven bytes is also kept packed
/// in a `u64` ([`tag`]), so finding a parameter compares integers rather than calling `memcmp`
/// once per key. A query with nothing to decode (no `%` or `+`,
/// the common case) is copied once and its spans found in one pass over its bytes; a query with
/// escapes is split the same way and then each key and value decoded, into one buffer. This runs
/// on every query request, and measured with callgrind it had cost more than the radius walk.
pub struct Params {
    /// The keys and values: the query itself, or its decoded pairs back to back.
    text: String,
    /// The pairs, in the order given.
    pairs: Vec<Pair>,
}

/// One key and value of a query.
#[derive(Clone, Copy)]
struct Pair {
    /// The key and the value as byte ranges of [`Params::text`]: `[key start, key end, value
    /// start, value end]`. Every range ends at an ASCII byte or at the end, so each is a valid
    /// `str` slice.
    span: [u32; 4],
    /// The key as [`tag`] packs it.
    tag: u64,
}

/// The tag of every key longer than a tag holds: such keys are compared as text.
const LONG_KEY: u64 = u64::MAX;

/// A key of up to seven bytes packed with its length (in the top byte), so two keys are equal
/// exactly when their tags are; [`LONG_KEY`] for longer ones. Inlined where the name is a
/// literal, this folds to a constant.
#[inline]
fn tag(key: &[u8]) -> u64 {
    if key.len() > 7 {
        return LONG_KEY;
    }
    let mut t = (key.len() as u64) << 56;
    let mut i = 0;
    while i < key.len() {
        t |= (key[i] as u64) << (8 * i);
        i += 1;
    }
    t
}

impl Params {
    /// Parses a raw query string; a repeated parameter keeps its last value (and is refused
    /// by [`Params::only`]).
    pub fn parse(raw: Option<&str>) -> Params {
        let raw = raw.unwrap_or("");
        let mut pairs = Vec::with_capacity(8);
        let mut start = 0;
        let mut key_end = None;
        let mut escaped = false;
        // One pass over the bytes finds every pair's `=` and `&` (an escape never hides one:
        // `%26` and `%3D` stay three bytes until decoded). memchr's iterator over `=` and `&`
        // measured slower on queries this short.
        for (i, &b) in raw.as_bytes().iter().enumerate() {
            match b {
                b'%' | b'+' => escaped = true,
                b'=' if key_end.is_none() => key_end = Some(i),
                b'&' => {
                    push_span(&mut pairs, raw, start, key_end, i);
                    start = i + 1;
                    key_end = None;
                }
                _ => {}
            }
        }
        push_span(&mut pairs, raw, start, key_end, raw.len());
        if !escaped {
            return Params {
                text: raw.to_owned(),
                pairs,
            };
        }
        // Decode each key and value into one buffer and point the spans there.
        let mut text = String::with_capacity(raw.len());
        for pair in &mut pairs {
            let [key_start, key_end, value_start, value_end] = pair.span.map(|o| o as usize);
            let start = text.len();
            percent_decode_into(&raw[key_start..key_end], &mut text);
            let mid = text.len();
            percent_decode_into(&raw[value_start..value_end], &mut text);
            *pair = Pair {
                span: [start, mid, mid, text.len()].map(|o| o as u32),
                tag: tag(&text.as_bytes()[start..mid]),
            };
        }
        Params { text, pairs }
    }

    /// Where the key `name` (tagged `want`) is, searching from the last pair.
    #[inline]
    fn find(&self, name: &str, want: u64) -> Option<usize> {
        if want == LONG_KEY {
            return self
                .pairs
                .iter()
                .rposition(|p| p.tag == LONG_KEY && self.key(p) == name);
        }
        self.pairs.iter().rposition(|p| p.tag == want)
    }

    fn key(&self, pair: &Pair) -> &str {
        &self.text[pair.span[0] as usize..pair.span[1] as usize]
    }

    /// Refuses (400, naming them) parameters the route does not take and parameters given
    /// twice, so that a misspelt or unsupported option never answers as if it had worked.
    pub fn only(&self, allowed: &[&str]) -> ApiResult<()> {
        // One pass marks each allowed name as seen, which finds the first repeat in the order
        // given; an unknown name outranks any repeat.
        let mut seen = 0u128;
        let mut repeat = None;
        let mut unknown = false;
        // The allowed names' tags, worked out once rather than per pair.
        let mut tags = [LONG_KEY; 16];
        for (t, a) in tags.iter_mut().zip(allowed) {
            *t = tag(a.as_bytes());
        }
        for (n, p) in self.pairs.iter().enumerate() {
            let k = self.key(p);
            let known = if p.tag == LONG_KEY || allowed.len() > tags.len() {
                allowed.iter().position(|a| *a == k)
            } else {
                tags[..allowed.len()].iter().position(|t| *t == p.tag)
            };
            let again = match known {
                None => {
                    unknown = true;
                    continue;
                }
                Some(i) if i < 128 => {
                    let before = seen;
                    seen |= 1 << i;
                    before & 1 << i != 0
                }
                Some(_) => self.pairs[..n].iter().any(|q| self.key(q) == k),
            };
            if again && repeat.is_none() {
                repeat = Some(k);
            }
        }
        if unknown {
            return Err(self.unknown(allowed));
        }
        match repeat {
            Some(k) => Err(ApiError::bad_param(k, "is given more than once")),
            None => Ok(()),
        }
    }

    /// The 400 naming every parameter not in `allowed`, each once, in name order.
    fn unknown(&self, allowed: &[&str]) -> ApiError {
        let mut unknown: Vec<&str> = self
            .pairs
            .iter()
            .map(|p| self.key(p))
            .filter(|k| !allowed.contains(k))
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        let first = unknown.first().copied().unwrap_or_default();
        ApiError::bad_param(
            first,
            format!(
                "{} not a parameter of this route; it takes {}",
                if unknown.len() <= 1 {
                    "is".to_string()
                } else {
                    format!("(nor {}) is", unknown[1..].join(", "))
                },
                allowed.join(", ")
            ),
        )
    }

    /// A parameter as text.
    #[inline]
    pub fn str(&self, name: &str) -> Option<&str> {
        let p = self.pairs[self.find(name, tag(name.as_bytes()))?];
        Some(&self.text[p.span[2] as usize..p.span[3] as usize])
    }

    /// A required text parameter.
    pub fn required_str(&self, name: &str) -> ApiResult<&str> {
        match self.str(name) {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ApiError::bad_param(name, "is required")),
        }
    }

    /// An optional finite number.
    pub fn f64(&self, name: &str) -> ApiResult<Option<f64>> {
        match self.str(name) {
            None => Ok(None),
            Some(s) => parse_f64(name, s).map(Some),
        }
    }

    /// A required finite number.
    pub fn required_f64(&self, name: &str) -> ApiResult<f64> {
        self.f64(name)?
            .ok_or_else(|| ApiError::bad_param(name, "is required"))
    }

    /// An optional count between `min` and `max`.
    pub fn count(&self, name: &str, min: usize, max: usize) -> ApiResult<Option<usize>> {
        let Some(s) = self.str(name) else {
            return Ok(None);
        };
        let n: usize = s
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_param(name, format!("{s:?} is not a whole number")))?;
        if n < min || n > max {
            return Err(ApiError::bad_param(
                name,
                format!("{n} is outside [{min}, {max}]"),
            ));
        }
        Ok(Some(n))
    }

    /// `limit`, defaulting to [`DEFAULT_LIMIT`], capped at [`MAX_RESULTS`].
    pub fn limit(&self) -> ApiResult<usize> {
        Ok(self
            .count("limit", 0, MAX_RESULTS)?
            .unwrap_or(DEFAULT_LIMIT))
    }

    /// The query location: `lon` and `lat` for haversine indexes, `point=x,y,...` otherwise.
    pub fn location(&self, meta: &Meta) -> ApiResult<Vec<f64>> {
        match meta.metric {
            Metric::Haversine => {
                if self.str("point").is_some() && self.str("lon").is_none() {
                    return Err(ApiError::bad_param(
                        "point",
                        "this index is lon/lat: give lon and lat",
                    ));
                }
                let lon = self.required_f64("lon")?;
                let lat = self.required_f64("lat")?;
                if !(-180.0..=180.0).contains(&lon) {
                    return Err(ApiError::bad_param(
                        "lon",
                        format!("{lon} is outside [-180, 180]"),
                    ));
                }
                if !(-90.0..=90.0).contains(&lat) {
                    return Err(ApiError::bad_param(
                        "lat",
                        format!("{lat} is outside [-90, 90]"),
                    ));
                }
                Ok(vec![lon, lat])
            }
            Metric::Euclidean => {
                let s = self.str("point").ok_or_else(|| {
                    ApiError::bad_param(
                        "point",
                        "is required (point=x,y,... for this euclidean index)",
                    )
                })?;
                let p = parse_list("point", s)?;
                if p.len() != meta.dims as usize {
                    return Err(ApiError::bad_param(
                        "point",
                        format!("has {} coordinates, the index has {}", p.len(), meta.dims),
                    ));
                }
                Ok(p)
            }
        }
    }

    /// A distance parameter: positive, and for haversine at most half the earth's circumference.
    pub fn distance(&self, name: &str, meta: &Meta, required: bool) -> ApiResult<Option<f64>> {
        let Some(r) = self.f64(name)? else {
            if required {
                return Err(ApiError::bad_param(name, "is required"));
            }
            return Ok(None);
        };
        if r <= 0.0 {
            return Err(ApiError::bad_param(name, format!("{r} must be above 0")));
        }
        if meta.metric == Metric::Haversine && r > HALF_CIRCUMFERENCE_M {
            return Err(ApiError::bad_param(
                name,
                format!("{r} m is more than half the earth's circumference ({HALF_CIRCUMFERENCE_M:.0} m)"),
            ));
        }
        Ok(Some(r))
    }

    /// `where=FIELD:VALUE`: the attribute filter of queries and tiles.
    pub fn filter(&self) -> ApiResult<Option<crate::query::Filter>> {
        self.str("where")
            .map(|w| {
                crate::query::Filter::parse(w).ok_or_else(|| {
                    ApiError::bad_param("where", format!("{w:?} is not FIELD:VALUE"))
                })
            })
            .transpose()
    }

    /// `format`: json (default) or geojson.
    pub fn geojson(&self) -> ApiResult<bool> {
        match self.str("format") {
            None | Some("json") => Ok(false),
            Some("geojson") => Ok(true),
            Some(other) => Err(ApiError::bad_param(
                "format",
                format!("{other:?} is neither json nor geojson"),
            )),
        }
    }
}

/// Records the pair `start..end` of the query `raw` (its first `=` at `key_end`), unless its key
/// is empty. Offsets fit in u32: the request target is capped far below 4 GiB
/// (`limits::MAX_URI_BYTES`).
fn push_span(pairs: &mut Vec<Pair>, raw: &str, start: usize, key_end: Option<usize>, end: usize) {
    let key_end = key_end.unwrap_or(end);
    if key_end > start {
        let value_start = (key_end + 1).min(end);
        pairs.push(Pair {
            span: [start, key_end, value_start, end].map(|o| o as u32),
            tag: tag(&raw.as_bytes()[start..key_end]),
        });
    }
}

/// A finite number.
pub fn parse_f64(name: &str, s: &str) -> ApiResult<f64> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_param(name, format!("{s:?} is not a number")))?;
    if !v.is_finite() {
        return Err(ApiError::bad_param(
            name,
            format!("{s:?} is not a finite number"),
        ));
    }
    Ok(v)
}

/// Comma-separated finite numbers.
pub fn parse_list(name: &str, s: &str) -> ApiResult<Vec<f64>> {
    s.split(',').map(|x| parse_f64(name, x)).collect()
}

/// Appends `s` with `+` and `%XX` decoded (a malformed escape stays as written; bytes that do
/// not decode to UTF-8 become U+FFFD).
fn percent_decode_into(s: &str, out: &mut String) {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        out.push_str(s);
        return;
    }
    let bytes = s.as_bytes();
    let mut buf = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => buf.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        buf.push(b);
                        i += 2;
                    }
                    None => buf.push(b'%'),
                }
            }
            b => buf.push(b),
        }
        i += 1;
    }
    out.push_str(&String::from_utf8_lossy(&buf));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        let p = Params::parse(Some("a=1&b=x%20y+z&c=%zz&d=%41&e"));
        assert_eq!(p.str("a"), Some("1"));
        assert_eq!(p.str("b"), Some("x y z"));
        assert_eq!(p.str("c"), Some("%zz"));
        assert_eq!(p.str("d"), Some("A"));
        assert_eq!(p.str("e"), Some(""));
        let p = Params::parse(Some("x=%4"));
        assert_eq!(p.str("x"), Some("%4"));
        assert!(p.only(&["x"]).is_ok());
        let p = Params::parse(Some("a=1&b=x%20y+z&c=%zz&d=%41&e"));
        assert!(p.only(&["a", "b", "c", "d", "e"]).is_ok());
        let err = p.only(&["a", "b"]).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("c"));
        assert!(err.message.contains("nor d, e"), "{}", err.message);
        let twice = Params::parse(Some("a=1&a=2"));
        assert_eq!(twice.only(&["a"]).unwrap_err().param.as_deref(), Some("a"));
    }

    #[test]
    fn the_last_of_a_repeated_parameter_counts_and_the_first_repeat_is_named() {
        let p = Params::parse(Some("b=1&a=1&a=2&b=3"));
        assert_eq!(p.str("a"), Some("2"));
        assert_eq!(p.str("b"), Some("3"));
        let err = p.only(&["a", "b"]).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("a"), "a repeats before b does");
    }

    #[test]
    fn queries_without_escapes_split_as_decoded_ones_do() {
        // The plain path and the decoding one must agree on every shape of pair.
        for q in [
            "a=1&b=2",
            "a&b=&=c&&d=4&",
            "&&",
            "=",
            "a==1&b=x=y",
            "lon=2.35&lat=48.85&radius=1200&limit=1000",
            "a=1&a=2&a",
            "",
        ] {
            let plain = Params::parse(Some(q));
            // A `+` sends the query through the decoding path without changing any key.
            let decoded = Params::parse(Some(&format!("{q}&zz+=1")));
            for k in ["a", "b", "c", "d", "lon", "lat", "radius", "limit", "", "="] {
                assert_eq!(plain.str(k), decoded.str(k), "{q:?} key {k:?}");
            }
            let keys: Vec<&str> = plain.pairs.iter().map(|p| plain.key(p)).collect();
            let decoded_keys: Vec<&str> = decoded.pairs.iter().map(|p| decoded.key(p)).collect();
            assert_eq!(keys[..], decoded_keys[..decoded_keys.len() - 1], "{q:?}");
        }
        let p = Params::parse(Some("a==1&b=x=y"));
        assert_eq!(p.str("a"), Some("=1"));
        assert_eq!(p.str("b"), Some("x=y"));
    }

    #[test]
    fn keys_are_found_by_tag_at_every_length_and_byte() {
        // Keys that share a prefix, differ only in length, hold NUL or exceed a tag's seven
        // bytes: each finds its own value and no other.
        let keys = [
            "a",
            "a%00",
            "ab",
            "abcdefg",
            "abcdefgh",
            "abcdefgi",
            "abcdefghij",
            "b",
            "%00",
            "lon",
            "lat",
            "limit",
            "limits",
            "properties",
        ];
        let q: Vec<String> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k}={i}"))
            .collect();
        let p = Params::parse(Some(&q.join("&")));
        for (i, k) in keys.iter().enumerate() {
            let name = k.replace("%00", "\0");
            assert_eq!(p.str(&name), Some(i.to_string().as_str()), "{k:?}");
        }
        assert_eq!(p.str("abcdefghi"), None);
        assert_eq!(p.str("abc"), None);
        assert_eq!(p.str("\0\0"), None);
        let allowed: Vec<String> = keys.iter().map(|k| k.replace("%00", "\0")).collect();
        let allowed: Vec<&str> = allowed.iter().map(String::as_str).collect();
        assert!(p.only(&allowed).is_ok());
        let err = p.only(&allowed[1..]).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("a"));
        let err = p.only(&allowed[..allowed.len() - 1]).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("properties"));
        // The same keys without escapes take the plain path.
        let plain: Vec<&String> = q.iter().filter(|kv| !kv.contains('%')).collect();
        let joined: Vec<&str> = plain.iter().map(|s| s.as_str()).collect();
        let p = Params::parse(Some(&joined.join("&")));
        for kv in plain {
            let (k, v) = kv.split_once('=').expect("pair");
            assert_eq!(p.str(k), Some(v), "{k:?}");
        }
        assert_eq!(p.str("abcdefghi"), None);
        assert_eq!(p.str("limi"), None);
    }

    #[test]
    fn an_unknown_name_outranks_a_repeat_given_before_it() {
        let p = Params::parse(Some("a=1&a=2&zz=3"));
        assert_eq!(p.only(&["a"]).unwrap_err().param.as_deref(), Some("zz"));
    }

    #[test]
    fn unknown_names_are_listed_once_each_in_order() {
        let p = Params::parse(Some("zz=1&yy=2&zz=3&a=1"));
        let err = p.only(&["a"]).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("yy"));
        assert!(err.message.contains("(nor zz) is not"), "{}", err.message);
        assert!(!err.message.contains("zz, zz"), "{}", err.message);
    }

    #[test]
    fn escapes_decode_into_keys_and_values_and_bad_bytes_become_replacement_characters() {
        let p = Params::parse(Some("wh%65re=name%3AS%C3%A3o+Paulo&x=%FF&=ignored&&y"));
        assert_eq!(p.str("where"), Some("name:São Paulo"));
        assert_eq!(p.str("x"), Some("\u{FFFD}"));
        assert_eq!(p.str("y"), Some(""));
        assert_eq!(p.str(""), None);
        assert!(p.only(&["where", "x", "y"]).is_ok());
    }
}
