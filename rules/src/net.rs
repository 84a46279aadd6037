//! Networks in CIDR notation, IPv4 and IPv6.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address block: `10.0.1.0/24`, `fd00::/64`, or one address (`10.0.1.10`, a /32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Network {
    /// First address of the block (host bits cleared).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

/// Why a network did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkError(pub String);

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

fn mask(prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        (u128::MAX << (128 - u32::from(prefix))) >> (128 - u32::from(width))
    }
}

impl Network {
    /// Whether `ip` is in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (a, wa) = bits(self.addr);
        let (b, wb) = bits(ip);
        wa == wb && (a ^ b) & mask(self.prefix, wa) == 0
    }

    /// Whether two blocks share an address.
    pub fn overlaps(&self, other: &Network) -> bool {
        let shorter = if self.prefix <= other.prefix { self } else { other };
        let longer = if self.prefix <= other.prefix { other } else { self };
        shorter.contains(longer.addr)
    }
}

impl FromStr for Network {
    type Err = NetworkError;
    fn from_str(s: &str) -> Result<Self, NetworkError> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| NetworkError(format!("{a:?} is not an IP address")))?;
        let (value, width) = bits(addr);
        let prefix = match p {
            None => width,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&n| n <= width)
                .ok_or_else(|| NetworkError(format!("prefix {p:?} is not 0-{width}")))?,
        };
        if value & !mask(prefix, width) & (u128::MAX >> (128 - u32::from(width))) != 0 {
            return Err(NetworkError(format!(
                "{s} has host bits set (the network is {}/{prefix})",
                Network::first(value & mask(prefix, width), addr)
            )));
        }
        Ok(Network { addr, prefix })
    }
}

impl Network {
    fn first(value: u128, like: IpAddr) -> IpAddr {
        match like {
            IpAddr::V4(_) => IpAddr::V4((value as u32).into()),
            IpAddr::V6(_) => IpAddr::V6(value.into()),
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Network {
        s.parse().unwrap_or_else(|e: NetworkError| panic!("{s}: {}", e.0))
    }

    #[test]
    fn blocks_contain_their_addresses_only() {
        let n = net("10.0.1.0/24");
        assert!(n.contains("10.0.1.200".parse().unwrap()));
        assert!(!n.contains("10.0.2.1".parse().unwrap()));
        assert!(!n.contains("::ffff:10.0.1.1".parse().unwrap()), "IPv6 is another family");
        assert!(net("fd00::/64").contains("fd00::1:2".parse().unwrap()));
        assert!(net("0.0.0.0/0").contains("192.0.2.1".parse().unwrap()));
        assert_eq!(net("10.0.1.10"), Network { addr: "10.0.1.10".parse().unwrap(), prefix: 32 });
    }

    #[test]
    fn overlaps_are_found_both_ways() {
        assert!(net("10.0.0.0/16").overlaps(&net("10.0.5.0/24")));
        assert!(net("10.0.5.0/24").overlaps(&net("10.0.0.0/16")));
        assert!(!net("10.0.5.0/24").overlaps(&net("10.0.6.0/24")));
    }

    #[test]
    fn bad_blocks_say_why() {
        for (s, why) in [
            ("10.0.1.0/33", "prefix"),
            ("10.0.1.1/24", "host bits"),
            ("10.0.300.0/24", "not an IP"),
            ("fd00::1/64", "host bits"),
        ] {
            let e = s.parse::<Network>().expect_err(s);
            assert!(e.0.contains(why), "{s}: {}", e.0);
        }
    }
}
