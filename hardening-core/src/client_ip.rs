//! The client's IP address: the socket peer, or the right-most untrusted hop of the
//! forwarding header (`X-Forwarded-For`, or `Forwarded` if so configured) when the peer is a
//! trusted proxy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use http::header::FORWARDED;
use http::request::Parts;

use crate::ConfigError;

/// The client's IP address, as [`Hardening`](crate::Hardening) determined it.
///
/// Without trusted proxies it is the socket peer. With them, and only when the peer is one
/// of them, it is the right-most address in the forwarding header the proxies write
/// (`X-Forwarded-For`, or `Forwarded` (RFC 7239): see [`ForwardedHeader`]) that is not itself
/// a trusted proxy: the left-most entries are whatever the client wrote and are never
/// believed. When a trusted proxy does not name the client (no entry, or one that is not an
/// address, such as `for=unknown` or an obfuscated `for=_hidden`), it is the address of the
/// last trusted hop: all such clients share its per-IP limits, but it is the proxy's own
/// address, not the client's. Such a client is never taken to be inside a network that
/// [`Health::detail_for`](crate::Health::detail_for) lists, and to decide which network a
/// client is in (an admin route for the internal network only), extract [`KnownClientIp`]
/// instead: with the proxy inside that network, this `ClientIp` would let in anyone who
/// reaches the proxy's host without a forwarding entry. With no trusted proxy configured, a
/// request from this host or a private network that carries `X-Forwarded-For` or `Forwarded`
/// (a reverse proxy the settings forgot) keeps the peer's address here, but is not taken to
/// be inside any network either, and a warning (once) says to set `HARDENING_TRUSTED_PROXIES`.
///
/// As an extractor it answers a 500 problem (and logs why) when the request has no client
/// IP: no `Hardening` around the router, or no peer address because the app was not served
/// with [`serve`](crate::serve) or `into_make_service_with_connect_info::<SocketAddr>()`.
/// `Option<ClientIp>` is `None` then instead.
///
/// ```
/// use hardening_core::ClientIp;
///
/// async fn handler(ClientIp(ip): ClientIp) -> String {
///     ip.to_string()
/// }
/// # let _: axum::Router = axum::Router::new().route("/", axum::routing::get(handler));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        ClientIp::from_extensions(&parts.extensions).ok_or_else(|| no_client_ip("ClientIp"))
    }
}

/// The 500 an extractor answers when the request has no client IP, after logging what to
/// change.
fn no_client_ip(extractor: &str) -> Response {
    tracing::error!(
        target: crate::LOG_TARGET,
        "{extractor} needs Hardening around the router and a peer address: serve with \
         hardening_core::serve or into_make_service_with_connect_info::<SocketAddr>()"
    );
    hardening_errors::Error::internal("no client IP in the request extensions").into_response()
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(ClientIp::from_extensions(&parts.extensions))
    }
}

impl ClientIp {
    /// The client IP `Hardening` put in these extensions (in its
    /// [`RequestContext`](hardening_errors::RequestContext)), or a `ClientIp` put there directly.
    pub fn from_extensions(extensions: &http::Extensions) -> Option<Self> {
        match hardening_errors::RequestContext::of(extensions) {
            Some(context) => context.client_ip.map(ClientIp),
            None => extensions.get::<ClientIp>().copied(),
        }
    }
}

/// The client's own IP address, for deciding which network a client is in: the socket
/// peer, or the client trusted proxies name, as [`ClientIp`]; never a trusted proxy's own
/// address standing in for a client it did not name (no `X-Forwarded-For` or `Forwarded`
/// entry, or only hops that are not addresses, such as `unknown` or `for=_hidden`).
///
/// A reverse proxy inside the network a route admits (`/admin` for `10.0.0.0/8` and
/// `127.0.0.0/8`, the proxy at `127.0.0.1`) forwards every client with its own address as
/// the peer; a request that reaches the proxy's host without naming a client (a local
/// process, a request the proxy passes on without a forwarding entry) would pass a check
/// of `ClientIp`. [`Health::detail_for`](crate::Health::detail_for) decides by this type.
///
/// As an extractor it answers a 403 problem when a trusted proxy did not name the client
/// (the client could be anyone that proxy serves), or when, with no trusted proxy
/// configured, a request from this host or a private network carries a forwarding header
/// (a proxy the settings forgot), and a 500 problem as [`ClientIp`] does
/// when the request has no client IP at all. `Option<KnownClientIp>` is `None` for both.
///
/// ```
/// use std::net::SocketAddr;
/// use axum::{Router, body::Body, extract::ConnectInfo, routing::get};
/// use hardening_core::errors::Error;
/// use hardening_core::{Hardening, IpNet, KnownClientIp};
/// use tower::ServiceExt;
///
/// async fn admin(KnownClientIp(ip): KnownClientIp) -> Result<&'static str, Error> {
///     if !IpNet::LOOPBACK.iter().any(|network| network.contains(ip)) {
///         return Err(Error::Forbidden);
///     }
///     Ok("welcome")
/// }
///
/// // The reverse proxy runs on this host: 127.0.0.1, inside the network `/admin` admits.
/// let hardening = Hardening::strict().trusted_proxies(["127.0.0.1"])?;
/// let app = Router::new().route("/admin", get(admin)).layer(hardening);
/// let from_the_proxy = |forwarded_for: Option<&str>| {
///     let mut req = http::Request::get("/admin");
///     if let Some(hops) = forwarded_for {
///         req = req.header("x-forwarded-for", hops);
///     }
///     let req = req
///         .extension(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))))
///         .body(Body::empty())
///         .unwrap();
///     app.clone().oneshot(req)
/// };
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// // A client the proxy names: inside the network, or not.
/// assert_eq!(from_the_proxy(Some("127.0.0.9")).await?.status(), 200);
/// assert_eq!(from_the_proxy(Some("127.0.0.9, 203.0.113.7")).await?.status(), 403);
/// // No client named: the peer is the proxy's own address, which `ClientIp` would hold.
/// assert_eq!(from_the_proxy(None).await?.status(), 403);
/// assert_eq!(from_the_proxy(Some("unknown")).await?.status(), 403);
/// # Ok::<(), std::convert::Infallible>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KnownClientIp(pub IpAddr);

impl KnownClientIp {
    /// The client IP `Hardening` put in these extensions, unless it is a trusted proxy's own
    /// address standing in for a client the proxy did not name; or a [`ClientIp`] put there
    /// directly (no proxy was followed to find it).
    pub fn from_extensions(extensions: &http::Extensions) -> Option<Self> {
        match hardening_errors::RequestContext::of(extensions) {
            Some(context) if context.client_hidden_by_proxy => None,
            Some(context) => context.client_ip.map(KnownClientIp),
            None => extensions
                .get::<ClientIp>()
                .map(|&ClientIp(ip)| KnownClientIp(ip)),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for KnownClientIp {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ip) = KnownClientIp::from_extensions(&parts.extensions) {
            return Ok(ip);
        }
        match hardening_errors::RequestContext::of(&parts.extensions) {
            Some(context) if context.client_hidden_by_proxy => {
                Err(hardening_errors::Error::Forbidden.into_response())
            }
            _ => Err(no_client_ip("KnownClientIp")),
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for KnownClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(KnownClientIp::from_extensions(&parts.extensions))
    }
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`), or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// `127.0.0.0/8` and `::1/128`.
    pub const LOOPBACK: [IpNet; 2] = [
        IpNet {
            addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
            prefix: 8,
        },
        IpNet {
            addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
            prefix: 128,
        },
    ];

    /// Whether this is `0.0.0.0/0` or `::/0`.
    pub fn covers_everything(&self) -> bool {
        self.prefix == 0
    }

    /// Whether `ip` is inside this network. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.addr.is_ipv4() && masked(ip, self.prefix) == self.addr
    }
}

/// `addr` with the bits past the first `prefix` cleared (at most 32 for IPv4, 128 for IPv6).
fn masked(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

impl FromStr for IpNet {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| ConfigError::InvalidNetwork {
            value: s.to_owned(),
            why: why.to_owned(),
        };
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s.trim(), None),
        };
        let written = IpAddr::from_str(addr)
            .map_err(|_| bad("expected an IP address such as 10.0.0.0/8 or fd00::/8"))?;
        let max = if written.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => Some(p)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u8>().ok())
                .filter(|p| *p <= max)
                .ok_or_else(|| {
                    if p.contains([';', ' ', '/', '|']) {
                        bad("one network per entry: separate networks with commas")
                    } else {
                        bad(&format!("the prefix length must be 0 to {max}"))
                    }
                })?,
        };
        // An IPv4-mapped network (`::ffff:10.0.0.0/104`) is the IPv4 one, as peers are.
        let addr = canonical(written);
        let prefix = match (written, addr) {
            (IpAddr::V6(_), IpAddr::V4(_)) => prefix.checked_sub(96).ok_or_else(|| {
                bad("an IPv4-mapped network needs a prefix length of 96 to 128 (::ffff:0:0/96 is every IPv4 address)")
            })?,
            _ => prefix,
        };
        // `10.0.0.1/8` is either a typo for one address (`/32`) or for the network
        // (`10.0.0.0/8`); read as the network, it would trust 16 million addresses. (Kept as
        // written, `contains` compares against the network address, so this also holds it.)
        let network = masked(addr, prefix);
        if network != addr {
            let one = if addr.is_ipv4() { 32 } else { 128 };
            return Err(bad(&format!(
                "it has bits set past the prefix: write {network}/{prefix} for the network, or \
                 {addr}/{one} for the one address"
            )));
        }
        Ok(Self { addr, prefix })
    }
}

/// `::ffff:1.2.3.4` → `1.2.3.4`, so one rule covers both forms.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The forwarding header trusted proxies write, and the only one read for the client IP.
///
/// Only one is read: a proxy appends to the header it writes and passes the others through
/// untouched, so a client could otherwise choose its IP by sending the other header itself.
///
/// ```
/// use hardening_core::{ForwardedHeader, Hardening};
///
/// let hardening = Hardening::strict()
///     .trusted_proxies(["10.0.0.0/8"])?
///     .forwarded_header(ForwardedHeader::Forwarded);
/// # let _ = hardening;
/// # Ok::<(), hardening_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (nginx's `$proxy_add_x_forwarded_for`, most load balancers): the
    /// default.
    #[default]
    XForwardedFor,
    /// `Forwarded`, RFC 7239 (nginx with `proxy_set_header Forwarded`, HAProxy's
    /// `option forwarded`).
    Forwarded,
}

impl FromStr for ForwardedHeader {
    type Err = ConfigError;

    /// `x-forwarded-for` or `forwarded`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            s if s.eq_ignore_ascii_case("x-forwarded-for") => Ok(Self::XForwardedFor),
            s if s.eq_ignore_ascii_case("forwarded") => Ok(Self::Forwarded),
            other => Err(ConfigError::InvalidForwardedHeader {
                value: other.to_owned(),
                why: "expected x-forwarded-for or forwarded".to_owned(),
            }),
        }
    }
}

/// As [`FromStr`] reads it, as the environment is read: in any case, with the same error.
impl<'de> serde::Deserialize<'de> for ForwardedHeader {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The proxies whose forwarding headers are believed, and which header they write.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
    /// Whether `header` was set, not left at its default.
    header_set: bool,
}

impl TrustedProxies {
    #[cfg(test)]
    pub(crate) fn new(nets: Vec<IpNet>) -> Self {
        Self {
            nets,
            header: ForwardedHeader::default(),
            header_set: false,
        }
    }

    pub(crate) fn set_networks(&mut self, nets: Vec<IpNet>) {
        self.nets = nets;
    }

    pub(crate) fn set_header(&mut self, header: ForwardedHeader) {
        self.header = header;
        self.header_set = true;
    }

    /// The header set when there is no proxy to read it from: it is never read.
    pub(crate) fn unread_header(&self) -> Option<ForwardedHeader> {
        (self.header_set && self.nets.is_empty()).then_some(self.header)
    }

    #[inline]
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(ip))
    }

    /// The client IP for a request from `peer` with these headers.
    #[cfg(test)]
    fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        self.resolve(peer, headers).0
    }

    /// The client IP for a request from `peer` with these headers, how it was found, and
    /// who says whether the client used HTTPS.
    #[inline]
    pub(crate) fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> (IpAddr, Source, SaysHttps) {
        let peer = canonical(peer);
        if self.nets.is_empty() {
            // A proxy's request has a `Host` too (nginx always sets one): a request of one
            // field, or from elsewhere, is not one, and is not walked.
            let source = if headers.len() >= 2 && is_local(peer) {
                peer_without_proxies(peer, headers)
            } else {
                Source::Peer
            };
            return (peer, source, SaysHttps::Nobody);
        }
        if !self.contains(peer) {
            return (peer, Source::Peer, SaysHttps::Nobody);
        }
        self.forwarded_client(peer, headers)
    }

    /// [`resolve`](Self::resolve) for a peer that is a trusted proxy: out of line.
    #[inline(never)]
    fn forwarded_client(&self, peer: IpAddr, headers: &HeaderMap) -> (IpAddr, Source, SaysHttps) {
        match self.header {
            ForwardedHeader::XForwardedFor => {
                let values = headers.get_all(&X_FORWARDED_FOR);
                let (ip, source, _) = self.walk(peer, values, false, |hop| (parse_xff(hop), false));
                (ip, source, SaysHttps::XForwardedProto)
            }
            ForwardedHeader::Forwarded => {
                let values = headers.get_all(FORWARDED);
                let (ip, source, https) = self.walk(peer, values, true, parse_forwarded);
                (ip, source, SaysHttps::ForwardedElement { https })
            }
        }
    }

    /// Walks the hops of the header's `values` (comma-separated; with `quotes`, not inside
    /// a quoted string) right to left, skipping trusted proxies; stops at the first
    /// untrusted hop (the client) or at a hop it cannot read (keeping the last trusted hop,
    /// and saying the client is hidden). No hop at all hides the client too. Each hop's
    /// address and whether it says `proto=https` come from `parse`.
    ///
    /// The values are split from the right, so the proxies' elements are read as they wrote
    /// them whatever the client put before them on the same line (an unclosed quote, say),
    /// and at most [`MAX_HOPS`] hops are read: a client's long list is not even scanned. More
    /// trusted hops than that hide the client. Empty list elements are not hops (RFC 9110
    /// §5.6.1).
    fn walk(
        &self,
        peer: IpAddr,
        values: http::header::GetAll<'_, http::HeaderValue>,
        quotes: bool,
        parse: impl Fn(&[u8]) -> (Option<IpAddr>, bool),
    ) -> (IpAddr, Source, bool) {
        let mut hops = values
            .iter()
            .rev()
            .flat_map(|v| rsplit_outside_quotes(v.as_bytes(), b',', quotes))
            .filter(|hop| !hop.is_empty());
        let mut client = (peer, Source::HiddenByProxy, false);
        for hop in hops.by_ref().take(MAX_HOPS) {
            let (ip, https) = parse(hop);
            match ip {
                Some(ip) => {
                    client = (ip, Source::Forwarded, https);
                    if !self.contains(ip) {
                        return client;
                    }
                }
                None => return (client.0, Source::HiddenByProxy, https),
            }
        }
        if hops.next().is_some() {
            client.1 = Source::HiddenByProxy;
        }
        client
    }
}

/// How a request's peer on this host or a private network is its client with no trusted
/// proxy configured: as it is, unless the request carries a forwarding header, the usual
/// forgotten setting ([`unconfigured_proxy`]; a list of proxies is a decision). Out of line:
/// it walks the request's fields.
#[inline(never)]
fn peer_without_proxies(peer: IpAddr, headers: &HeaderMap) -> Source {
    if names_a_client(headers) {
        unconfigured_proxy(peer);
        return Source::UnconfiguredProxy;
    }
    Source::Peer
}

/// Whether `peer` is an address a proxy in front of this service would connect from: the
/// host itself, or a private network (RFC 1918, IPv6 unique local, link-local).
#[inline]
fn is_local(peer: IpAddr) -> bool {
    match peer {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local(),
    }
}

/// Whether the request carries a forwarding header (`X-Forwarded-For` or `Forwarded`), as a
/// reverse proxy's requests do: a walk of the few fields most requests have, not a lookup.
#[inline]
fn names_a_client(headers: &HeaderMap) -> bool {
    if headers.len() > 16 {
        return headers.contains_key(&X_FORWARDED_FOR) || headers.contains_key(FORWARDED);
    }
    headers
        .keys()
        .any(|name| *name == X_FORWARDED_FOR || name == FORWARDED)
}

/// `X-Forwarded-For`.
static X_FORWARDED_FOR: http::HeaderName = http::HeaderName::from_static("x-forwarded-for");

/// A request with a forwarding header from a peer on this host or a private network, with no
/// trusted proxy configured: most likely from a reverse proxy `trusted_proxies` should name.
/// Its client IP is the peer's (every client behind that proxy shares one per-IP bucket, as
/// before), but it is not taken to be inside any network (`KnownClientIp`,
/// `Health::detail_for`): with the proxy on this host, every client on the internet would
/// otherwise pass a check for `127.0.0.0/8`. Warned once per process, saying what to set.
#[cold]
#[inline(never)]
fn unconfigured_proxy(peer: IpAddr) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            target: crate::LOG_TARGET,
            peer = %peer,
            "a request from {peer} carries X-Forwarded-For or Forwarded, and no trusted proxy \
             is configured: if a reverse proxy connects from {peer}, set HARDENING_TRUSTED_PROXIES \
             (or Hardening::trusted_proxies) to its address. Until then every client behind it \
             has the IP {peer} (one rate-limit bucket for all, one address in the logs) and \
             none is taken to be inside a network (KnownClientIp answers 403, \
             Health::detail_for shows no detail); warned once"
        );
    }
}

/// How many of a forwarding header's right-most hops are read: more trusted proxies than
/// this in front of one service is not a deployment, and a request's cost stays bounded
/// whatever list a client sends.
const MAX_HOPS: usize = 16;

/// Who says whether the client used HTTPS, for a request's security headers and redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaysHttps {
    /// The peer is not a trusted proxy: only TLS seen in-process counts.
    Nobody,
    /// Trusted proxies writing `X-Forwarded-For` say it in `X-Forwarded-Proto`.
    XForwardedProto,
    /// Trusted proxies writing `Forwarded` say it in the client's element (`proto=https`);
    /// `X-Forwarded-Proto` is then the client's own, as `X-Forwarded-For` would be.
    ForwardedElement {
        /// The element that names the client says `proto=https`.
        https: bool,
    },
}

impl SaysHttps {
    /// `X-Forwarded-Proto` is believed.
    #[inline]
    #[cfg_attr(not(feature = "headers"), allow(dead_code))]
    pub(crate) fn reads_x_forwarded_proto(self) -> bool {
        self == Self::XForwardedProto
    }

    /// A trusted proxy's `Forwarded` element says `proto=https`.
    #[inline]
    #[cfg_attr(not(feature = "headers"), allow(dead_code))]
    pub(crate) fn forwarded_https(self) -> bool {
        self == Self::ForwardedElement { https: true }
    }

    /// Trusted proxies say the request is HTTPS: the `proto` of a `Forwarded` element, or
    /// `X-Forwarded-Proto`'s last value, as the security headers read it when they are
    /// built in (`hardening_headers::is_https`).
    #[cfg(all(feature = "auth", not(feature = "headers")))]
    pub(crate) fn proxies_say_https(self, headers: &HeaderMap) -> bool {
        self.forwarded_https()
            || (self.reads_x_forwarded_proto()
                && headers
                    .get_all("x-forwarded-proto")
                    .iter()
                    .next_back()
                    .is_some_and(hardening_errors::forwarded_proto_says_https))
    }
}

/// How a request's client IP was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The socket peer, not a trusted proxy: the IP is the client's.
    Peer,
    /// Named by trusted proxies' forwarding headers: the client's, as they report it.
    Forwarded,
    /// A trusted proxy did not name the client (no forwarding entry, or one that is not an
    /// address: `for=unknown`, an obfuscated `for=_hidden`): the IP is that of the last
    /// trusted hop, so per-IP limits share one bucket for all such clients (stricter, never
    /// looser), but the client is not taken to be inside any network.
    HiddenByProxy,
    /// The socket peer, on this host or a private network, sent a forwarding header and no
    /// trusted proxy is configured: most likely a reverse proxy `trusted_proxies` should name.
    /// The IP is the peer's, but the client is not taken to be inside any network.
    UnconfiguredProxy,
}

impl Source {
    /// The peer is a trusted proxy (whose other headers, such as `X-Request-Id`, may then be
    /// believed).
    #[inline]
    pub(crate) fn via_trusted_proxy(self) -> bool {
        matches!(self, Self::Forwarded | Self::HiddenByProxy)
    }

    /// The IP is the client's own (as seen, or as trusted proxies name it).
    #[inline]
    pub(crate) fn is_known(self) -> bool {
        matches!(self, Self::Peer | Self::Forwarded)
    }
}

/// The pieces of a header value between `separator`s, trimmed. A separator inside a quoted
/// string (RFC 9110 §5.6.4: `"…"`, `\` escaping the next byte) does not
/// count: a trusted proxy's `Forwarded` element may quote a value the client chose (a
/// `host="a,for=6.6.6.6"`), which must not start an element or a parameter of its own. An
/// unclosed quote runs to the end of the value.
fn split_outside_quotes(value: &[u8], separator: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let value = rest?;
        let mut quoted = false;
        let mut escaped = false;
        let end = value.iter().position(|&b| {
            if escaped {
                escaped = false;
            } else if quoted && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = !quoted;
            } else if b == separator && !quoted {
                return true;
            }
            false
        });
        let (piece, after) = match end {
            Some(end) => (&value[..end], Some(&value[end + 1..])),
            None => (value, None),
        };
        rest = after;
        Some(piece.trim_ascii())
    })
}

/// [`split_outside_quotes`] from the right, last piece first, and only with `quotes` minding
/// quoted strings (`X-Forwarded-For` has none). Scanning leftwards, a `"` ends
/// a quoted string, which starts at the next `"` that no odd run of `\` escapes; one never
/// started runs to the start of the value. What lies left of a piece never changes how the
/// piece is read, so a client's malformed part of a line cannot swallow a proxy's element.
fn rsplit_outside_quotes(value: &[u8], separator: u8, quotes: bool) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let value = rest?;
        let mut quoted = false;
        let mut i = value.len();
        let start = loop {
            let Some(j) = i.checked_sub(1) else {
                break None;
            };
            i = j;
            let b = value[i];
            if quoted {
                if b == b'"' {
                    let backslashes = value[..i].iter().rev().take_while(|&&c| c == b'\\').count();
                    quoted = backslashes % 2 == 1;
                }
            } else if quotes && b == b'"' {
                quoted = true;
            } else if b == separator {
                break Some(i);
            }
        };
        let (before, piece) = match start {
            Some(start) => (Some(&value[..start]), &value[start + 1..]),
            None => (None, value),
        };
        rest = before;
        Some(piece.trim_ascii())
    })
}

/// One `X-Forwarded-For` entry: an IP, maybe with a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_xff(entry: &[u8]) -> Option<IpAddr> {
    parse_node(std::str::from_utf8(entry).ok()?, false)
}

/// One `Forwarded` element (`for=1.2.3.4;proto=https`, `for="[2001:db8::1]:443"`): its
/// `for` address, if it has exactly one that reads as an address, and whether its one
/// `proto` is `https`. A parameter twice in one element (RFC 7239 §4 forbids it) makes the
/// element unreadable.
fn parse_forwarded(element: &[u8]) -> (Option<IpAddr>, bool) {
    let mut node = None;
    let mut proto = None;
    let mut twice = false;
    for pair in split_outside_quotes(element, b';') {
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (name, value) = (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii());
        let slot = if name.eq_ignore_ascii_case(b"for") {
            &mut node
        } else if name.eq_ignore_ascii_case(b"proto") {
            &mut proto
        } else {
            continue;
        };
        twice |= slot.replace(unquote(value)).is_some();
    }
    if twice {
        return (None, false);
    }
    let https = proto.is_some_and(|p| p.eq_ignore_ascii_case(b"https"));
    let ip = node
        .and_then(|n| std::str::from_utf8(n).ok())
        .and_then(|n| parse_node(n, true));
    (ip, https)
}

/// A parameter value without the quotes of a quoted string (an address or a scheme has
/// nothing to escape: a value with a `\` then reads as no address).
fn unquote(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    }
}

/// An address, maybe with a port: a number, or in `Forwarded` (`obfuscated_ports`) a port
/// the proxy chose to hide (RFC 7239 §6.3: `for="192.0.2.43:_abc"`), which still names the
/// client's address.
fn parse_node(node: &str, obfuscated_ports: bool) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    let is_port = |port: &str| {
        port.parse::<u16>().is_ok()
            || (obfuscated_ports
                && port.strip_prefix('_').is_some_and(|rest| {
                    !rest.is_empty()
                        && rest
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
                }))
    };
    if let Some(rest) = node.strip_prefix('[') {
        let (v6, port) = rest.split_once(']')?;
        // Nothing after the brackets but a port.
        if !port.is_empty() && !is_port(port.strip_prefix(':')?) {
            return None;
        }
        return v6
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| canonical(IpAddr::V6(ip)));
    }
    let (v4, port) = node.rsplit_once(':')?;
    if !is_port(port) {
        return None;
    }
    v4.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// With no trusted proxy configured, a forwarding header from this host or a private
    /// network marks the client unknown (a proxy the settings forgot), not from elsewhere,
    /// not without the header, and not once any proxy is configured; the IP stays the peer's.
    #[test]
    fn a_forwarded_request_from_a_local_peer_without_proxies_is_an_unconfigured_proxys() {
        let none = proxies(&[]);
        let some = proxies(&["10.9.9.9"]);
        let xff = headers(&[("host", "app.example"), ("x-forwarded-for", "203.0.113.7")]);
        let forwarded = headers(&[("forwarded", "for=203.0.113.7"), ("host", "app.example")]);
        // A proxy's request has a `Host` too: a forwarding header alone is no proxy's.
        let alone = headers(&[("x-forwarded-for", "203.0.113.7")]);
        let mut many = headers(&[]);
        for i in 0..20 {
            many.append(
                http::HeaderName::from_bytes(format!("x-pad-{i}").as_bytes()).unwrap(),
                http::HeaderValue::from_static("1"),
            );
        }
        many.append("x-forwarded-for", "203.0.113.7".parse().unwrap());
        let plain = headers(&[("accept", "*/*")]);
        for peer in [
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "10.1.2.3",
            "172.16.0.9",
            "192.168.1.1",
            "169.254.0.1",
            "fd00::1",
            "fe80::1",
        ] {
            for sent in [&xff, &forwarded, &many] {
                let (client, source, _) = none.resolve(ip(peer), sent);
                assert_eq!(client, canonical(ip(peer)), "{peer}");
                assert_eq!(source, Source::UnconfiguredProxy, "{peer} {sent:?}");
                assert!(!source.is_known() && !source.via_trusted_proxy());
            }
            assert_eq!(none.resolve(ip(peer), &plain).1, Source::Peer, "{peer}");
            assert_eq!(none.resolve(ip(peer), &alone).1, Source::Peer, "{peer}");
            assert_eq!(some.resolve(ip(peer), &xff).1, Source::Peer, "{peer}");
        }
        for public in ["203.0.113.9", "2001:db8::1", "100.64.0.1"] {
            assert_eq!(none.resolve(ip(public), &xff).1, Source::Peer, "{public}");
        }
    }

    #[test]
    fn networks() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.1.2.3")));
        assert!(net.contains(ip("::ffff:10.1.2.3")));
        assert!(!net.contains(ip("11.0.0.1")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("1.2.3.4")));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let one: IpNet = "::1".parse().unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        // IPv4-mapped networks are the IPv4 ones.
        let mapped: IpNet = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(mapped, "10.0.0.0/8".parse().unwrap());
        assert!(mapped.contains(ip("10.1.2.3")) && mapped.contains(ip("::ffff:10.1.2.3")));
        let mapped_one: IpNet = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(mapped_one, "10.0.0.1".parse().unwrap());
        assert!("::ffff:10.0.0.0/95".parse::<IpNet>().is_err());
        for bad in [
            "10.0.0.0/33",
            "nonsense",
            "10.0.0.0/x",
            "::/129",
            "",
            "10.0.0.0/+8",
            "10.0.0.0/",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    /// `10.0.0.1/8` was read as `10.0.0.0/8` (16 million trusted proxies for what may have
    /// meant one); two networks in one entry were "the prefix length must be 0 to 32".
    #[test]
    fn a_network_with_host_bits_or_two_in_one_entry_says_what_to_write() {
        let why = |s: &str| match s.parse::<IpNet>() {
            Err(ConfigError::InvalidNetwork { why, .. }) => why,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(
            why("10.0.0.1/8"),
            "it has bits set past the prefix: write 10.0.0.0/8 for the network, or \
             10.0.0.1/32 for the one address"
        );
        assert_eq!(
            why("fd00::1/8"),
            "it has bits set past the prefix: write fd00::/8 for the network, or fd00::1/128 \
             for the one address"
        );
        assert!(why("::ffff:10.0.0.1/104").contains("write 10.0.0.0/8"));
        for two in ["10.0.0.0/8;fd00::/8", "10.0.0.0/8 fd00::/8"] {
            assert_eq!(
                why(two),
                "one network per entry: separate networks with commas"
            );
        }
        // Networks and single addresses as written before still parse.
        for good in [
            "10.0.0.0/8",
            "10.0.0.1",
            "10.0.0.1/32",
            "0.0.0.0/0",
            "fd00::/8",
            "::/0",
        ] {
            assert!(good.parse::<IpNet>().is_ok(), "{good}");
        }
    }

    #[test]
    fn untrusted_peer_ignores_headers() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("forwarded", "for=2.2.2.2")]);
        assert_eq!(p.client_ip(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        assert_eq!(
            TrustedProxies::default().client_ip(ip("203.0.113.9"), &h),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_peer_takes_rightmost_untrusted_hop() {
        let p = proxies(&["10.0.0.0/8"]);
        // The client wrote "6.6.6.6" itself; the proxy appended the real peer 198.51.100.7.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        // Split over two header lines.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        // Ports and brackets.
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:443")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("2001:db8::1"));
        let h = headers(&[("x-forwarded-for", "198.51.100.7:5000")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        // Empty list elements are not hops (RFC 9110 §5.6.1), nor is an empty line.
        for (first, second) in [
            ("198.51.100.7", ""),
            ("198.51.100.7,", "10.0.0.2"),
            ("198.51.100.7, ,", " , 10.0.0.2 , "),
        ] {
            let h = headers(&[("x-forwarded-for", first), ("x-forwarded-for", second)]);
            let (client, source, _) = p.resolve(ip("10.0.0.1"), &h);
            let case = format!("{first:?}, {second:?}");
            assert_eq!(
                (client, source),
                (ip("198.51.100.7"), Source::Forwarded),
                "{case}"
            );
        }
        // Nothing but a port after the brackets.
        for bad in ["[2001:db8::1]junk", "[2001:db8::1]:", "[2001:db8::1]:99999"] {
            let h = headers(&[("x-forwarded-for", bad)]);
            assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"), "{bad}");
        }
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_hop() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.1.1.1, garbage, 10.0.0.5")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.5"));
        let h = headers(&[("x-forwarded-for", "")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn a_client_the_proxy_does_not_name_is_hidden() {
        let source = |p: &TrustedProxies, peer: &str, h: &HeaderMap| p.resolve(ip(peer), h).1;
        let xff = proxies(&["10.0.0.0/8"]);
        let mut fwd = proxies(&["10.0.0.0/8"]);
        fwd.set_header(ForwardedHeader::Forwarded);
        // Named: the client's own address, as the proxies report it.
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(source(&xff, "10.0.0.1", &h), Source::Forwarded);
        assert!(source(&xff, "10.0.0.1", &h).is_known());
        // Every hop inside the trusted networks, all readable: a client in there.
        let h = headers(&[("x-forwarded-for", "10.0.0.5, 10.0.0.2")]);
        assert_eq!(source(&xff, "10.0.0.1", &h), Source::Forwarded);
        // Not a proxy: the peer itself.
        assert_eq!(source(&xff, "203.0.113.9", &h), Source::Peer);
        assert!(!Source::Peer.via_trusted_proxy() && Source::Peer.is_known());
        // Not named: no entry, an empty one, or one that is not an address.
        for (name, value) in [
            ("x-forwarded-for", ""),
            ("x-forwarded-for", "unknown"),
            ("x-forwarded-for", "1.1.1.1, garbage, 10.0.0.5"),
        ] {
            let h = headers(&[(name, value)]);
            let (client, how, _) = xff.resolve(ip("10.0.0.1"), &h);
            assert_eq!(how, Source::HiddenByProxy, "{value:?}");
            assert!(how.via_trusted_proxy() && !how.is_known(), "{value:?}");
            assert!(xff.contains(client), "{value:?}: {client}");
        }
        assert_eq!(
            source(&xff, "10.0.0.1", &HeaderMap::new()),
            Source::HiddenByProxy
        );
        for value in [
            "for=_hidden",
            "for=unknown",
            "for=\"1.2.3.4:_\"",
            "for=\"1.2.3.4:_p/rt\"",
            "for=\"[2001:db8::1]:_\"",
            "for=6.6.6.6, for=_x",
        ] {
            let h = headers(&[("forwarded", value)]);
            assert_eq!(
                source(&fwd, "10.0.0.1", &h),
                Source::HiddenByProxy,
                "{value}"
            );
            assert_eq!(fwd.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"), "{value}");
        }
    }

    #[test]
    fn only_the_configured_header_is_read() {
        // The proxy writes `Forwarded`; the client sent its own `X-Forwarded-For`.
        let mut p = proxies(&["10.0.0.0/8"]);
        p.set_header(ForwardedHeader::Forwarded);
        let h = headers(&[
            ("x-forwarded-for", "127.0.0.1"),
            ("forwarded", "for=198.51.100.7"),
        ]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        // An empty `X-Forwarded-For` does not pin the client to the proxy either.
        let h = headers(&[("x-forwarded-for", ""), ("forwarded", "for=198.51.100.7")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        // The default, `X-Forwarded-For`: a client's `Forwarded` is ignored.
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[
            ("forwarded", "for=127.0.0.1"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        let h = headers(&[("forwarded", "for=127.0.0.1")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn header_choice_parses() {
        assert_eq!(
            "Forwarded".parse::<ForwardedHeader>().ok(),
            Some(ForwardedHeader::Forwarded)
        );
        assert_eq!(
            " x-forwarded-for ".parse::<ForwardedHeader>().ok(),
            Some(ForwardedHeader::XForwardedFor)
        );
        assert!("x-real-ip".parse::<ForwardedHeader>().is_err());
    }

    #[test]
    fn forwarded_header() {
        let mut p = proxies(&["10.0.0.0/8"]);
        p.set_header(ForwardedHeader::Forwarded);
        let h = headers(&[(
            "forwarded",
            r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.3"#,
        )]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        // An obfuscated port (RFC 7239 §6.3) hides the port, not the address: each client
        // keeps its own rate-limit bucket.
        for (value, client) in [
            (r#"for="192.0.2.43:_abc""#, "192.0.2.43"),
            (r#"for="192.0.2.43:_a.b-c_9", for=10.0.0.3"#, "192.0.2.43"),
            (r#"for="[2001:db8:cafe::17]:_port""#, "2001:db8:cafe::17"),
        ] {
            let h = headers(&[("forwarded", value)]);
            assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip(client), "{value}");
        }
        // Not in `X-Forwarded-For`, which has no obfuscated ports.
        let mut xff = proxies(&["10.0.0.0/8"]);
        xff.set_header(ForwardedHeader::XForwardedFor);
        let h = headers(&[("x-forwarded-for", "192.0.2.43:_abc")]);
        assert_eq!(xff.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    /// A quoted value may hold `,` and `;` (RFC 7239 §4, RFC 9110 §5.6.4): a proxy that
    /// quotes a value the client chose (its `Host`) must not let it add an element or a
    /// parameter. A parameter twice in one element makes the element unreadable.
    #[test]
    fn forwarded_quoted_values_cannot_name_another_client() {
        let mut p = proxies(&["10.0.0.0/8"]);
        p.set_header(ForwardedHeader::Forwarded);
        for value in [
            r#"for=198.51.100.7;host="a,for=6.6.6.6""#,
            r#"proto=http;host="a;for=6.6.6.6";for=198.51.100.7"#,
            r#"for=198.51.100.7;host="a\",for=6.6.6.6""#,
            r#"for=6.6.6.6, for=198.51.100.7;host="x,for=6.6.6.6;""#,
        ] {
            let h = headers(&[("forwarded", value)]);
            assert_eq!(
                p.client_ip(ip("10.0.0.1"), &h),
                ip("198.51.100.7"),
                "{value}"
            );
        }
        // A proxy that appends its element to the client's line: what the client wrote
        // before it (an unclosed quote, escaped or not) neither swallows it nor names the
        // client, nor says HTTPS.
        for value in [
            r#"for=127.0.0.1;proto=https;x=", for=198.51.100.7"#,
            r#"for=10.0.0.9;proto=https;x="\", for=198.51.100.7"#,
            r#"for=6.6.6.6;x=", for=198.51.100.7;host="example.com""#,
            r#"x=", for="198.51.100.7:80";host="a\"b\\", for=10.0.0.2"#,
        ] {
            let h = headers(&[("forwarded", value)]);
            let (client, source, says) = p.resolve(ip("10.0.0.1"), &h);
            assert_eq!(
                (client, source, says.forwarded_https()),
                (ip("198.51.100.7"), Source::Forwarded, false),
                "{value}"
            );
        }
        // Two `for`s (or two `proto`s) in one element: not read, the client is hidden.
        for value in [
            "for=198.51.100.7;for=6.6.6.6",
            "for=198.51.100.7;proto=http;proto=https",
        ] {
            let h = headers(&[("forwarded", value)]);
            let (client, source, _) = p.resolve(ip("10.0.0.1"), &h);
            assert_eq!(
                (client, source),
                (ip("10.0.0.1"), Source::HiddenByProxy),
                "{value}"
            );
        }
    }

    /// Only the right-most hops are read: a client's long list is scanned, not parsed, and
    /// more trusted hops than are read hide the client.
    #[test]
    fn long_lists_are_read_from_the_right_only() {
        let p = proxies(&["10.0.0.0/8"]);
        let spoof = vec!["6.6.6.6"; 5_000].join(", ");
        let h = HeaderMap::from_iter([
            (
                http::header::HeaderName::from_static("x-forwarded-for"),
                spoof.parse().unwrap(),
            ),
            (
                http::header::HeaderName::from_static("x-forwarded-for"),
                "198.51.100.7, 10.0.0.2".parse().unwrap(),
            ),
        ]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        let within = vec!["10.0.0.9"; MAX_HOPS - 1].join(", ");
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        let mut h2 = h.clone();
        h2.append("x-forwarded-for", within.parse().unwrap());
        assert_eq!(p.resolve(ip("10.0.0.1"), &h2).1, Source::Forwarded);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h2), ip("198.51.100.7"));
        let beyond = vec!["10.0.0.9"; MAX_HOPS].join(", ");
        let mut h3 = h;
        h3.append("x-forwarded-for", beyond.parse().unwrap());
        let (client, source, _) = p.resolve(ip("10.0.0.1"), &h3);
        assert_eq!((client, source), (ip("10.0.0.9"), Source::HiddenByProxy));
    }

    /// Behind `Forwarded`, HTTPS is what the element naming the client says (`proto`), never
    /// `X-Forwarded-Proto`; behind `X-Forwarded-For`, `X-Forwarded-Proto` says it; from a
    /// peer that is not a trusted proxy, neither.
    #[test]
    fn who_says_https() {
        let xff = proxies(&["10.0.0.0/8"]);
        let mut fwd = proxies(&["10.0.0.0/8"]);
        fwd.set_header(ForwardedHeader::Forwarded);
        let proto = |p: &TrustedProxies, peer: &str, value: &'static str| {
            p.resolve(ip(peer), &headers(&[("forwarded", value)])).2
        };
        let https = SaysHttps::ForwardedElement { https: true };
        let http = SaysHttps::ForwardedElement { https: false };
        // The client's element, not an element a client wrote before it or a proxy's after.
        assert_eq!(
            proto(&fwd, "10.0.0.1", "for=198.51.100.7;proto=https"),
            https
        );
        assert_eq!(
            proto(&fwd, "10.0.0.1", r#"for=198.51.100.7;proto="HTTPS""#),
            https
        );
        assert_eq!(
            proto(
                &fwd,
                "10.0.0.1",
                "for=6.6.6.6;proto=https, for=198.51.100.7;proto=http"
            ),
            http
        );
        assert_eq!(
            proto(
                &fwd,
                "10.0.0.1",
                "for=198.51.100.7;proto=https, for=10.0.0.2;proto=http"
            ),
            https
        );
        assert_eq!(proto(&fwd, "10.0.0.1", "for=198.51.100.7"), http);
        // A hidden client: its element, written by the trusted proxy after it.
        assert_eq!(proto(&fwd, "10.0.0.1", "for=_x;proto=https"), https);
        assert_eq!(
            proto(&fwd, "203.0.113.9", "for=198.51.100.7;proto=https"),
            SaysHttps::Nobody
        );
        assert_eq!(
            proto(&xff, "10.0.0.1", "for=198.51.100.7;proto=https"),
            SaysHttps::XForwardedProto
        );
        assert!(
            SaysHttps::XForwardedProto.reads_x_forwarded_proto()
                && !https.reads_x_forwarded_proto()
        );
        assert!(https.forwarded_https() && !http.forwarded_https());
    }

    /// Hops that are not plain addresses: what each one reads as, and where the walk stops.
    /// IPv4-mapped peers and hops count as IPv4 (a dual-stack listener's peers); a zone id,
    /// leading zeros (octal to some parsers), a quoted or bracketed IPv4 `X-Forwarded-For`
    /// entry, an element with no `for`, or an escape in `for` is no address: the client is
    /// hidden, never whatever the client wrote further left.
    #[test]
    fn odd_hops() {
        let (named, hidden, peer) = (Source::Forwarded, Source::HiddenByProxy, "10.0.0.1");
        let xff = proxies(&["10.0.0.0/8"]);
        let mut fwd = proxies(&["10.0.0.0/8"]);
        fwd.set_header(ForwardedHeader::Forwarded);
        for (p, name, cases) in [
            (
                &xff,
                "x-forwarded-for",
                &[
                    ("\t198.51.100.7\t,\t10.0.0.2", "198.51.100.7", named),
                    (
                        "6.6.6.6, [::ffff:198.51.100.7]:80, ::ffff:10.0.0.3",
                        "198.51.100.7",
                        named,
                    ),
                    ("6.6.6.6, unknown", peer, hidden),
                    ("6.6.6.6, fe80::1%eth0", peer, hidden),
                    ("6.6.6.6, [fe80::1%25eth0]:80", peer, hidden),
                    ("6.6.6.6, 010.0.0.2", peer, hidden),
                    ("6.6.6.6, 01.2.3.4", peer, hidden),
                    ("6.6.6.6, \"198.51.100.7\"", peer, hidden),
                    ("6.6.6.6, [198.51.100.7]", peer, hidden),
                    ("6.6.6.6, 198.51.100.7:", peer, hidden),
                ][..],
            ),
            (
                &fwd,
                "forwarded",
                &[
                    ("FOR=198.51.100.7", "198.51.100.7", named),
                    (
                        "for=6.6.6.6,for=\"[::ffff:10.0.0.2]\",for=198.51.100.7",
                        "198.51.100.7",
                        named,
                    ),
                    ("for=6.6.6.6, for=\"198.51.100.7\" ", "198.51.100.7", named),
                    (
                        "for=6.6.6.6;host=\"a\\\\\", for=198.51.100.7",
                        "198.51.100.7",
                        named,
                    ),
                    (
                        "for=6.6.6.6, for=\"_hidden\", for=10.0.0.2",
                        "10.0.0.2",
                        hidden,
                    ),
                    ("for=6.6.6.6, by=10.0.0.1", peer, hidden),
                    ("for=6.6.6.6, for=\"\\198.51.100.7\"", peer, hidden),
                    ("for=6.6.6.6, for=\"\"", peer, hidden),
                    ("for=6.6.6.6, for=\"", peer, hidden),
                ][..],
            ),
        ] {
            for &(value, client, source) in cases {
                let (got, how, _) = p.resolve(ip(peer), &headers(&[(name, value)]));
                assert_eq!((got, how), (ip(client), source), "{value:?}");
            }
        }
        // A dual-stack listener's IPv4 peer.
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        let (got, how, _) = xff.resolve(ip("::ffff:10.0.0.1"), &h);
        assert_eq!((got, how), (ip("198.51.100.7"), named));
        let (got, how, _) = xff.resolve(ip("::ffff:10.0.0.1"), &HeaderMap::new());
        assert_eq!((got, how), (ip(peer), hidden));
        // Several fields are one list, and a line's unclosed quote stays on its line.
        for (p, h, client) in [
            (
                &xff,
                [
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-forwarded-for", "garbage"),
                    ("x-forwarded-for", "10.0.0.2"),
                ],
                "10.0.0.2",
            ),
            (
                &fwd,
                [
                    ("forwarded", "for=6.6.6.6"),
                    ("forwarded", "for=\"198.51.100.7"),
                    ("forwarded", "for=10.0.0.2"),
                ],
                "10.0.0.2",
            ),
        ] {
            let (got, how, _) = p.resolve(ip(peer), &headers(&h));
            assert_eq!((got, how), (ip(client), hidden), "{h:?}");
        }
        let h = headers(&[
            ("forwarded", "for=6.6.6.6"),
            ("forwarded", "for=\"[2001:db8::1]:80\";proto=https"),
        ]);
        let (got, how, says) = fwd.resolve(ip(peer), &h);
        assert_eq!(
            (got, how, says.forwarded_https()),
            (ip("2001:db8::1"), named, true)
        );
    }

    /// `KnownClientIp` is the client a trusted proxy names, or the peer that is no trusted
    /// proxy; a trusted proxy's own address standing in for a client it did not name is
    /// refused with a 403 problem (`None` as an `Option`), whatever `ClientIp` holds. Behind
    /// `Forwarded` too.
    #[tokio::test]
    async fn known_client_ip_is_never_a_trusted_proxys_own_address() {
        use tower::ServiceExt;
        let app = axum::Router::new()
            .route(
                "/known",
                axum::routing::get(
                    |KnownClientIp(ip): KnownClientIp| async move { ip.to_string() },
                ),
            )
            .route(
                "/both",
                axum::routing::get(
                    |ClientIp(ip): ClientIp, known: Option<KnownClientIp>| async move {
                        format!("{ip} {:?}", known.map(|KnownClientIp(ip)| ip.to_string()))
                    },
                ),
            )
            .layer(
                crate::Hardening::strict()
                    .trusted_proxies(["10.0.0.0/8"])
                    .unwrap()
                    .forwarded_header(ForwardedHeader::Forwarded),
            );
        let call = |path: &'static str, peer: [u8; 4], forwarded: Option<&'static str>| {
            let mut req = http::Request::get(path);
            if let Some(value) = forwarded {
                req = req.header("forwarded", value);
            }
            let req = req
                .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                    peer, 4000,
                ))))
                .body(axum::body::Body::empty())
                .unwrap();
            let app = app.clone();
            async move {
                let res = app.oneshot(req).await.unwrap();
                let status = res.status();
                let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
                (status.as_u16(), String::from_utf8(body.to_vec()).unwrap())
            }
        };
        for (peer, forwarded, known, both) in [
            ([10, 0, 0, 1], None, None, "10.0.0.1 None"),
            ([10, 0, 0, 1], Some("for=unknown"), None, "10.0.0.1 None"),
            (
                [10, 0, 0, 1],
                Some("for=198.51.100.7, for=_hidden"),
                None,
                "10.0.0.1 None",
            ),
            (
                [10, 0, 0, 1],
                Some("for=10.9.9.9, for=198.51.100.7"),
                Some("198.51.100.7"),
                "198.51.100.7 Some(\"198.51.100.7\")",
            ),
            (
                [10, 0, 0, 1],
                Some("for=10.9.9.9"),
                Some("10.9.9.9"),
                "10.9.9.9 Some(\"10.9.9.9\")",
            ),
            (
                [203, 0, 113, 9],
                Some("for=10.9.9.9"),
                Some("203.0.113.9"),
                "203.0.113.9 Some(\"203.0.113.9\")",
            ),
        ] {
            let (status, body) = call("/known", peer, forwarded).await;
            match known {
                Some(ip) => assert_eq!((status, body.as_str()), (200, ip), "{forwarded:?}"),
                None => {
                    assert_eq!(status, 403, "{forwarded:?}: {body}");
                    assert!(body.contains("\"request_id\""), "{body}");
                    assert!(!body.contains("10.0.0.1"), "{body}");
                }
            }
            assert_eq!(call("/both", peer, forwarded).await, (200, both.to_owned()));
        }
    }

    /// Without `Hardening`: a `ClientIp` put in the extensions directly is known (no proxy
    /// was followed); none at all is a 500 for the extractor and `None` as an `Option`.
    #[tokio::test]
    async fn known_client_ip_without_hardening() {
        let mut extensions = http::Extensions::new();
        assert_eq!(KnownClientIp::from_extensions(&extensions), None);
        extensions.insert(ClientIp(ip("192.0.2.1")));
        assert_eq!(
            KnownClientIp::from_extensions(&extensions),
            Some(KnownClientIp(ip("192.0.2.1")))
        );
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let res = <KnownClientIp as FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        assert_eq!(res.status(), 500);
        let none =
            <KnownClientIp as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &())
                .await;
        assert_eq!(none, Ok(None));
    }

    /// The CSRF check compares an `Origin`'s scheme over HTTPS, and a trusted proxy's
    /// `X-Forwarded-Proto` says a request is HTTPS with or without the security headers
    /// feature; an untrusted peer's does not.
    #[cfg(feature = "auth")]
    #[tokio::test]
    async fn a_trusted_proxys_x_forwarded_proto_counts_for_csrf() {
        use tower::ServiceExt;
        let app = axum::Router::new()
            .route("/", axum::routing::post(|| async { "ok" }))
            .layer(
                crate::Hardening::strict()
                    .trusted_proxies(["10.0.0.0/8"])
                    .unwrap(),
            );
        for (peer, proto, status) in [
            ([10, 0, 0, 1], "http", 200),
            ([10, 0, 0, 1], "https", 403),
            ([203, 0, 113, 9], "https", 200),
        ] {
            let req = http::Request::post("/")
                .header("host", "example.com")
                .header("cookie", "sid=1")
                .header("origin", "http://example.com")
                .header("x-forwarded-for", "198.51.100.7")
                .header("x-forwarded-proto", proto)
                .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                    peer, 4000,
                ))))
                .body(axum::body::Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), status, "{peer:?} {proto}");
        }
    }
}
