import Foundation

/// The rule for the names people and devices are shown by (PROTOCOL.md §9.2): 1 to 200
/// characters after trimming white space, none of them a control character or a
/// bidirectional override, so no name can move a terminal's cursor, erase a row of a
/// listing or reorder what staff read.
public enum DisplayName {
    public static let maxCharacters = 200

    /// The name as it is stored (trimmed), or a sentence saying what is wrong with it.
    ///
    /// ```swift
    /// DisplayName.check("  Sam's phone ", what: "deviceName")  // .success("Sam's phone")
    /// ```
    public static func check(_ name: String, what: String) -> Result<String, DisplayNameError> {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.count <= maxCharacters else {
            return .failure(DisplayNameError(message: "\(what) must have 1 to \(maxCharacters) characters."))
        }
        guard !trimmed.unicodeScalars.contains(where: isForbidden) else {
            return .failure(DisplayNameError(message: "\(what) must not contain control characters."))
        }
        return .success(trimmed)
    }

    /// C0 and C1 controls, DEL, and the bidirectional embeddings, overrides and isolates.
    public static func isForbidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}

/// Why a name was refused; `message` is a sentence for the person who chose it.
public struct DisplayNameError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
