//! One way to name a destination, the same on `detect`, `replay`, `run` and in the config file:
//! `file:PATH`, `syslog+udp|tcp|tls://HOST:PORT`, `cef+udp|tcp|tls://HOST:PORT`,
//! `kafka://BROKER[,BROKER...]`.

use std::path::PathBuf;

/// What a SIEM destination is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiemFormat {
    /// RFC 5424 syslog, the alert as structured data and JSON.
    Syslog,
    /// ArcSight CEF in a syslog header.
    Cef,
}

/// How a SIEM destination is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// One message per datagram.
    Udp,
    /// Octet-counted messages on a TCP connection.
    Tcp,
    /// The same over TLS.
    Tls,
}

/// A destination of alerts (and, for Kafka, of asset and traffic records).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// JSON lines appended to a file (`file:-` is stdout).
    File(PathBuf),
    /// A syslog or CEF receiver.
    Siem {
        /// Syslog or CEF.
        format: SiemFormat,
        /// UDP, TCP or TLS.
        transport: Transport,
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// Kafka brokers (`host:port` each).
    Kafka(Vec<String>),
}

impl std::str::FromStr for Destination {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "--output {url:?}: {why} (use file:PATH, syslog+udp|tcp|tls://HOST:PORT, cef+udp|tcp|tls://HOST:PORT \
                 or kafka://BROKER[,BROKER...])"
            )
        };
        if let Some(path) = url.strip_prefix("file:") {
            if path.is_empty() {
                return Err(bad("no path"));
            }
            return Ok(Destination::File(PathBuf::from(path)));
        }
        let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
        if scheme == "kafka" {
            let brokers: Vec<String> = rest.split(',').map(str::trim).map(String::from).collect();
            for b in &brokers {
                host_port(b).map_err(|e| bad(&e))?;
            }
            return Ok(Destination::Kafka(brokers));
        }
        let (format, transport) = scheme.split_once('+').ok_or_else(|| bad("unknown scheme"))?;
        let format = match format {
            "syslog" => SiemFormat::Syslog,
            "cef" => SiemFormat::Cef,
            _ => return Err(bad("unknown scheme")),
        };
        let transport = match transport {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            _ => return Err(bad("unknown transport")),
        };
        let (host, port) = host_port(rest.trim_end_matches('/')).map_err(|e| bad(&e))?;
        Ok(Destination::Siem { format, transport, host, port })
    }
}

/// `host:port` or `[v6]:port`.
fn host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s.rsplit_once(':').ok_or("no port")?;
    let port: u16 = port.parse().map_err(|_| format!("bad port {port:?}"))?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() || port == 0 {
        return Err("no host or port 0".into());
    }
    Ok((host.to_string(), port))
}

impl Destination {
    /// Its name in metrics (`destination` label), logs and the queue's cursor files: the
    /// URL, spelled the same way whatever spacing it was given with.
    pub fn name(&self) -> String {
        match self {
            Destination::File(p) => format!("file:{}", p.display()),
            Destination::Siem { format, transport, host, port } => {
                let f = match format {
                    SiemFormat::Syslog => "syslog",
                    SiemFormat::Cef => "cef",
                };
                let t = match transport {
                    Transport::Udp => "udp",
                    Transport::Tcp => "tcp",
                    Transport::Tls => "tls",
                };
                let host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
                format!("{f}+{t}://{host}:{port}")
            }
            Destination::Kafka(b) => format!("kafka://{}", b.join(",")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_parses_and_names_itself_back() {
        for url in [
            "file:/var/lib/otsensor/alerts.jsonl",
            "syslog+udp://127.0.0.1:514",
            "syslog+tcp://siem.example:601",
            "syslog+tls://[::1]:6514",
            "cef+udp://10.1.1.1:514",
            "cef+tcp://h:1",
            "cef+tls://h:6514",
            "kafka://a:9092,b:9092",
        ] {
            let d: Destination = url.parse().expect(url);
            assert_eq!(d.name(), url);
        }
        assert_eq!("kafka://a:1, b:2".parse::<Destination>().map(|d| d.name()), Ok("kafka://a:1,b:2".to_string()));
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, why) in [
            ("syslog://h:1", "unknown scheme"),
            ("syslog+sctp://h:1", "unknown transport"),
            ("cef+tcp://h", "no port"),
            ("cef+tcp://h:99999", "bad port"),
            ("kafka://a:1,", "no port"),
            ("file:", "no path"),
            ("/tmp/x", "no scheme"),
        ] {
            let e = url.parse::<Destination>().expect_err(url);
            assert!(e.contains(why) && e.contains(url), "{url}: {e}");
        }
    }
}
