#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The loopback, where plain text is allowed: a device talking to a server on its own
/// machine (`HTTPTransport`), a server reaching PostgreSQL on its own (`PostgresLocation`).
public enum Loopback {
    /// Whether `host` is a loopback address: an IPv4 address in 127.0.0.0/8, the IPv6
    /// address ::1 (bracketed or not), or `localhost`. The host is parsed as an address, so
    /// a name such as `127.0.0.1.example.org` or `127.db.example` is another host.
    public static func contains(_ host: String) -> Bool {
        if host == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, bare, &v6) == 1 else { return false }
        return withUnsafeBytes(of: &v6) { Array($0) } == Array(repeating: 0, count: 15) + [1]
    }
}
