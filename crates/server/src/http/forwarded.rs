//! The client's IP address: the TCP peer, or, when the peer is one of the
//! configured `trusted_proxies`, the address the proxies name in
//! `Forwarded` (RFC 7239) or else `X-Forwarded-For`.
//!
//! The chain is read from the right (the hop nearest to us) and every
//! trusted proxy in it is skipped: the first address that is not a trusted
//! proxy is the client. A client cannot forge its way past this: whatever it
//! writes into the header itself sits to the left of the address the first
//! trusted proxy appended. An entry that is not an address (`unknown`, an
//! obfuscated name) ends the walk at the proxy that wrote it.

use std::net::IpAddr;

use ipnet::IpNet;
use poem::http::HeaderMap;

/// The resolved client address of a request (a request extension, set once
/// by the outermost middleware).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

/// The client's address for a request from `peer` with `headers`.
pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer.map(canonical)?;
    if !is_trusted(peer, trusted) {
        return Some(peer);
    }
    let chain = chain(headers);
    let mut client = peer;
    for hop in chain.iter().rev() {
        let Some(ip) = hop else {
            return Some(client);
        };
        client = *ip;
        if !is_trusted(client, trusted) {
            return Some(client);
        }
    }
    Some(client)
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`, what a dual-stack
/// socket reports) is the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The forwarded-for chain, leftmost (the original client) first; `None`
/// for an entry that is not an address. `Forwarded` wins over
/// `X-Forwarded-For` when both are present.
fn chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let forwarded: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, v)| node(v.trim().trim_matches('"')))
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|entry| node(entry.trim()))
        .collect()
}

/// An address as a forwarding header writes it: `192.0.2.1`,
/// `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn node(text: &str) -> Option<IpAddr> {
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok().map(canonical);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(
            resolve(Some(ip("203.0.113.9")), &h, &[]),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            resolve(Some(ip("203.0.113.9")), &h, &nets(&["10.0.0.0/8"])),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_a_forged_prefix_is_ignored() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.1/32"]);
        // The client forged "6.6.6.6"; the proxy appended the real peer.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.1.1")]);
        assert_eq!(
            resolve(Some(ip("127.0.0.1")), &h, &trusted),
            Some(ip("198.51.100.7"))
        );
        // Two header lines form one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            resolve(Some(ip("10.0.0.2")), &h, &trusted),
            Some(ip("198.51.100.7"))
        );
        // Only proxies in the chain: the leftmost is the best we know.
        let h = headers(&[("x-forwarded-for", "10.9.9.9")]);
        assert_eq!(
            resolve(Some(ip("10.0.0.2")), &h, &trusted),
            Some(ip("10.9.9.9"))
        );
        // No header: the proxy itself.
        assert_eq!(
            resolve(Some(ip("10.0.0.2")), &HeaderMap::new(), &trusted),
            Some(ip("10.0.0.2"))
        );
    }

    #[test]
    fn forwarded_is_parsed_with_ports_brackets_and_unknown_nodes() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http;by=203.0.113.43, for=\"[2001:db8:cafe::17]:4711\"",
        )]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("2001:db8:cafe::17"))
        );
        let h = headers(&[("forwarded", "for=192.0.2.60:8080")]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("192.0.2.60"))
        );
        // `unknown` stops the walk at the proxy that wrote it.
        let h = headers(&[("forwarded", "for=192.0.2.60, for=unknown")]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("10.0.0.1"))
        );
        // Forwarded wins over X-Forwarded-For.
        let h = headers(&[
            ("forwarded", "for=192.0.2.1"),
            ("x-forwarded-for", "192.0.2.2"),
        ]);
        assert_eq!(
            resolve(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("192.0.2.1"))
        );
    }

    #[test]
    fn mapped_ipv4_peers_match_ipv4_ranges() {
        let trusted = nets(&["127.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "::ffff:198.51.100.7")]);
        assert_eq!(
            resolve(Some(ip("::ffff:127.0.0.1")), &h, &trusted),
            Some(ip("198.51.100.7"))
        );
    }
}
