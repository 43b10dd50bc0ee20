#![no_main]
//! `Cookie` header parsing (`django.http.parse_cookie` as Channels applies
//! it): never panics, and `cookie_value` agrees with the last pair of the
//! same name that `parse_cookie_pairs` yields.

use libfuzzer_sys::fuzz_target;
use wsauth_core::{django::cookie::cookie_value, django::cookie::parse_cookie_pairs};

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data);
    let pairs: Vec<_> = parse_cookie_pairs(&header).collect();
    let mut names: Vec<&str> = pairs.iter().map(|(n, _)| *n).take(4).collect();
    names.push("sessionid");
    for name in names {
        let last = pairs
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone());
        assert_eq!(cookie_value(&header, name), last, "cookie {name:?}");
    }
});
