//! Just enough DER to read a leaf certificate's expiry (`notAfter`): the certificate has already
//! been verified by webpki, which does not expose its validity period.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// The `notAfter` of an X.509 certificate in DER, or `None` if it cannot be read.
pub fn not_after(der: &[u8]) -> Option<OffsetDateTime> {
    let (certificate, _) = element(der, 0x30)?;
    let (tbs, _) = element(certificate, 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = element(rest, 0xa0)?.1; // version
    }
    rest = element(rest, 0x02)?.1; // serialNumber
    rest = element(rest, 0x30)?.1; // signature algorithm
    rest = element(rest, 0x30)?.1; // issuer
    let (validity, _) = element(rest, 0x30)?;
    let (_, _, after_not_before) = any_element(validity)?;
    let (tag, value, _) = any_element(after_not_before)?;
    match tag {
        0x17 => parse_time(value, false),
        0x18 => parse_time(value, true),
        _ => None,
    }
}

/// Splits off one element with the expected tag: (its contents, what follows).
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, contents, rest) = any_element(input)?;
    (found == tag).then_some((contents, rest))
}

/// Splits off one element: (tag, contents, what follows). Single-byte tags only (all we need).
fn any_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&first, mut input) = input.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || input.len() < count {
            return None;
        }
        let (bytes, rest) = input.split_at(count);
        input = rest;
        bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
    };
    if input.len() < length {
        return None;
    }
    let (contents, rest) = input.split_at(length);
    Some((tag, contents, rest))
}

/// UTCTime `YYMMDDHHMMSSZ` or GeneralizedTime `YYYYMMDDHHMMSSZ` (the forms RFC 5280 allows).
fn parse_time(value: &[u8], generalized: bool) -> Option<OffsetDateTime> {
    let text = std::str::from_utf8(value).ok()?.strip_suffix('Z')?;
    let digits = |range: std::ops::Range<usize>| text.get(range)?.parse::<u32>().ok();
    let (year, rest) = if generalized {
        (i32::try_from(digits(0..4)?).ok()?, 4)
    } else {
        let yy = i32::try_from(digits(0..2)?).ok()?;
        (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
    };
    if text.len() != rest + 10 {
        return None;
    }
    let field = |i: usize| digits(rest + i * 2..rest + i * 2 + 2);
    let month = Month::try_from(u8::try_from(field(0)?).ok()?).ok()?;
    let date = Date::from_calendar_date(year, month, u8::try_from(field(1)?).ok()?).ok()?;
    let time =
        Time::from_hms(u8::try_from(field(2)?).ok()?, u8::try_from(field(3)?).ok()?, u8::try_from(field(4)?).ok()?)
            .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn certificate_expiring(at: OffsetDateTime) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params.not_after = at;
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_not_after_in_utc_time_and_generalized_time() {
        for expiry in [datetime!(2031-02-03 04:05:06 UTC), datetime!(2055-12-31 23:59:59 UTC)] {
            assert_eq!(not_after(&certificate_expiring(expiry)), Some(expiry), "expiry {expiry}");
        }
    }

    #[test]
    fn garbage_gives_none_instead_of_panicking() {
        let der = certificate_expiring(datetime!(2031-02-03 04:05:06 UTC));
        for cut in [0, 1, 5, 40, der.len() / 2] {
            let _ = not_after(&der[..cut]);
        }
        assert_eq!(not_after(b"\x30\x84\xff\xff\xff\xff"), None);
        assert_eq!(not_after(b"not a certificate"), None);
    }
}
