import Foundation
import TandemProtocol
/// Where a center's PostgreSQL is: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`
/// (`postgresql://` too), as `tandem serve --postgres URL` or `TANDEM_DATABASE_URL` give it,
/// with libpq's `?sslmode=disable|require|verify-ca|verify-full` and `&sslrootcert=PATH`.
/// User and password may be percent-encoded. `description` never shows the password.
///
/// A database on another host is reached over TLS, its certificate verified against
/// `sslrootcert` (or the system's roots) and its host name (`verify-full`), unless the URL
/// says otherwise: health data does not cross a network in plain text by default. One on
/// this machine's loopback is reached in plain text unless the URL asks for TLS.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// `sslrootcert`: a PEM file of the certificates that may sign the server's; nil: the
    /// system's roots.
    public var rootCertificates: String?

    /// libpq's `sslmode`s that Tandem takes (`allow` and `prefer`, which fall back to plain
    /// text without saying so, are refused).
    public enum TLSMode: String, Sendable, CaseIterable {
        /// Plain text: this machine, or a network the operator trusts.
        case disable
        /// Encrypted; the server's certificate is not checked (a network that may be read,
        /// not one where someone could stand in for the database).
        case require
        /// Encrypted; the certificate must chain to `sslrootcert`, whatever host it names.
        case verifyCA = "verify-ca"
        /// Encrypted; the certificate must chain to `sslrootcert` and name the host.
        case verifyFull = "verify-full"
    }

    public init(
        host: String, port: Int = 5432, user: String, password: String? = nil, database: String, tls: TLSMode? = nil,
        rootCertificates: String? = nil
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls ?? Self.defaultTLS(host: host)
        self.rootCertificates = rootCertificates
    }

    /// Plain text on the loopback (`localhost`, 127.0.0.0/8, `::1`), verified TLS anywhere
    /// else: a name such as `127.db.example` is another host.
    public static func defaultTLS(host: String) -> TLSMode {
        Loopback.contains(host) ? .disable : .verifyFull
    }

    public init(url text: String) throws(PostgresLocationError) {
        let rest: Substring
        if text.hasPrefix("postgres://") {
            rest = text.dropFirst("postgres://".count)
        } else if text.hasPrefix("postgresql://") {
            rest = text.dropFirst("postgresql://".count)
        } else {
            throw .malformed("it must start with postgres:// or postgresql://")
        }
        // The options first: what follows `?` is theirs, whatever it holds (an `@` in a
        // file's path names no user). A `?` in a password must be percent-escaped.
        var query: Substring? = nil
        var head = rest
        if let question = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: question)...]
            head = rest[..<question]
        }
        guard let at = head.lastIndex(of: "@") else { throw .malformed("it names no user (postgres://USER@HOST/DATABASE)") }
        let credentials = head[..<at]
        let place = head[head.index(after: at)...]
        guard let slash = place.firstIndex(of: "/") else { throw .malformed("it names no database (postgres://USER@HOST/DATABASE)") }
        let address = place[..<slash]
        let database = place[place.index(after: slash)...]
        var tls: TLSMode? = nil
        var rootCertificates: String? = nil
        if let query {
            for option in query.split(separator: "&") {
                let pair = option.split(separator: "=", maxSplits: 1)
                let value = try Self.decoded(pair.count == 2 ? pair[1] : "")
                switch pair[0] {
                case "sslmode":
                    guard let mode = TLSMode(rawValue: value) else {
                        throw .malformed("sslmode must be disable, require, verify-ca or verify-full (not \(value))")
                    }
                    tls = mode
                case "sslrootcert":
                    guard !value.isEmpty else { throw .malformed("sslrootcert must name a file") }
                    rootCertificates = value
                default:
                    throw .malformed("Tandem reads the options sslmode and sslrootcert, not \(pair[0])")
                }
            }
        }
        guard !database.isEmpty, !database.contains("/") else {
            throw .malformed("the database must be one name")
        }
        // A root certificate given means a verified connection, on any host.
        if rootCertificates != nil, tls == nil { tls = .verifyFull }
        if rootCertificates != nil, tls == .disable || tls == .require {
            throw .malformed("sslrootcert is read with sslmode=verify-ca or verify-full only")
        }
        // Without a root of its own, verify-ca would take any certificate the system's
        // roots signed, for any name: anyone with a public certificate could answer.
        if tls == .verifyCA, rootCertificates == nil {
            throw .malformed("sslmode=verify-ca needs sslrootcert (the authority that signed the database's certificate)")
        }
        let userPart: Substring
        var password: String? = nil
        if let colon = credentials.firstIndex(of: ":") {
            userPart = credentials[..<colon]
            password = try Self.decoded(credentials[credentials.index(after: colon)...])
        } else {
            userPart = credentials
        }
        let user = try Self.decoded(userPart)
        guard !user.isEmpty else { throw .malformed("it names no user") }
        var host = Substring(address)
        var port = 5432
        if let colon = address.lastIndex(of: ":"), !address.hasSuffix("]") {
            host = address[..<colon]
            guard let number = Int(address[address.index(after: colon)...]), (1...65_535).contains(number) else {
                throw .malformed("the port must be a number from 1 to 65535")
            }
            port = number
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty else { throw .malformed("it names no host") }
        self.init(
            host: String(host), port: port, user: user, password: password, database: try Self.decoded(database), tls: tls,
            rootCertificates: rootCertificates)
    }

    public var description: String {
        "postgres://\(user)\(password == nil ? "" : ":***")@\(hostPart):\(port)/\(database)\(options)"
    }

    /// The TLS options, when they are not the host's default: `?sslmode=…&sslrootcert=…`.
    private var options: String {
        var options: [String] = []
        if tls != Self.defaultTLS(host: host) || rootCertificates != nil { options.append("sslmode=\(tls.rawValue)") }
        if let rootCertificates {
            options.append("sslrootcert=\(rootCertificates.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "/._-").union(.alphanumerics)) ?? rootCertificates)")
        }
        return options.isEmpty ? "" : "?" + options.joined(separator: "&")
    }

    /// The URL that names this location, its password included (user and password
    /// percent-escaped): for a child process's arguments on a machine of one's own (tests,
    /// benchmarks), never a log.
    public var url: String {
        let escaped = { (text: String) in text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text }
        return "postgres://\(escaped(user))\(password.map { ":\(escaped($0))" } ?? "")@\(hostPart):\(port)/\(escaped(database))\(options)"
    }

    private var hostPart: String { host.contains(":") ? "[\(host)]" : host }

    private static func decoded(_ text: Substring) throws(PostgresLocationError) -> String {
        guard let decoded = String(text).removingPercentEncodingStrictly else { throw .malformed("a percent escape is malformed") }
        return decoded
    }
}

/// A PostgreSQL URL that cannot be used, and why.
public enum PostgresLocationError: Error, Equatable, CustomStringConvertible {
    case malformed(String)

    public var description: String {
        switch self {
        case .malformed(let why): "The PostgreSQL URL is not usable: \(why)."
        }
    }
}

extension String {
    /// Percent-decoded, or nil when an escape is not two hex digits or the bytes are not UTF-8.
    fileprivate var removingPercentEncodingStrictly: String? {
        var bytes: [UInt8] = []
        var utf8 = self.utf8.makeIterator()
        while let byte = utf8.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = utf8.next().flatMap(Self.hexValue), let low = utf8.next().flatMap(Self.hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
