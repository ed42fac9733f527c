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

    public static func hash(_ secret: String) -> [UInt8] { SHA256Digest.hash(Array(secret.utf8)) }
    public static func hashCode(_ code: String) -> [UInt8] { hash(normalizeCode(code)) }
}
