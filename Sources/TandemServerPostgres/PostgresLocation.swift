import Foundation
/// Where a center's PostgreSQL is: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`
/// (`postgresql://` too), as `tandem serve --postgres URL` or `TANDEM_DATABASE_URL` give it.
/// User and password may be percent-encoded. `description` never shows the password.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String

    public init(host: String, port: Int = 5432, user: String, password: String? = nil, database: String) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
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
        guard let at = rest.lastIndex(of: "@") else { throw .malformed("it names no user (postgres://USER@HOST/DATABASE)") }
        let credentials = rest[..<at]
        let place = rest[rest.index(after: at)...]
        guard let slash = place.firstIndex(of: "/") else { throw .malformed("it names no database (postgres://USER@HOST/DATABASE)") }
        let address = place[..<slash]
        let database = place[place.index(after: slash)...]
        guard !database.isEmpty, !database.contains("?"), !database.contains("/") else {
            throw .malformed("the database must be one name, without options")
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
        self.init(host: String(host), port: port, user: user, password: password, database: try Self.decoded(database))
    }

    public var description: String {
        "postgres://\(user)\(password == nil ? "" : ":***")@\(hostPart):\(port)/\(database)"
    }

    /// The URL that names this location, its password included (user and password
    /// percent-escaped): for a child process's arguments on a machine of one's own (tests,
    /// benchmarks), never a log.
    public var url: String {
        let escaped = { (text: String) in text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text }
        return "postgres://\(escaped(user))\(password.map { ":\(escaped($0))" } ?? "")@\(hostPart):\(port)/\(escaped(database))"
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
