//! Query-string parsing with messages that name the parameter.
//!
//! Parameters are read from the raw query rather than through serde so that every problem (a
//! missing value, a non-number, NaN, a value out of range) gets its own clear 400.

use super::error::{ApiError, ApiResult};
use crate::geometry::metric::HALF_CIRCUMFERENCE_M;
use crate::geometry::Metric;
use crate::query::Coords;
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
    /// The pairs, in the order given: inline up to eight, more than a request usually sends.
    pairs: Pairs,
}

/// A query's pairs.
type Pairs = smallvec::SmallVec<[Pair; 8]>;

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
const fn tag(key: &[u8]) -> u64 {
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

/// The parameters a route takes, with their tags: a `const` per route works them out when the
/// program is compiled, so [`Params::only`] compares integers.
pub struct Names<'a, const N: usize> {
    names: [&'a str; N],
    tags: [u64; N],
}

impl<'a, const N: usize> Names<'a, N> {
    /// The names (at most 128: each gets a bit when repeats are looked for).
    pub const fn new(names: [&'a str; N]) -> Self {
        assert!(N <= 128, "a route takes at most 128 parameters");
        let mut tags = [0; N];
        let mut i = 0;
        while i < N {
            tags[i] = tag(names[i].as_bytes());
            i += 1;
        }
        Names { names, tags }
    }

    /// Where `key` (tagged `t`) is among the names.
    fn position(&self, key: &str, t: u64) -> Option<usize> {
        if t == LONG_KEY {
            return self.names.iter().position(|a| *a == key);
        }
        self.tags.iter().position(|x| *x == t)
    }
}

impl Params {
    /// Parses a raw query string; a repeated parameter keeps its last value (and is refused
    /// by [`Params::only`]).
    pub fn parse(raw: Option<&str>) -> Params {
        let raw = raw.unwrap_or("");
        let mut pairs = Pairs::new();
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
        // Two loops rather than one with a combined test: the short-key loop compares integers
        // only, and one loop for both cost ~300 instructions a request (callgrind).
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
    pub fn only<const N: usize>(&self, allowed: &Names<'_, N>) -> ApiResult<()> {
        // One pass marks each allowed name as seen, which finds the first repeat in the order
        // given; an unknown name outranks any repeat.
        let mut seen = 0u128;
        let mut repeat = None;
        let mut unknown = false;
        for p in &self.pairs {
            let k = self.key(p);
            let Some(i) = allowed.position(k, p.tag) else {
                unknown = true;
                continue;
            };
            let again = seen & 1 << i != 0;
            seen |= 1 << i;
            if again && repeat.is_none() {
                repeat = Some(k);
            }
        }
        if unknown {
            return Err(self.unknown(&allowed.names));
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
    pub fn location(&self, meta: &Meta) -> ApiResult<Coords> {
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
                Ok(smallvec::smallvec![lon, lat])
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
                Ok(p.into())
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
fn push_span(pairs: &mut Pairs, raw: &str, start: usize, key_end: Option<usize>, end: usize) {
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
    if let Some(v) = plain_decimal(s.as_bytes()) {
        return Ok(v);
    }
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

/// Powers of ten a double holds exactly.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A number written as plain decimal digits (`-12.345`, `1200`), the way every coordinate and
/// radius comes, without going through the general parser; `None` sends anything else (an
/// exponent, spaces, more digits than a double holds exactly) to it.
///
/// The digits as an integer below 2^53 and a power of ten up to 10^22 are both exact doubles,
/// so one correctly rounded division gives the correctly rounded value (Clinger's fast path, the
/// one std's parser takes for such input): the result is the same double std returns.
fn plain_decimal(s: &[u8]) -> Option<f64> {
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut mantissa = 0u64;
    let mut fraction_digits = None;
    for (i, &b) in digits.iter().enumerate() {
        match b {
            // Overflow means more digits than a double holds exactly: the general parser's.
            b'0'..=b'9' => mantissa = mantissa.checked_mul(10)?.checked_add(u64::from(b - b'0'))?,
            b'.' if fraction_digits.is_none() => fraction_digits = Some(digits.len() - i - 1),
            _ => return None,
        }
    }
    let fraction_digits = fraction_digits.unwrap_or(0);
    // A lone "." has no digit.
    if digits.len() == 1 && fraction_digits == 0 && digits[0] == b'.' {
        return None;
    }
    if mantissa > 1 << 53 {
        return None;
    }
    let v = mantissa as f64 / EXACT_POWERS_OF_TEN.get(fraction_digits)?;
    Some(if negative { -v } else { v })
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
        assert!(p.only(&Names::new(["x"])).is_ok());
        let p = Params::parse(Some("a=1&b=x%20y+z&c=%zz&d=%41&e"));
        assert!(p.only(&Names::new(["a", "b", "c", "d", "e"])).is_ok());
        let err = p.only(&Names::new(["a", "b"])).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("c"));
        assert!(err.message.contains("nor d, e"), "{}", err.message);
        let twice = Params::parse(Some("a=1&a=2"));
        assert_eq!(
            twice.only(&Names::new(["a"])).unwrap_err().param.as_deref(),
            Some("a")
        );
    }

    #[test]
    fn the_last_of_a_repeated_parameter_counts_and_the_first_repeat_is_named() {
        let p = Params::parse(Some("b=1&a=1&a=2&b=3"));
        assert_eq!(p.str("a"), Some("2"));
        assert_eq!(p.str("b"), Some("3"));
        let err = p.only(&Names::new(["a", "b"])).unwrap_err();
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

    /// The plain-decimal path returns, bit for bit, what std's parser does, and leaves to it
    /// everything it does not take.
    #[test]
    fn plain_decimals_parse_as_std_parses_them() {
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "+0",
            "0.",
            ".0",
            ".",
            "-",
            "+",
            "",
            "-.5",
            "1.",
            "00012.50",
            "2.3522219",
            "-179.99999999",
            "48.856614",
            "1200",
            "9007199254740993",
            "9007199254740992",
            "9007199254740991",
            "0.1",
            "0.30000000000000004",
            "12345678901234567",
            "1234567890123456.7",
            "0.00000000000000001",
            "1e3",
            " 1",
            "1 ",
            "1..2",
            "--1",
            "1,5",
            "nan",
            "inf",
            "0x10",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        cases.push(format!("0.{}1", "0".repeat(30)));
        cases.push("1".repeat(40));
        // Pseudo-random digit strings with a dot somewhere, of every length up to 21.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = 1 + (x % 21) as usize;
            let mut d: String = (0..len)
                .map(|k| char::from(b'0' + ((x >> (k * 3 % 60)) % 10) as u8))
                .collect();
            if x & 1 == 0 {
                d.insert((x >> 5) as usize % (len + 1), '.');
            }
            if x & 2 == 0 {
                d.insert(0, '-');
            }
            cases.push(d);
        }
        for c in &cases {
            let std = c.parse::<f64>().ok();
            match plain_decimal(c.as_bytes()) {
                Some(v) => assert_eq!(
                    Some(v.to_bits()),
                    std.map(f64::to_bits),
                    "{c:?}: {v} against std's {std:?}"
                ),
                None => {
                    // Left to std: only what is not plain decimal digits, or has more digits
                    // than a double holds exactly.
                    let digits: String = c.chars().filter(char::is_ascii_digit).collect();
                    let wide =
                        digits.len() > 19 || digits.parse::<u128>().is_ok_and(|m| m > 1 << 53);
                    assert!(
                        std.is_none() || wide || c.bytes().any(|b| !b"+-.0123456789".contains(&b)),
                        "{c:?}"
                    );
                }
            }
        }
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
        let all: [&str; 14] = allowed[..].try_into().expect("14 keys");
        assert!(p.only(&Names::new(all)).is_ok());
        let but_first: [&str; 13] = allowed[1..].try_into().expect("13 keys");
        let err = p.only(&Names::new(but_first)).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("a"));
        let but_last: [&str; 13] = allowed[..13].try_into().expect("13 keys");
        let err = p.only(&Names::new(but_last)).unwrap_err();
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
        assert_eq!(
            p.only(&Names::new(["a"])).unwrap_err().param.as_deref(),
            Some("zz")
        );
    }

    #[test]
    fn unknown_names_are_listed_once_each_in_order() {
        let p = Params::parse(Some("zz=1&yy=2&zz=3&a=1"));
        let err = p.only(&Names::new(["a"])).unwrap_err();
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
        assert!(p.only(&Names::new(["where", "x", "y"])).is_ok());
    }
}
