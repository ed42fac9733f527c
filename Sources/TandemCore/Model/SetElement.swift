/// Free-text set elements (tags, follow-up items): normalized, and named by a hash.
///
/// `FieldName.element(prefix:text:)` is `<prefix>.<32 hex digits>`: the first 128 bits of
/// SHA-256 of the normalized text. The text itself is the field's `lww` value, and
/// removing the element sets the value to null. So concurrent additions of different
/// tags both survive, and no tag text ever appears in a field name, a log or an error.
/// A hash is not secret: it hides a tag from casual reading, not from a dictionary
/// attack, which is why field names are never shown outside the data path either.
public enum SetElement {
    /// The longest element text, in bytes after normalization.
    public static let maxBytes = 200

    /// Trims, collapses inner white space to one space and lowercases.
    ///
    /// - Throws: `TandemCoreError.invalidValue` for an empty or over-long text.
    public static func normalize(_ text: String, field: String) throws(TandemCoreError) -> String {
        let words = text.split(whereSeparator: { $0.isWhitespace })
        let normalized = words.joined(separator: " ").lowercased()
        guard !normalized.isEmpty, normalized.utf8.count <= maxBytes else {
            throw .invalidValue(field: field, rule: "an element must have 1 to \(maxBytes) bytes of text")
        }
        return normalized
    }

    /// The field that holds `text` in the set named `prefix`.
    public static func field(prefix: String, normalizedText: String) -> FieldName {
        let digest = SHA256Digest.hash(Array(normalizedText.utf8))
        return FieldName(unchecked: prefix + "." + hexString(digest.prefix(16)))
    }
}
