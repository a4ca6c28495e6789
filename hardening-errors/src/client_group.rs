//! The address a client is counted by, for every per-client count.

use std::net::IpAddr;

/// The IPv6 prefix length that is one subscriber (RFC 6177: a site gets at least a /64):
/// clients are counted by it unless a policy says otherwise.
pub const SUBSCRIBER_PREFIX: u8 = 64;

/// The address a client is counted by. An IPv6 address that carries an IPv4 client counts
/// as that client: IPv4-mapped `::ffff:0:0/96` (how a dual-stack listener sees IPv4
/// clients) and the NAT64 well-known prefix `64:ff9b::/96` (RFC 6052) as the IPv4 address
/// in their last 32 bits; 6to4 `2002::/16` (RFC 3056) as the IPv4 address in bits 16 to 48
/// (that host owns the whole /48, 65 536 /64s); Teredo `2001:0::/32` (RFC 4380) as the
/// client's public IPv4 address, the last 32 bits inverted. The local-use `64:ff9b:1::/48`
/// (RFC 8215), where the IPv4 address sits where the translator's prefix length puts it,
/// counts as the whole address (one per IPv4 client whatever that length). Any other IPv6
/// address counts by its first `ipv6_prefix` bits (a /64 is one subscriber, who could
/// otherwise rotate through 2^64 addresses). Shared by every per-client count: rate limits,
/// login throttling, concurrency caps, the CSP report endpoint's share per client.
///
/// ```
/// use hardening_errors::{SUBSCRIBER_PREFIX, client_group};
///
/// let group = |ip: &str| client_group(ip.parse().unwrap(), SUBSCRIBER_PREFIX).to_string();
/// assert_eq!(group("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
/// assert_eq!(group("::ffff:192.0.2.1"), "192.0.2.1");
/// ```
#[inline]
pub fn client_group(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    const MAPPED: u128 = 0xffff;
    const NAT64: u128 = 0x0064_ff9b_0000_0000_0000_0000;
    const NAT64_LOCAL: u128 = 0x0064_ff9b_0001;
    const TEREDO: u32 = 0x2001_0000;
    const SIX_TO_FOUR: u32 = 0x2002;
    match ip {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            // One comparison of the first 32 bits keeps ordinary addresses on the plain path:
            // every prefix below starts under `2003::`; of the global unicast addresses in
            // use, only those in `2001::/16` (and 6to4) do, and take a few comparisons more.
            let top = (bits >> 96) as u32;
            if top < 0x2003_0000 {
                match top {
                    0 | 0x0064_ff9b => match bits >> 32 {
                        // The low 32 bits (kept by the cast) are the IPv4 address.
                        MAPPED | NAT64 => return IpAddr::V4((bits as u32).into()),
                        _ if bits >> 80 == NAT64_LOCAL => return ip,
                        _ => {}
                    },
                    TEREDO => return IpAddr::V4((!(bits as u32)).into()),
                    _ if top >> 16 == SIX_TO_FOUR => {
                        return IpAddr::V4(((bits >> 80) as u32).into());
                    }
                    _ => {}
                }
            }
            let mask = u128::MAX
                .checked_shl(128u32.saturating_sub(u32::from(ipv6_prefix)))
                .unwrap_or(0);
            IpAddr::V6((bits & mask).into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_groups() {
        let group = |ip: &str, bits| client_group(ip.parse().unwrap(), bits).to_string();
        assert_eq!(group("::ffff:192.0.2.1", 64), "192.0.2.1");
        assert_eq!(group("2001:db8:1:2:3:4:5:6", 64), "2001:db8:1:2::");
        assert_eq!(group("2001:db8:1:2:3:4:5:6", 48), "2001:db8:1::");
        assert_eq!(group("2001:db8:1:2:3:4:5:6", 128), "2001:db8:1:2:3:4:5:6");
        assert_eq!(group("2001:db8:1:2:3:4:5:6", 200), "2001:db8:1:2:3:4:5:6");
        assert_eq!(group("2001:db8:1:2:3:4:5:6", 0), "::");
        assert_eq!(group("203.0.113.9", 64), "203.0.113.9");
        // 6to4: one IPv4 host owns the /48 (65 536 /64s), whatever the prefix length.
        for ip in [
            "2002:c000:221::1",
            "2002:c000:221:ffff:1:2:3:4",
            "2002:c000:221::",
        ] {
            for bits in [0, 48, 64, 128] {
                assert_eq!(group(ip, bits), "192.0.2.33", "{ip}/{bits}");
            }
        }
        assert_eq!(group("2002:ffff:ffff::", 64), "255.255.255.255");
        // Teredo: the client's public IPv4 address, inverted in the last 32 bits (here the
        // server is 65.54.227.120, the client 192.0.2.45, port 40000).
        assert_eq!(
            group("2001:0:4136:e378:8000:63bf:3fff:fdd2", 64),
            "192.0.2.45"
        );
        assert_eq!(
            group("2001:0:4136:e378:ffff:ffff:3fff:fdd2", 128),
            "192.0.2.45"
        );
        assert_eq!(group("2001::ffff:ffff", 64), "0.0.0.0");
        // Their neighbours are ordinary addresses, counted by their prefix.
        assert_eq!(
            group("2001:1:4136:e378:8000:63bf:3fff:fdd2", 64),
            "2001:1:4136:e378::"
        );
        assert_eq!(group("2001:4860:1:2:3:4:5:6", 64), "2001:4860:1:2::");
        assert_eq!(group("2001:ffff:1:2:3:4:5:6", 64), "2001:ffff:1:2::");
        assert_eq!(group("2003:c000:221:1:2:3:4:5", 64), "2003:c000:221:1::");
        assert_eq!(group("2001:db8::1", 64), "2001:db8::");
        assert_eq!(group("2a00:1450:4001:2::1", 64), "2a00:1450:4001:2::");
        assert_eq!(group("fe80::1:2:3:4", 64), "fe80::");
        assert_eq!(group("1fff:ffff:1:2::1", 64), "1fff:ffff:1:2::");
    }
}
