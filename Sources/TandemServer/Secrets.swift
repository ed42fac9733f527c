import Crypto
public import TandemCore

/// Tokens and one-time codes: random, shown once, stored only as SHA-256 hashes.
public enum Secrets {
    /// A device or staff token: 256 random bits as 64 hex digits.
    public static func newToken() -> String {
        // The system's secure generator, through the standard library (see Identifier.random).
        hexString((0..<32).map { _ in UInt8.random(in: 0...255) })
    }

    /// An enrollment or link code: 130 random bits in Crockford base32, grouped by 5
    /// (`7KQ2M-…`): easy to read out, and far beyond guessing with throttled attempts.
    public static func newCode() -> String {
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        let symbols = (0..<26).map { _ in alphabet[Int.random(in: 0..<32)] }
        return stride(from: 0, to: 26, by: 5).map { String(symbols[$0..<min($0 + 5, 26)]) }.joined(separator: "-")
    }

    /// A code as typed: case, dashes and spaces do not matter; I, L read as 1 and O as 0.
    public static func normalizeCode(_ code: String) -> String {
        String(code.uppercased().compactMap { c -> Character? in
            switch c {
            case "-", " ": nil
            case "I", "L": "1"
            case "O": "0"
            default: c
            }
        })
    }

    /// SHA-256 (swift-crypto) of a token or a normalized code: what the store keeps.
    public static func hash(_ secret: String) -> [UInt8] { Array(SHA256.hash(data: Array(secret.utf8))) }
    public static func hashCode(_ code: String) -> [UInt8] { hash(normalizeCode(code)) }

    /// The first 8 bytes of SHA-256 (swift-crypto) of a change's canonical bytes: how the
    /// server tells, for an id it accepted, whether a change under that id is the very one
    /// it accepted (PROTOCOL.md §9.3). Two changes under one replica's id colliding in 64
    /// bits is out of reach by accident, and a device only ever hurts itself by forging one.
    public static func changeDigest(_ canonicalBytes: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: canonicalBytes).prefix(8))
    }

    /// The first 16 bytes of SHA-256 of a directory's lines, in hex: how a pull answer
    /// names the directory, so a device that holds it is not sent it again.
    public static func directoryDigest(_ lines: [UInt8]) -> String {
        hexString(Array(SHA256.hash(data: lines).prefix(16)))
    }
}
